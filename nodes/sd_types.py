"""The Stable Diffusion wire types of the built-in nodes, named as in ComfyUI."""

from __future__ import annotations

from typing import Annotated, Any

from diffusion.handles import ClipHandle, ModelHandle, VaeHandle
from engine import Socket

MODEL, CLIP, VAE, CONDITIONING = "MODEL", "CLIP", "VAE", "CONDITIONING"

Model = Annotated[ModelHandle, Socket(MODEL)]
Clip = Annotated[ClipHandle, Socket(CLIP)]
Vae = Annotated[VaeHandle, Socket(VAE)]
#: a list of [tensor [1, tokens, dim], {"pooled_output": ..., other options}] entries, as in ComfyUI
Conditioning = Annotated[list[list[Any]], Socket(CONDITIONING)]

LATENT, SAMPLER, SIGMAS, NOISE, GUIDER = "LATENT", "SAMPLER", "SIGMAS", "NOISE", "GUIDER"

#: {"samples": [B, 4, H/8, W/8] unscaled VAE latents, optional "noise_mask" and "batch_index"}
Latent = Annotated[dict[str, Any], Socket(LATENT)]
Sigmas = Annotated[Any, Socket(SIGMAS)]
