"""The Stable Diffusion wire types of the built-in nodes, named as in ComfyUI."""

from __future__ import annotations

from typing import Annotated, Any

from diffusion.controlnet import ControlModel
from diffusion.handles import ClipHandle, ModelHandle, VaeHandle
from engine import Socket
from spandrel import ImageModelDescriptor  # after diffusion, which makes torchvision importable

MODEL, CLIP, VAE, CONDITIONING = "MODEL", "CLIP", "VAE", "CONDITIONING"

Model = Annotated[ModelHandle, Socket(MODEL)]
Clip = Annotated[ClipHandle, Socket(CLIP)]
Vae = Annotated[VaeHandle, Socket(VAE)]
#: a list of [tensor [1, tokens, dim], {"pooled_output": ..., other options}] entries, as in ComfyUI
Conditioning = Annotated[list[list[Any]], Socket(CONDITIONING)]
CONTROL_NET = "CONTROL_NET"
#: a ControlNet or T2I-Adapter (`diffusion.controlnet`)
ControlNet = Annotated[ControlModel, Socket(CONTROL_NET)]

LATENT, SAMPLER, SIGMAS, NOISE, GUIDER = "LATENT", "SAMPLER", "SIGMAS", "NOISE", "GUIDER"

#: {"samples": [B, 4, H/8, W/8] unscaled VAE latents, optional "noise_mask" and "batch_index"}
Latent = Annotated[dict[str, Any], Socket(LATENT)]
Sigmas = Annotated[Any, Socket(SIGMAS)]

UPSCALE_MODEL = "UPSCALE_MODEL"

#: a spandrel single-image model (ESRGAN, SwinIR, …) loaded by `diffusion.upscale`
UpscaleModel = Annotated[ImageModelDescriptor, Socket(UPSCALE_MODEL)]
