"""ControlNet and T2I-Adapter files → CONTROL_NET values, loaded once through the model manager.

ControlNets come as original single files (`control_model.*` keys, or the same names without the
prefix), converted with diffusers' `convert_controlnet_checkpoint`; or with diffusers' names, as a
diffusers folder (`diffusion_pytorch_model.safetensors` and its `config.json`) or a lone file.
Without a `config.json` the config is read from the tensors: the ControlNet's encoder has the
UNet's layout, so `diffusion.architecture.unet_config` reads it, and the hint encoder's widths
follow from its convolutions. "Diff" ControlNets (a `difference` marker) store their weights as differences to the
UNet of the model they were made for; DiffControlNetLoader adds that UNet's weights back.
T2I-Adapters are read by `diffusion.t2i_adapter`. Modules take the UNet's dtype for the device.
"""

from __future__ import annotations

import inspect
import itertools
import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import ControlNetModel, T2IAdapter, UNet2DConditionModel
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING, convert_controlnet_checkpoint

from diffusion import ldm_keys, t2i_adapter
from diffusion.architecture import unet_config
from diffusion.families import FAMILIES, UNET_PREFIX, ModelFormatError
from diffusion.handles import ModelHandle
from diffusion.loading import Renamed, Tensors, load_strictly, read_state_dict
from diffusion.model_files import component_dtypes
from engine.models import ModelManager, file_key

#: the weights of a diffusers model folder (its config.json lies beside them)
WEIGHTS_NAME = "diffusion_pytorch_model"
#: the marker key of a ControlNet stored as differences to a UNet
DIFFERENCE_KEY = "difference"
_CONTROLNET_PARAMS = frozenset(inspect.signature(ControlNetModel.__init__).parameters) - {"self"}
#: ComfyUI's rule: files named like the v1.1 shuffle ControlNet average their residuals over the image
_POOLED_SUFFIXES = ("_shuffle", "_shuffle_fp16")


@dataclass(frozen=True, eq=False)
class ControlModel:
    """A loaded ControlNet or T2I-Adapter: the CONTROL_NET value."""

    module: ControlNetModel | T2IAdapter
    #: the file it came from, for messages
    name: str
    #: the UNet a diff ControlNet's weights were added to (weakly: it keys the cache by identity)
    base: weakref.ref[UNet2DConditionModel] | None = None

    @property
    def is_adapter(self) -> bool:
        return isinstance(self.module, T2IAdapter)


def control_model(path: Path, manager: ModelManager) -> ControlModel:
    """The ControlNet or T2I-Adapter in a file (or diffusers folder), loaded once."""
    dtype = component_dtypes(manager.policy).unet
    return manager.load((*_key(path), "control", dtype), lambda: load_control_model(path, dtype))


def diff_control_model(path: Path, model: ModelHandle, manager: ModelManager) -> ControlModel:
    """A ControlNet that may store differences to `model`'s UNet (a plain one loads as it is)."""
    if path.is_dir() or DIFFERENCE_KEY not in read_state_dict(path):
        return control_model(path, manager)
    dtype = component_dtypes(manager.policy).unet
    loaded = manager.load((*_key(path), "control", dtype, id(model.unet)), lambda: load_control_model(path, dtype, model.unet))
    if loaded.base is not None and loaded.base() is not model.unet:  # made for a collected UNet whose id this one reuses
        return load_control_model(path, dtype, model.unet)
    return loaded


def load_control_model(path: Path, dtype: torch.dtype, base: UNet2DConditionModel | None = None) -> ControlModel:
    """Read a ControlNet or T2I-Adapter; `base` is the UNet a diff ControlNet's weights are added to."""
    if path.is_dir():
        path = _weights_file(path)
    state = read_state_dict(path, lambda key: dtype)
    config = _diffusers_config(path.parent / "config.json") if path.stem == WEIGHTS_NAME else None
    if t2i_adapter.is_t2i_adapter(state):
        return ControlModel(t2i_adapter.build(state, config, dtype, path.name), path.name)
    if DIFFERENCE_KEY in state and base is None:
        raise ModelFormatError(f"{path.name}: this ControlNet stores differences to a model's weights; load it with "
                               "DiffControlNetLoader (Load ControlNet Model (diff)) and the model it was made for")
    config, weights = _controlnet_weights(state, config, path)
    if DIFFERENCE_KEY in state:
        weights = _with_base(weights, base, path.name)  # type: ignore[arg-type]
    with init_empty_weights():
        module = ControlNetModel.from_config(config)
    module = load_strictly(module, weights, dtype, f"{path.name}: ControlNet")
    return ControlModel(module, path.name, weakref.ref(base) if DIFFERENCE_KEY in state else None)  # type: ignore[arg-type]


