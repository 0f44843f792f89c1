"""Tiny random CLIP text encoders (real vocabulary size) for the text-encoding tests."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from diffusion.clip_encoding import ClipEncoder
from diffusion.families import CLIP_G_SDXL, CLIP_H_SD2, CLIP_L_SD1, CLIP_L_SDXL

HIDDEN_L = 64
HIDDEN_G = 96
PROJECTION = 32
LAYERS = 3


def _config(hidden: int, act: str, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=LAYERS,
        num_attention_heads=1,
        max_position_embeddings=77,
        hidden_act=act,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
        **extra,
    )


@pytest.fixture(scope="session")
def clip_l() -> CLIPTextModel:
    torch.manual_seed(0)
    return CLIPTextModel(_config(HIDDEN_L, "quick_gelu")).eval()


@pytest.fixture(scope="session")
def clip_h() -> CLIPTextModel:
    torch.manual_seed(1)
    return CLIPTextModel(_config(HIDDEN_L, "gelu")).eval()


@pytest.fixture(scope="session")
def clip_g() -> CLIPTextModelWithProjection:
    torch.manual_seed(2)
    return CLIPTextModelWithProjection(_config(HIDDEN_G, "gelu", projection_dim=PROJECTION)).eval()


@pytest.fixture(scope="session")
def sd1(clip_l):
    return (ClipEncoder.from_slot(CLIP_L_SD1, clip_l),)


@pytest.fixture(scope="session")
def sd2(clip_h):
    return (ClipEncoder.from_slot(CLIP_H_SD2, clip_h),)


@pytest.fixture(scope="session")
def sdxl(clip_l, clip_g):
    return (ClipEncoder.from_slot(CLIP_L_SDXL, clip_l), ClipEncoder.from_slot(CLIP_G_SDXL, clip_g))
