"""Where a LoRA file's layers go: the names trainers give a model's layers, mapped to sdflow's modules.

Names are built from the loaded model itself, so every layer the model has is found under each
name a file may use for it (the facts of the formats; see also DESIGN.md):

- UNet: kohya `lora_unet_<name with _>` with the diffusers name (SD1.x/SD2.x trainers) or the
  original layout's name (SDXL trainers), `lycoris_<original name with _>`, raw
  `diffusion_model.<original name>`, diffusers/peft `unet.<diffusers name>` and the older
  attention-processor form `unet.<…>.attn1.processor.to_q`.
- Text encoders: kohya `lora_te_` (a model's only encoder), `lora_te1_`/`lora_te2_` (SDXL's CLIP-L and
  CLIP-G) + the transformers name with `_`; diffusers `text_encoder.`/`text_encoder_2.` + the
  transformers name (also with `to_q`-style attention names).
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple, Sequence

from torch import nn

from diffusion.ldm_keys import ldm_unet_names

UNET = "unet"
#: diffusers pipeline attribute of each text encoder key
_DIFFUSERS_TEXT = {"clip_l": "text_encoder.", "clip_h": "text_encoder.", "clip_g": "text_encoder_2."}
#: a layer whose name starts like this belongs to a text encoder
TEXT_LAYER_PREFIXES = ("lora_te", "text_encoder", "te_", "te1_", "te2_")
_ATTENTION = re.compile(r"(.*\.attn[12])\.(to_q|to_k|to_v|to_out\.0)")
_TEXT_ATTENTION = re.compile(r"(.*\.self_attn)\.(q|k|v|out)_proj")


class Target(NamedTuple):
    """A module of a model component ("unet", or a text encoder key such as "clip_l")."""

    component: str
    module: str


def _weighted_modules(model: nn.Module) -> Iterable[str]:
    return (name for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d)))


def unet_targets(unet: nn.Module) -> dict[str, Target]:
    """Every name a LoRA file may give each linear/convolution layer of a diffusers UNet."""
    modules = list(_weighted_modules(unet))
    original = ldm_unet_names([f"{m}.weight" for m in modules], unet.config)
    names: dict[str, Target] = {}
    for module in modules:
        target = Target(UNET, module)
        ldm = original[f"{module}.weight"].removesuffix(".weight")
        for name in (f"lycoris_{_flat(ldm)}", f"lora_unet_{_flat(ldm)}", f"diffusion_model.{ldm}", f"model.diffusion_model.{ldm}"):
            names[name] = target
        names[f"lora_unet_{_flat(module)}"] = target  # the diffusers spelling wins a (theoretical) clash
        names[f"unet.{module}"] = target
        if m := _ATTENTION.fullmatch(module):
            names[f"unet.{m[1]}.processor.{m[2].removesuffix('.0')}"] = target
    return names


def text_targets(encoders: Sequence[tuple[str, nn.Module]]) -> dict[str, Target]:
    """Every name a LoRA file may give each linear layer of the text encoders (key, model)."""
    names: dict[str, Target] = {}
    keys = [key for key, _ in encoders]
    for key, model in encoders:
        kohya = _kohya_prefix(key, keys)
        for module in _weighted_modules(model):
            target = Target(key, module)
            full = module if module.startswith(("text_model.", "text_projection")) else f"text_model.{module}"
            names[kohya + _flat(full)] = target
            names[_DIFFUSERS_TEXT[key] + full] = target
            if m := _TEXT_ATTENTION.fullmatch(full):
                names[f"{_DIFFUSERS_TEXT[key]}{m[1]}.to_{m[2]}"] = target
    return names


def _kohya_prefix(key: str, keys: list[str]) -> str:
    """`lora_te_` for a model's only encoder; SDXL's pair is `lora_te1_` (CLIP-L) and `lora_te2_` (CLIP-G)."""
    if len(keys) == 1:
        return "lora_te_"
    return "lora_te2_" if key == "clip_g" else "lora_te1_"


def is_text_layer(name: str) -> bool:
    """Whether a file layer's name says it belongs to a text encoder."""
    return name.startswith(TEXT_LAYER_PREFIXES)


def _flat(name: str) -> str:
    return name.replace(".", "_")
