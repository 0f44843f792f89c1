"""Tiny models of every family written once per session, plus helpers to compare modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from diffusion.demo_models import FAMILIES, TinyModel, build_tiny, write_single_file


@dataclass
class Written:
    tiny: TinyModel
    file: Path


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Written]:
    """Every family's tiny model and its single-file checkpoint (fp32, original key names)."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for family in FAMILIES:
        tiny = build_tiny(family)
        file = root / f"{family}.safetensors"
        write_single_file(tiny, file)
        out[family] = Written(tiny, file)
    return out


def unet_inputs(unet, seed: int = 0) -> dict:
    """Random inputs that exercise every part of a UNet, SDXL's added conditions included."""
    generator = torch.Generator().manual_seed(seed)
    config = unet.config
    inputs = {
        "sample": torch.randn(1, config.in_channels, 8, 8, generator=generator),
        "timestep": torch.tensor([321]),
        "encoder_hidden_states": torch.randn(1, 7, config.cross_attention_dim, generator=generator),
    }
    if config.addition_embed_type == "text_time":
        time_ids = (config.projection_class_embeddings_input_dim - 32) // config.addition_time_embed_dim
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, 32, generator=generator),
            "time_ids": torch.randn(1, time_ids, generator=generator) * 100,
        }
    return inputs


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()
