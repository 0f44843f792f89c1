"""Private tiny models for the LoRA tests (patching changes modules in place while in use, so the
session's shared tiny models are left alone) and diffusers' own LoRA fusing as the reference."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

from diffusion.demo_models import TinyModel, build_tiny


@pytest.fixture(scope="module")
def tiny_sd15() -> TinyModel:
    return build_tiny("sd15")


@pytest.fixture(scope="module")
def tiny_sdxl() -> TinyModel:
    return build_tiny("sdxl")


def fused_by_diffusers(tiny: TinyModel, lora_file, scale: float) -> dict[str, dict[str, torch.Tensor]]:
    """The state dicts ("unet", encoder keys) diffusers gives after loading and fusing the LoRA."""
    parts = dict(vae=tiny.vae, unet=copy.deepcopy(tiny.unet), scheduler=EulerDiscreteScheduler(steps_offset=1), tokenizer=None)
    encoders = {key: copy.deepcopy(model) for key, model in tiny.text_encoders.items()}
    if tiny.family == "sdxl":
        pipeline = StableDiffusionXLPipeline(**parts, text_encoder=encoders["clip_l"], text_encoder_2=encoders["clip_g"], tokenizer_2=None)
    else:
        (encoder,) = encoders.values()
        pipeline = StableDiffusionPipeline(**parts, text_encoder=encoder, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.load_lora_weights(str(lora_file))
    pipeline.fuse_lora(lora_scale=scale)
    pipeline.unload_lora_weights()
    return {"unet": pipeline.unet.state_dict(), **{key: model.state_dict() for key, model in encoders.items()}}
