"""Model files → handles, loaded once through the model manager in the dtypes the device suits.

UNets and text encoders run in fp16 (or bf16) on a GPU; the VAE never in fp16 (SDXL's
overflows), so bf16 where supported, else fp32; everything is fp32 on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from diffusion.clip_encoding import ClipEncoder
from diffusion.families import EncoderSlot, ModelFormatError, Prediction
from diffusion.handles import ClipHandle, ModelHandle, VaeHandle
from diffusion.loading import Checkpoint, Dtypes, TextModel, load_checkpoint, load_text_encoder_file, load_unet_file, load_vae_file
from engine.devices import DevicePolicy
from engine.models import ModelManager, file_key

#: UNETLoader's weight_dtype choices → storage dtype (None: the device's usual dtype)
WEIGHT_DTYPES: dict[str, torch.dtype | None] = {
    "default": None,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e4m3fn_fast": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def component_dtypes(policy: DevicePolicy) -> Dtypes:
    """The dtype of each component on the policy's compute device."""
    return Dtypes(
        unet=policy.dtype((torch.float16, torch.bfloat16)),
        vae=policy.dtype((torch.bfloat16,)),
        text=policy.dtype((torch.float16,)),
    )


def checkpoint_handles(path: Path, manager: ModelManager, prediction: Prediction | None = None) -> tuple[ModelHandle, ClipHandle | None, VaeHandle | None]:
    """MODEL, CLIP and VAE of a checkpoint file or diffusers folder (CLIP/VAE None if absent)."""
    dtypes = component_dtypes(manager.policy)
    key = (*_key(path), "checkpoint", prediction, dtypes)
    checkpoint: Checkpoint = manager.load(key, lambda: load_checkpoint(path, dtypes, prediction))
    if checkpoint.unet is None:
        raise ModelFormatError(f"{path.name}: no UNet in this checkpoint")
    detection = checkpoint.detection
    model = ModelHandle(checkpoint.unet, detection.family, detection.prediction, detection.zero_terminal_snr)
    clip = _clip(checkpoint.encoders.values()) if checkpoint.encoders else None
    vae = VaeHandle(checkpoint.vae) if checkpoint.vae is not None else None
    return model, clip, vae


def unet_handle(path: Path, manager: ModelManager, weight_dtype: str = "default") -> ModelHandle:
    """MODEL of a UNet-only file; fp8 choices store weights in 8 bits and compute in the usual dtype."""
    compute = component_dtypes(manager.policy).unet
    storage = WEIGHT_DTYPES[weight_dtype]

    def load() -> tuple:
        detection, unet = load_unet_file(path, compute)
        if storage is not None:
            unet.enable_layerwise_casting(storage_dtype=storage, compute_dtype=compute)
        return detection, unet

    detection, unet = manager.load((*_key(path), "unet", weight_dtype, compute), load)
    return ModelHandle(unet, detection.family, detection.prediction, detection.zero_terminal_snr)


def vae_handle(path: Path, manager: ModelManager) -> VaeHandle:
    """VAE of a standalone VAE file."""
    dtype = component_dtypes(manager.policy).vae
    return VaeHandle(manager.load((*_key(path), "vae", dtype), lambda: load_vae_file(path, dtype)))


def clip_handle(paths: list[Path], manager: ModelManager, sdxl: bool, device: Literal["default", "cpu"] = "default") -> ClipHandle:
    """CLIP from standalone text encoder files (one for SD1/SD2, clip_l + clip_g for SDXL)."""
    dtype = torch.float32 if device == "cpu" else component_dtypes(manager.policy).text
    loaded: list[tuple[EncoderSlot, TextModel]] = [
        manager.load((*_key(path), "text_encoder", sdxl, dtype), lambda path=path: load_text_encoder_file(path, dtype, sdxl))
        for path in paths
    ]
    keys = sorted(slot.key for slot, _ in loaded)
    expected = [["clip_g", "clip_l"]] if sdxl else [["clip_l"], ["clip_h"]]
    if keys not in expected:
        names = ", ".join(p.name for p in paths)
        wanted = "a CLIP-L and a CLIP-G encoder" if sdxl else "one CLIP-L (SD1) or OpenCLIP-H (SD2) encoder"
        raise ModelFormatError(f"{names}: found {', '.join(keys)} text encoders; this needs {wanted}")
    order = {"clip_l": 0, "clip_h": 0, "clip_g": 1}
    return _clip(sorted(loaded, key=lambda item: order[item[0].key]), device)


def _clip(loaded, device: Literal["default", "cpu"] = "default") -> ClipHandle:
    encoders = tuple(ClipEncoder.from_slot(slot, model) for slot, model in loaded)
    return ClipHandle(encoders, device=device)


def _key(path: Path) -> tuple:
    if path.is_dir():  # a diffusers folder: its index file stands for it
        return file_key(path / "model_index.json")
    return file_key(path)
