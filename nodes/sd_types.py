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