def _controlnet_weights(state: Tensors, config: dict[str, Any] | None, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The ControlNetModel config and diffusers-named weights of a ControlNet file."""
    if ldm_keys.CONTROLNET_PREFIX + "zero_convs.0.0.weight" in state or "zero_convs.0.0.weight" in state:
        original = {k.removeprefix(ldm_keys.CONTROLNET_PREFIX): v for k, v in state.items() if k != DIFFERENCE_KEY}
        config = config or controlnet_config(original, path.stem)
        weights = convert_controlnet_checkpoint(original, config)
        added = DIFFUSERS_TO_LDM_MAPPING["controlnet"]["addition_embed_type"]  # SDXL's, which the converter leaves out
        weights |= {new: original[old] for new, old in added.items() if old in original}
        return config, {k: v for k, v in weights.items() if v is not None}
    if "controlnet_cond_embedding.conv_in.weight" in state:
        weights = {k: v for k, v in state.items() if k != DIFFERENCE_KEY}
        if config is None:
            layers = sum(1 for k in weights if k.startswith("down_blocks.0.resnets.") and k.endswith(".conv1.weight"))
            config = controlnet_config(ldm_keys.controlnet_to_ldm(weights, {"layers_per_block": layers}, prefix=""), path.stem)
        return config, weights
    raise ModelFormatError(f"{path.name}: not a ControlNet or T2I-Adapter ({_what_it_holds(state)})")


def controlnet_config(state: Tensors, stem: str = "") -> dict[str, Any]:
    """The ControlNetModel config of a ControlNet in original names (without `control_model.`).

    `unet_config` reads the encoder; it also sizes the UNet's output layer, which a ControlNet
    lacks and its config ignores, so the input layer stands in for it.
    """
    family = FAMILIES["sdxl" if "label_emb.0.0.weight" in state else "sd2" if _linear_attention(state) else "sd15"]
    names = {UNET_PREFIX + k: k for k in state} | {UNET_PREFIX + "out.2.weight": "input_blocks.0.0.weight"}
    config = {k: v for k, v in unet_config(Renamed(state, names), family).items() if k in _CONTROLNET_PARAMS}
    convs = list(itertools.takewhile(lambda i: f"input_hint_block.{i}.weight" in state, itertools.count(2, 2)))[:-1]  # then conv_out
    hint = [state["input_hint_block.0.weight"], *(state[f"input_hint_block.{i}.weight"] for i in convs[1::2])]
    config.update(
        conditioning_channels=hint[0].shape[1],
        conditioning_embedding_out_channels=[w.shape[0] for w in hint],
        global_pool_conditions=stem.endswith(_POOLED_SUFFIXES),
    )
    return config


def _linear_attention(state: Tensors) -> bool:
    """SD2 and SDXL project attention inputs with linear layers, SD1 with 1×1 convolutions."""
    return any(k.endswith(".proj_in.weight") and state[k].ndim == 2 for k in state)


def _with_base(weights: dict[str, torch.Tensor], base: UNet2DConditionModel, name: str) -> dict[str, torch.Tensor]:
    """A diff ControlNet's weights plus the same-named weights of the UNet (added in float32)."""
    unet = base.state_dict()
    out = dict(weights)
    for key, value in weights.items():
        if key in unet:
            if unet[key].shape != value.shape:
                raise ModelFormatError(f"{name}: made for another model: {key} is {tuple(value.shape)} here, "
                                       f"{tuple(unet[key].shape)} in the model's UNet")
            out[key] = (value.float() + unet[key].detach().float().cpu()).to(value.dtype)
    return out


def _diffusers_config(path: Path) -> dict[str, Any] | None:
    """A diffusers `config.json` describing a ControlNet or T2I-Adapter, if there is one."""
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path.parent.name}/config.json: unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("_class_name") not in ("ControlNetModel", "T2IAdapter"):
        return None
    return config


def _weights_file(folder: Path) -> Path:
    for suffix in (".safetensors", ".bin"):
        if (folder / (WEIGHTS_NAME + suffix)).is_file():
            return folder / (WEIGHTS_NAME + suffix)
    raise ModelFormatError(f"{folder.name}: no {WEIGHTS_NAME}.safetensors in this folder")


def _what_it_holds(state: Tensors) -> str:
    if "lora_controlnet" in state:
        return "a Control-LoRA, which sdflow does not load"
    if any(k.startswith(UNET_PREFIX) for k in state):
        return "it holds a Stable Diffusion model: put it in the checkpoints folder"
    found = sorted({k.split(".")[0] for k in state})[:8]
    return f"top-level keys: {', '.join(found) or 'none'}"


def _key(path: Path) -> tuple:
    return file_key(_weights_file(path) if path.is_dir() else path)
