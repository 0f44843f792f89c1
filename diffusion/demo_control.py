"""Tiny random ControlNets and T2I-Adapters for the tiny models of `diffusion.demo_models`.

A ControlNet is built from a tiny UNet with diffusers' `ControlNetModel.from_unet` and then given
fresh random weights (its zero convolutions too, so that every tensor shows in its output). It is
saved the way users' files come: the original single file (`control_model.*`), a diffusers folder,
a lone file with diffusers' names, or a "diff" file holding differences to the UNet. T2I-Adapters
(levels as wide as the UNet's blocks) are saved with TencentARC's names or diffusers'.
"""

from __future__ import annotations

import copy
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from diffusion import ldm_keys
from diffusion.demo_models import _randomized, _save, build_tiny

if TYPE_CHECKING:
    from diffusers import ControlNetModel, T2IAdapter, UNet2DConditionModel

ControlNetLayout = Literal["original", "diffusers_folder", "diffusers_file"]

#: widths of the tiny hint encoder: four levels, like the original layout (its last conv is input_hint_block.14)
HINT_CHANNELS = (8, 8, 16, 16)
#: T2I-Adapter levels matching the tiny UNets' blocks (SDXL's adapter has four, the last two as wide)
ADAPTER_CHANNELS = {"sd15": (32, 64), "sdxl": (64, 128, 128, 128)}
DEMO_CONTROLNETS = {"sd15": "sdflow-tiny-controlnet-sd15.safetensors", "sdxl": "sdflow-tiny-controlnet-sdxl.safetensors"}
DEMO_ADAPTER = "sdflow-tiny-t2i-adapter-sd15.safetensors"


def _generator(kind: str, family: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{kind}:{family}:{seed}".encode()))


def build_tiny_controlnet(family: str = "sd15", seed: int = 0, unet: UNet2DConditionModel | None = None) -> ControlNetModel:
    """A random ControlNet for the tiny UNet of `family` (or for `unet`)."""
    from diffusers import ControlNetModel

    unet = unet if unet is not None else build_tiny(family).unet
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=HINT_CHANNELS)
    return _randomized(controlnet, _generator("controlnet", family, seed))


def build_tiny_t2i_adapter(family: str = "sd15", seed: int = 0, in_channels: int = 3) -> T2IAdapter:
    """A random full T2I-Adapter for the tiny SD1.5 UNet, or a full_adapter_xl one for tiny SDXL."""
    from diffusers import T2IAdapter

    xl = family == "sdxl"
    adapter = T2IAdapter(in_channels=in_channels, channels=list(ADAPTER_CHANNELS[family]), num_res_blocks=2,
                         downscale_factor=16 if xl else 8, adapter_type="full_adapter_xl" if xl else "full_adapter")
    return _randomized(adapter, _generator("t2i", family, seed))


def write_controlnet(controlnet: ControlNetModel, path: Path, layout: ControlNetLayout = "original", dtype: torch.dtype = torch.float32,
                     diff_from: UNet2DConditionModel | None = None) -> Path:
    """Save a ControlNet; a diffusers folder is written at `path` (a folder), the others as files.

    `diff_from` stores an original-layout file as differences to that UNet's same-named weights,
    marked by a `difference` tensor (what DiffControlNetLoader reads).
    """
    path = Path(path)
    if layout == "diffusers_folder":
        (controlnet if controlnet.dtype == dtype else copy.deepcopy(controlnet).to(dtype)).save_pretrained(path, safe_serialization=True)
        return path
    state = controlnet.state_dict()
    if layout == "diffusers_file":
        return _save(state, path, dtype)
    original = ldm_keys.controlnet_to_ldm(state, controlnet.config)
    if diff_from is not None:
        unet = ldm_keys.unet_to_ldm(diff_from.state_dict(), diff_from.config, prefix=ldm_keys.CONTROLNET_PREFIX)
        original = {k: v - unet[k] if k in unet else v for k, v in original.items()}
        original["difference"] = torch.ones(1)
    return _save(original, path, dtype)


def write_t2i_adapter(adapter: T2IAdapter, path: Path, original_keys: bool = True, dtype: torch.dtype = torch.float32) -> Path:
    """Save a T2I-Adapter with TencentARC's names (`conv_in`, `body.N`) or diffusers' (`adapter.*`)."""
    state = adapter.state_dict()
    if original_keys:
        config = adapter.config
        state = {ldm_keys.t2i_adapter_ldm_name(k, config.adapter_type, config.num_res_blocks): v for k, v in state.items()}
    return _save(state, Path(path), dtype)


def write_demo_controlnets(models_root: Path) -> list[Path]:
    """Write the demo ControlNets (SD1.5 and SDXL) and an SD1.5 T2I-Adapter into `models_root/controlnet`."""
    folder = Path(models_root) / "controlnet"
    written = [write_controlnet(build_tiny_controlnet(family), folder / name, dtype=torch.float16) for family, name in DEMO_CONTROLNETS.items()]
    return [*written, write_t2i_adapter(build_tiny_t2i_adapter("sd15"), folder / DEMO_ADAPTER, dtype=torch.float16)]

