"""MODEL, CLIP and VAE values: light immutable handles on weights the model manager holds.

A handle refers to loaded modules and records changes as data (a CLIP-skip layer now; LoRA and
other patches later). Deriving a handle never touches the shared weights, so every node output
stays valid while others derive from the same model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from diffusion.clip_encoding import ClipEncoder, encode
from diffusion.families import Family, Prediction
from engine.models import ModelManager


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A denoising UNet and what sampling must know about it."""

    unet: UNet2DConditionModel
    family: Family
    prediction: Prediction
    zero_terminal_snr: bool = False
    #: weight patches (applied when the model is used), e.g. LoRAs with strengths
    patches: tuple[Any, ...] = ()


@dataclass(frozen=True, eq=False)
class ClipHandle:
    """The text encoder(s) of a model family."""

    encoders: tuple[ClipEncoder, ...]
    #: CLIP skip (CLIPSetLastLayer: -1 .. -24); None keeps each encoder's default layer
    layer: int | None = None
    #: "cpu" keeps the encoders on the CPU whatever the memory mode (CLIPLoader's device input)
    device: str = "default"
    patches: tuple[Any, ...] = ()

    def with_layer(self, layer: int) -> "ClipHandle":
        return dataclasses.replace(self, layer=layer)

    def encode(self, text: str | Mapping[str, str], manager: ModelManager, embedding_dirs: Sequence[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioning [1, 77k, dim] and pooled output [1, dim] for a prompt (per-encoder prompts
        as a mapping by encoder key)."""
        models = [e.model for e in self.encoders]
        if self.device == "cpu":
            return encode(self.encoders, text, self.layer, embedding_dirs)
        with manager.use(*models):
            return encode(self.encoders, text, self.layer, embedding_dirs)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.encoders)


@dataclass(frozen=True, eq=False)
class VaeHandle:
    """An autoencoder between pixels and latents."""

    vae: AutoencoderKL
