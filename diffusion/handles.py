"""MODEL, CLIP and VAE values: light immutable handles on weights the model manager holds.

A handle refers to loaded modules and records changes as data (a CLIP-skip layer, LoRA weight
patches). Deriving a handle never touches the shared weights, so every node output stays valid
while others derive from the same model; a handle's patches are put into the shared modules only
while it computes (`diffusion.patching`).
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from diffusion.clip_encoding import ClipEncoder, encode
from diffusion.families import Family, Prediction
from diffusion.patching import WeightPatch, patched
from engine.models import ModelManager


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A denoising UNet and what sampling must know about it."""

    unet: UNet2DConditionModel
    family: Family
    prediction: Prediction
    zero_terminal_snr: bool = False
    #: weight patches of the UNet (applied while the model is used), e.g. LoRAs with strengths
    patches: tuple[WeightPatch, ...] = ()

    def with_patches(self, *patches: WeightPatch) -> "ModelHandle":
        """The same model with more weight patches (after the ones it has)."""
        return dataclasses.replace(self, patches=self.patches + patches)

    @contextmanager
    def ready(self, manager: ModelManager) -> Iterator[torch.device]:
        """The UNet on the compute device with exactly this handle's patches; yields the device."""
        with manager.use(self.unet) as device, patched(self.unet, self.patches):
            yield device


@dataclass(frozen=True, eq=False)
class ClipHandle:
    """The text encoder(s) of a model family."""

    encoders: tuple[ClipEncoder, ...]
    #: CLIP skip (CLIPSetLastLayer: -1 .. -24); None keeps each encoder's default layer
    layer: int | None = None
    #: "cpu" keeps the encoders on the CPU whatever the memory mode (CLIPLoader's device input)
    device: str = "default"
    #: weight patches of the encoders (each names its encoder key as its component)
    patches: tuple[WeightPatch, ...] = ()

    def with_layer(self, layer: int) -> "ClipHandle":
        return dataclasses.replace(self, layer=layer)

    def with_patches(self, *patches: WeightPatch) -> "ClipHandle":
        """The same encoders with more weight patches (after the ones they have)."""
        return dataclasses.replace(self, patches=self.patches + patches)

    def encode(self, text: str | Mapping[str, str], manager: ModelManager, embedding_dirs: Sequence[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioning [1, 77k, dim] and pooled output [1, dim] for a prompt (per-encoder prompts
        as a mapping by encoder key)."""
        with ExitStack() as stack:
            if self.device != "cpu":
                stack.enter_context(manager.use(*(e.model for e in self.encoders)))
            for encoder in self.encoders:
                stack.enter_context(patched(encoder.model, [p for p in self.patches if p.component == encoder.key]))
            return encode(self.encoders, text, self.layer, embedding_dirs)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.encoders)


@dataclass(frozen=True, eq=False)
class VaeHandle:
    """An autoencoder between pixels and latents."""

    vae: AutoencoderKL
