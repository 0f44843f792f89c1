"""Rename diffusers/transformers state dicts to the original (Stability "LDM") checkpoint layout.

Single-file checkpoints keep the key names of the original training code; sdflow reads them with
diffusers' single-file converters. These functions go the other way, so that tiny random models
built with diffusers can be saved exactly as a user's checkpoint would be, and so that LoRA files
written against the original layout find their layers in sdflow's diffusers UNet.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

StateDict = Mapping[str, torch.Tensor]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_OPEN_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
SDXL_CLIP_G_PREFIX = "conditioner.embedders.1.model."
REFINER_CLIP_G_PREFIX = "conditioner.embedders.0.model."

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_BLOCK = re.compile(r"(down_blocks|up_blocks)\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)")
_UNET_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def unet_to_ldm(state_dict: StateDict, config: Mapping[str, Any], prefix: str = UNET_PREFIX) -> dict[str, torch.Tensor]:
    """A `UNet2DConditionModel` state dict in the original layout (`input_blocks`, `middle_block`, …)."""
    names = ldm_unet_names(list(state_dict), config)
    return {prefix + names[key]: value for key, value in state_dict.items()}


def ldm_unet_names(keys: list[str], config: Mapping[str, Any]) -> dict[str, str]:
    """The original-layout name of each `UNet2DConditionModel` parameter name in `keys` (all of the
    model's names are needed to tell which up blocks have attention)."""
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        raise ValueError("the original UNet layout needs the same layers_per_block at every level")
    up_with_attention = {int(m[2]) for key in keys if (m := _UNET_BLOCK.fullmatch(key)) and m[1] == "up_blocks" and m[3] == "attentions"}
    return {key: _unet_key(key, layers + 1, up_with_attention) for key in keys}


def _unet_key(key: str, per_level: int, up_with_attention: set[int]) -> str:
    module, _, param = key.rpartition(".")
    if module in _UNET_TOP:
        return f"{_UNET_TOP[module]}.{param}"
    if m := _UNET_MID.fullmatch(key):
        kind, index, rest = m[1], int(m[2]), m[3]
        if kind == "resnets":
            return f"middle_block.{2 * index}.{_renamed(rest, _UNET_RESNET)}"
        return f"middle_block.{2 * index + 1}.{rest}"
    m = _UNET_BLOCK.fullmatch(key)
    if m is None:
        raise KeyError(f"no original UNet name for {key!r}")
    side, level, kind, index, rest = m[1], int(m[2]), m[3], int(m[4]), m[5]
    if kind in ("downsamplers", "upsamplers"):
        index = per_level - 1  # after the level's resnets going down, with its last resnet going up
    block = f"input_blocks.{1 + level * per_level + index}" if side == "down_blocks" else f"output_blocks.{level * per_level + index}"
    if kind == "resnets":
        return f"{block}.0.{_renamed(rest, _UNET_RESNET)}"
    if kind == "attentions":
        return f"{block}.1.{rest}"
    if kind == "downsamplers":
        return f"{block}.0.op.{rest.removeprefix('conv.')}"
    return f"{block}.{2 if level in up_with_attention else 1}.{rest}"


def _renamed(rest: str, table: Mapping[str, str]) -> str:
    """`rest` with its first name component renamed through `table` (kept when absent)."""
    head, _, tail = rest.partition(".")
    return f"{table.get(head, head)}.{tail}"


_VAE_TOP = {"conv_norm_out": "norm_out"}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_VAE_BLOCK = re.compile(r"(encoder|decoder)\.(down_blocks|up_blocks)\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)")
_VAE_MID = re.compile(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def vae_to_ldm(state_dict: StateDict, config: Mapping[str, Any], prefix: str = VAE_PREFIX) -> dict[str, torch.Tensor]:
    """An `AutoencoderKL` state dict in the original layout; `prefix=""` for a standalone VAE file.

    The mid-block attention's q/k/v/proj_out are 1×1 convolutions there, so their weights gain two dims.
    """
    levels = len(config["up_block_types"])
    out = {}
    for key, value in state_dict.items():
        name = _vae_key(key, levels)
        if re.search(r"attn_1\.(q|k|v|proj_out)\.weight$", name):
            value = value[:, :, None, None]
        out[prefix + name] = value
    return out


def _vae_key(key: str, levels: int) -> str:
    if m := _VAE_MID.fullmatch(key):
        coder, kind, index, rest = m[1], m[2], int(m[3]), m[4]
        if kind == "resnets":
            return f"{coder}.mid.block_{index + 1}.{_renamed(rest, _VAE_RESNET)}"
        module, _, param = rest.rpartition(".")
        return f"{coder}.mid.attn_1.{_VAE_ATTENTION[module]}.{param}"
    if m := _VAE_BLOCK.fullmatch(key):
        coder, level, kind, rest = m[1], int(m[3]), m[4], m[6]
        if coder == "decoder":
            level = levels - 1 - level
        side = "down" if coder == "encoder" else "up"
        if kind == "resnets":
            return f"{coder}.{side}.{level}.block.{m[5]}.{_renamed(rest, _VAE_RESNET)}"
        return f"{coder}.{side}.{level}.{'downsample' if kind == 'downsamplers' else 'upsample'}.{rest}"
    coder, _, rest = key.partition(".")
    if coder in ("encoder", "decoder"):
        return f"{coder}.{_renamed(rest, _VAE_TOP)}"
    if coder in ("quant_conv", "post_quant_conv"):
        return key
    raise KeyError(f"no original VAE name for {key!r}")


def clip_to_ldm(state_dict: StateDict, prefix: str = SD1_CLIP_PREFIX) -> dict[str, torch.Tensor]:
    """A transformers `CLIPTextModel` state dict (with or without its `text_model.` level) in the
    OpenAI CLIP layout: `<prefix>text_model.…`."""
    return {prefix + "text_model." + key.removeprefix("text_model."): value for key, value in state_dict.items()}


_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
_CLIP_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)")
_QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")


def open_clip_to_ldm(state_dict: StateDict, prefix: str = SD2_OPEN_CLIP_PREFIX) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model state dict in the OpenCLIP layout.

    q/k/v projections are concatenated (in that order) into `attn.in_proj_*`; a projected model's
    `text_projection.weight` becomes the transposed `text_projection` matrix.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        name = key.removeprefix("text_model.")
        if name in _OPEN_CLIP_TOP:
            out[prefix + _OPEN_CLIP_TOP[name]] = value
        elif name == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif (m := _CLIP_LAYER.fullmatch(name)) is None:
            raise KeyError(f"no OpenCLIP name for {key!r}")
        elif m[2] in _QKV:
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
        elif m[2] in _OPEN_CLIP_LAYER:
            out[f"{prefix}transformer.resblocks.{m[1]}.{_OPEN_CLIP_LAYER[m[2]]}.{m[3]}"] = value
        else:
            raise KeyError(f"no OpenCLIP name for {key!r}")
    for (layer, param), parts in qkv.items():
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{param}"] = torch.cat([parts[p] for p in _QKV])
    return out


CONTROLNET_PREFIX = "control_model."
_CONTROLNET_TOP = {
    "controlnet_cond_embedding.conv_in": "input_hint_block.0",
    "controlnet_mid_block": "middle_block_out.0",
}
_CONTROLNET_BLOCK = re.compile(r"(controlnet_cond_embedding\.blocks|controlnet_down_blocks)\.(\d+)\.(weight|bias)")


def controlnet_to_ldm(state_dict: StateDict, config: Mapping[str, Any], prefix: str = CONTROLNET_PREFIX) -> dict[str, torch.Tensor]:
    """A `ControlNetModel` state dict in the original layout: the UNet encoder's names plus the hint
    encoder (`input_hint_block`, convolutions at even indices), `zero_convs` and `middle_block_out`."""
    own = {k: v for k, v in state_dict.items() if k.startswith("controlnet_")}
    out = unet_to_ldm({k: v for k, v in state_dict.items() if k not in own}, config, prefix)
    hint_convs = len({m[2] for key in own if (m := _CONTROLNET_BLOCK.fullmatch(key)) and m[1].startswith("controlnet_cond")})
    for key, value in own.items():
        module, _, param = key.rpartition(".")
        if module in _CONTROLNET_TOP:
            name = _CONTROLNET_TOP[module]
        elif module == "controlnet_cond_embedding.conv_out":
            name = f"input_hint_block.{2 * hint_convs + 2}"
        elif m := _CONTROLNET_BLOCK.fullmatch(key):
            name = f"input_hint_block.{2 * int(m[2]) + 2}" if m[1].startswith("controlnet_cond") else f"zero_convs.{m[2]}.0"
        else:
            raise KeyError(f"no original ControlNet name for {key!r}")
        out[f"{prefix}{name}.{param}"] = value
    return out


_ADAPTER_BLOCK = re.compile(r"adapter\.body\.(\d+)\.(?:resnets\.(\d+)\.)?(.+)")


def t2i_adapter_ldm_name(key: str, adapter_type: str, num_res_blocks: int) -> str:
    """The TencentARC (original) name of a diffusers `T2IAdapter` parameter.

    Full adapters number their resnet blocks across levels (`body.{level * blocks + i}`, a level's
    1×1 `in_conv` on its first block); light adapters keep levels (`body.{level}.body.{i}`).
    """
    if key.startswith("adapter.conv_in."):
        return key.removeprefix("adapter.")
    m = _ADAPTER_BLOCK.fullmatch(key)
    if m is None:
        raise KeyError(f"no original T2I-Adapter name for {key!r}")
    level, block, rest = int(m[1]), m[2], m[3]
    if adapter_type == "light_adapter":
        return f"body.{level}.body.{block}.{rest}" if block is not None else f"body.{level}.{rest}"
    return f"body.{level * num_res_blocks + int(block or 0)}.{rest}"
