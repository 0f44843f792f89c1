"""Tiny random LoRA-style files for the tiny models, in the layouts trainers write.

`write_lora(tiny, path, ...)` picks layers of a `TinyModel` (attention, feed-forward and, for
LoCon, the resnet convolutions of the UNet; attention and MLP of the text encoders), gives each
random factors of the requested kind and saves them under the names of the requested layout:

- "kohya": `lora_unet_<diffusers name>` (SD1.x/SD2.x trainers) or, with `original_unet_names`,
  `lora_unet_<original name>` (SDXL trainers); `lora_te_` / `lora_te1_` / `lora_te2_` text layers;
  each with `.lora_down.weight`, `.lora_up.weight` and `.alpha` (or LoHa/LoKr tensors).
- "peft": `unet.<name>.lora_A.weight` / `.lora_B.weight`, `text_encoder[_2].<name>...` (what
  diffusers saves; no alphas: scale 1).

It returns the layers it wrote (file layer name → role → tensor) so tests can check the math.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from diffusion import ldm_keys
from diffusion.demo_models import TinyModel, build_tiny

KINDS = ("lora", "locon", "loha", "lokr")
_UNET_LINEAR = re.compile(r".*(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|proj_in|proj_out)")
_UNET_CONV = re.compile(r".*resnets\.\d+\.(conv1|conv2)")
_TEXT = re.compile(r".*(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])")
_KOHYA_TEXT = {"sd15": {"clip_l": "lora_te_"}, "sd2": {"clip_h": "lora_te_"}, "sdxl": {"clip_l": "lora_te1_", "clip_g": "lora_te2_"}}
_PEFT_TEXT = {"clip_l": "text_encoder.", "clip_h": "text_encoder.", "clip_g": "text_encoder_2."}

Layers = dict[str, dict[str, torch.Tensor]]


def write_lora(
    tiny: TinyModel,
    path: Path,
    kind: str = "lora",
    layout: str = "kohya",
    rank: int = 4,
    alpha: float = 2.0,
    original_unet_names: bool = False,
    text: bool = True,
    seed: int = 0,
) -> Layers:
    """Save a random LoRA of `kind` (one of KINDS) for `tiny`; returns what was written, by layer."""
    generator = torch.Generator().manual_seed(zlib.crc32(f"lora:{kind}:{layout}:{seed}".encode()))
    layers: Layers = {}
    unet = tiny.unet
    modules = [(name, module) for name, module in unet.named_modules() if _picked(name, module, kind)]
    original = ldm_keys.ldm_unet_names([n for n, _ in unet.named_parameters()], unet.config)
    for name, module in modules:
        unet_name = original[f"{name}.weight"].removesuffix(".weight") if original_unet_names else name
        file_name = f"lora_unet_{unet_name.replace('.', '_')}" if layout == "kohya" else f"unet.{name}"
        layers[file_name] = _factors(module.weight.shape, kind, rank, alpha, layout, generator)
    if text:
        for key, encoder in tiny.text_encoders.items():
            for name, module in encoder.named_modules():
                if isinstance(module, nn.Linear) and _TEXT.fullmatch(name):
                    full = name if name.startswith("text_model.") else f"text_model.{name}"
                    base = _kohya_text_prefix(tiny, key) + full.replace(".", "_") if layout == "kohya" else _PEFT_TEXT[key] + full
                    layers[base] = _factors(module.weight.shape, "lora", rank, alpha, layout, generator)
    save_layers(layers, path, layout)
    return layers


def save_layers(layers: Layers, path: Path, layout: str = "kohya", names: dict[str, str] | None = None) -> Path:
    """Write layers as `<layer>.<role name>` tensors in a .safetensors file (`names`: extra role names)."""
    names = {**(_PEFT_NAMES if layout == "peft" else _KOHYA_NAMES), **(names or {})}
    tensors = {f"{layer}.{names[role]}": value.detach().clone() for layer, roles in layers.items() for role, value in roles.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


_KOHYA_NAMES = {
    "up": "lora_up.weight", "down": "lora_down.weight", "alpha": "alpha",
    "w1_a": "hada_w1_a", "w1_b": "hada_w1_b", "w2_a": "hada_w2_a", "w2_b": "hada_w2_b",
    "k1": "lokr_w1", "k2_a": "lokr_w2_a", "k2_b": "lokr_w2_b",
}
_PEFT_NAMES = {"up": "lora_B.weight", "down": "lora_A.weight"}


def _picked(name: str, module: nn.Module, kind: str) -> bool:
    if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)):
        return bool(_UNET_LINEAR.fullmatch(name))
    return kind == "locon" and isinstance(module, nn.Conv2d) and bool(_UNET_CONV.fullmatch(name))


def _kohya_text_prefix(tiny: TinyModel, key: str) -> str:
    base = "sdxl" if tiny.family.startswith("sdxl") else ("sd2" if "clip_h" in tiny.text_encoders else "sd15")
    return _KOHYA_TEXT[base][key]


def _factors(shape: torch.Size, kind: str, rank: int, alpha: float, layout: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random factors whose product has `shape` (a linear or convolution weight)."""
    out_dim, in_dim, kernel = shape[0], shape[1], tuple(shape[2:])

    def rand(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=generator) * 0.1

    if kind == "loha":
        factors = {"w1_a": rand(out_dim, rank), "w1_b": rand(rank, in_dim, *kernel), "w2_a": rand(out_dim, rank), "w2_b": rand(rank, in_dim, *kernel)}
    elif kind == "lokr":
        split = 2 if out_dim % 2 == 0 and in_dim % 2 == 0 else 1
        factors = {"k1": rand(split, split), "k2_a": rand(out_dim // split, rank), "k2_b": rand(rank, in_dim // split, *kernel)}
    else:  # lora, locon: down is a k×k convolution for convolution layers, up a 1×1 one
        down = rand(rank, in_dim, *kernel)
        factors = {"down": down, "up": rand(out_dim, rank, *((1,) * len(kernel)))}
    if layout == "kohya":
        factors["alpha"] = torch.tensor(alpha)
    return factors


def write_demo_loras(folder: Path) -> list[Path]:
    """The demo LoRAs for the tiny SD1.5 model: a kohya LoRA and a LoCon (the LoRA workflow stacks them)."""
    tiny = build_tiny("sd15")
    paths = [Path(folder) / "sdflow-tiny-lora-sd15.safetensors", Path(folder) / "sdflow-tiny-locon-sd15.safetensors"]
    write_lora(tiny, paths[0], seed=1)
    write_lora(tiny, paths[1], kind="locon", seed=2)
    return paths

