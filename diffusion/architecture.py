"""Diffusers/transformers configs for the tensors actually in a file.

A family's shipped config supplies what weights cannot show (activations, attention head rules,
sample size, scaling); the sizes (channels, levels, depths, widths, vocabulary) are read from the
tensors, so a fine-tune with other sizes, a distilled variant or a tiny test model loads through
the same code as the original release.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig

from diffusion.families import UNET_PREFIX, EncoderSlot, Family

Tensors = Mapping[str, torch.Tensor]
HEAD_DIM = 64


def count_indices(state: Tensors, pattern: str) -> int:
    """How many consecutive indices i make `pattern.format(i)` a key."""
    count = 0
    while pattern.format(count) in state:
        count += 1
    return count


def _transformer_depth(state: Tensors, block: str) -> int:
    return count_indices(state, UNET_PREFIX + block + "transformer_blocks.{}.norm1.weight")


def unet_config(state: Tensors, family: Family, pooled_dim: int | None = None) -> dict[str, Any]:
    """The UNet2DConditionModel config of an original-format checkpoint's UNet."""
    config = dict(UNet2DConditionModel.load_config(family.config_dir / "unet"))
    p = UNET_PREFIX
    levels: list[dict[str, int]] = [{"resnets": 0, "depth": 0, "channels": 0}]
    index = 1
    while p + f"input_blocks.{index}.0.in_layers.0.weight" in state or p + f"input_blocks.{index}.0.op.weight" in state:
        if p + f"input_blocks.{index}.0.op.weight" in state:
            levels.append({"resnets": 0, "depth": 0, "channels": 0})
        else:
            level = levels[-1]
            level["resnets"] += 1
            level["channels"] = state[p + f"input_blocks.{index}.0.out_layers.3.weight"].shape[0]
            level["depth"] = max(level["depth"], _transformer_depth(state, f"input_blocks.{index}.1."))
        index += 1
    middle_depth = _transformer_depth(state, "middle_block.1.")
    channels = [level["channels"] for level in levels]
    # levels without attention take the middle block's depth: diffusers reads the middle depth from the last entry
    depths = [level["depth"] or middle_depth or 1 for level in levels]
    cross = next((state[k] for k in state if k.startswith(p) and k.endswith("attn2.to_k.weight")), None)
    config.update(
        in_channels=state[p + "input_blocks.0.0.weight"].shape[1],
        out_channels=state[p + "out.2.weight"].shape[0],
        block_out_channels=channels,
        layers_per_block=levels[0]["resnets"],
        down_block_types=["CrossAttnDownBlock2D" if level["depth"] else "DownBlock2D" for level in levels],
        up_block_types=["CrossAttnUpBlock2D" if level["depth"] else "UpBlock2D" for level in reversed(levels)],
        transformer_layers_per_block=depths,
        attention_head_dim=8 if family.heads_rule == "eight_heads" else [max(1, c // HEAD_DIM) for c in channels],
    )
    if cross is not None:
        config["cross_attention_dim"] = cross.shape[1]
    label = state.get(p + "label_emb.0.0.weight")
    if label is not None:
        adm = label.shape[1]
        config["projection_class_embeddings_input_dim"] = adm
        if pooled_dim is not None:
            config["addition_time_embed_dim"] = (adm - pooled_dim) // (6 if family.adm == "sdxl" else 5)
    return config


def vae_config(state: Tensors, family: Family) -> dict[str, Any]:
    """The AutoencoderKL config of a VAE in original (`encoder.down.i.block.j`) or diffusers names."""
    config = dict(AutoencoderKL.load_config(family.config_dir / "vae"))
    if "encoder.down.0.block.0.conv1.weight" in state:
        levels = count_indices(state, "encoder.down.{}.block.0.conv1.weight")
        channels = [state[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(levels)]
        layers = count_indices(state, "encoder.down.0.block.{}.conv1.weight")
    else:
        levels = count_indices(state, "encoder.down_blocks.{}.resnets.0.conv1.weight")
        channels = [state[f"encoder.down_blocks.{i}.resnets.0.conv2.weight"].shape[0] for i in range(levels)]
        layers = count_indices(state, "encoder.down_blocks.0.resnets.{}.conv1.weight")
    config.update(
        in_channels=state["encoder.conv_in.weight"].shape[1],
        out_channels=state["decoder.conv_out.weight"].shape[0],
        latent_channels=state["encoder.conv_out.weight"].shape[0] // 2,
        block_out_channels=channels,
        layers_per_block=layers,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
    )
    return config


def clip_config(state: Tensors, slot: EncoderSlot, family: Family) -> CLIPTextConfig:
    """The CLIPTextConfig of one text encoder stored under `slot.prefix` in the original layout."""
    config = CLIPTextConfig.from_pretrained(family.config_dir / slot.subfolder, local_files_only=True)
    p = slot.prefix
    if slot.open_clip:
        tokens = state[p + "token_embedding.weight"]
        positions = state[p + "positional_embedding"].shape[0]
        layers = count_indices(state, p + "transformer.resblocks.{}.ln_1.weight")
        intermediate = state[p + "transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        projection = state.get(p + "text_projection")
    else:
        tokens = state[p + "text_model.embeddings.token_embedding.weight"]
        positions = state[p + "text_model.embeddings.position_embedding.weight"].shape[0]
        layers = count_indices(state, p + "text_model.encoder.layers.{}.layer_norm1.weight")
        intermediate = state[p + "text_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        projection = state.get(p + "text_projection.weight")
        projection = projection.T if projection is not None else None  # stored [projection, hidden]
    hidden = tokens.shape[1]
    config.update(
        dict(
            vocab_size=tokens.shape[0],
            hidden_size=hidden,
            max_position_embeddings=positions,
            num_hidden_layers=layers,
            intermediate_size=intermediate,
            num_attention_heads=max(1, hidden // HEAD_DIM),
            projection_dim=projection.shape[1] if projection is not None else hidden,
        )
    )
    return config
