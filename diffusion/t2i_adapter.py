"""T2I-Adapter files → diffusers `T2IAdapter` modules.

TencentARC's original files (`conv_in`, `body.N.*`) and diffusers' (`adapter.*`, with or without a
`config.json`) are read. The config follows from the tensors: the adapter type (full for SD1.x;
full_adapter_xl for SDXL, whose pixel unshuffle takes 16×16 blocks, told apart by its input width
as ComfyUI does; light adapters by their layout), each level's width and the input channels.
Original layouts that diffusers' adapter cannot represent (3×3 second convolutions, learned
downsampling, skip convolutions) are refused with the reason.
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import T2IAdapter

from diffusion.architecture import count_indices
from diffusion.families import ModelFormatError
from diffusion.ldm_keys import t2i_adapter_ldm_name
from diffusion.loading import Renamed, Tensors, load_strictly

#: resnet blocks per level of TencentARC's full adapters (their files do not show it; ComfyUI assumes it too)
ORIGINAL_RES_BLOCKS = 2
#: input widths (channels × 16²) that mark an SDXL adapter, as in ComfyUI
XL_INPUT_WIDTHS = (256, 768)


def is_t2i_adapter(state: Tensors) -> bool:
    """Whether a file's tensors are a T2I-Adapter (diffusers' or TencentARC's names)."""
    diffusers = "adapter.conv_in.weight" in state or "adapter.body.0.in_conv.weight" in state
    original = ("conv_in.weight" in state and "body.0.block1.weight" in state) or "body.0.body.0.block1.weight" in state
    return diffusers or original


def build(state: Tensors, config: dict[str, Any] | None, dtype: torch.dtype, name: str) -> T2IAdapter:
    """The adapter in `state`, with a diffusers `config` if the file came with one."""
    diffusers_names = any(k.startswith("adapter.") for k in state)
    if diffusers_names and config is None:
        kind = "light_adapter" if "adapter.body.0.out_conv.weight" in state else "full_adapter"
        blocks = count_indices(state, "adapter.body.0.resnets.{}.block1.weight")
        config = _config(Renamed(state, {t2i_adapter_ldm_name(k, kind, blocks): k for k in state if k.startswith("adapter.")}), blocks)
    elif not diffusers_names:
        config = _config(state, count_indices(state, "body.0.body.{}.block1.weight") or ORIGINAL_RES_BLOCKS)
    assert config is not None
    with init_empty_weights():
        module = T2IAdapter.from_config(config)
    expected = module.state_dict()
    kind, blocks = config["adapter_type"], config["num_res_blocks"]
    names = {key: key if diffusers_names else t2i_adapter_ldm_name(key, kind, blocks) for key in expected}
    _check_representable(state, expected, names, name)
    return load_strictly(module, Renamed(state, {k: old for k, old in names.items() if old in state}), dtype, f"{name}: T2I-Adapter")


def _config(state: Tensors, blocks: int) -> dict[str, Any]:
    """The T2IAdapter config of an adapter in TencentARC's names."""
    if "conv_in.weight" not in state:  # light adapter: per level in_conv → resnets → out_conv
        levels = count_indices(state, "body.{}.in_conv.weight")
        channels = [state[f"body.{i}.out_conv.weight"].shape[0] for i in range(levels - 1)]
        width, kind, factor = state["body.0.in_conv.weight"].shape[1], "light_adapter", 8
    else:
        total = count_indices(state, "body.{}.block1.weight")
        channels = [state[f"body.{i}.block1.weight"].shape[0] for i in range(0, total, blocks)]
        width = state["conv_in.weight"].shape[1]
        kind, factor = ("full_adapter_xl", 16) if width in XL_INPUT_WIDTHS else ("full_adapter", 8)
    return dict(in_channels=width // factor**2, channels=channels, num_res_blocks=blocks, downscale_factor=factor, adapter_type=kind)


def _check_representable(state: Tensors, expected: dict[str, torch.Tensor], names: dict[str, str], name: str) -> None:
    """Refuse tensors diffusers' adapter has no place for, and weights of other shapes than its own."""
    extra = sorted(set(state) - set(names.values()))
    if extra:
        raise ModelFormatError(f"{name}: a T2I-Adapter layout diffusers cannot represent: it has {len(extra)} tensors "
                               f"with no place in diffusers' adapter (e.g. {', '.join(extra[:3])})")
    for key, old in names.items():
        if old in state and state[old].shape != expected[key].shape:
            raise ModelFormatError(f"{name}: a T2I-Adapter layout diffusers cannot represent: {old} is "
                                   f"{tuple(state[old].shape)}, diffusers' adapter needs {tuple(expected[key].shape)}")

