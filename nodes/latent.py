"""Latent nodes: empty latents, resizing, batches, compositing, blending and noise masks.

A LATENT is a dict as in ComfyUI: `{"samples": [B, 4, H/8, W/8], "noise_mask"?: mask,
"batch_index"?: [int]}` with unscaled VAE latents. Nodes return new dicts and never change the
tensors they receive. Sizes and positions of the inputs are in image pixels (8 per latent pixel).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from diffusion.latents import bislerp, composite
from engine import MAX_RESOLUTION, Input, Mask, Node, NodeContext, Output, node
from nodes.imaging import center_crop, common_upscale, repeat_to_batch_size
from nodes.sd_types import LATENT, Latent

UpscaleMethod = Literal["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
#: image pixels per latent pixel
RATIO = 8


def upscale_samples(samples: torch.Tensor, method: str, width: int, height: int, crop: str) -> torch.Tensor:
    """Resize latent samples to `width × height` latent pixels (`common_upscale` plus bislerp)."""
    if method != "bislerp":
        return common_upscale(samples, width, height, method, crop)
    if crop == "center":
        samples = center_crop(samples, width, height)
    return bislerp(samples, width, height)


def with_samples(latent: dict[str, Any], samples: torch.Tensor, **changes: Any) -> dict[str, Any]:
    """A copy of a LATENT dict with new samples (and other keys changed)."""
    return {**latent, "samples": samples, **changes}


@node(display_name="Empty Latent Image", category="latent", outputs=[Output(LATENT)])
class EmptyLatentImage(Node):
    """A batch of empty (all-zero) latent images to start sampling from."""

    width: int = Input(512, min=16, max=MAX_RESOLUTION, step=8, tooltip="The width of the latent images in pixels.")
    height: int = Input(512, min=16, max=MAX_RESOLUTION, step=8, tooltip="The height of the latent images in pixels.")
    batch_size: int = Input(1, min=1, max=4096, tooltip="The number of latent images in the batch.")

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"samples": torch.zeros(self.batch_size, 4, self.height // RATIO, self.width // RATIO)}


@node(display_name="Upscale Latent", category="latent", outputs=[Output(LATENT)])
class LatentUpscale(Node):
    """Resize latents to a size in pixels; a width or height of 0 keeps the aspect ratio
    (with at least 64 pixels on each side)."""

    samples: Latent
    upscale_method: UpscaleMethod = "nearest-exact"
    width: int = Input(512, min=0, max=MAX_RESOLUTION, step=8)
    height: int = Input(512, min=0, max=MAX_RESOLUTION, step=8)
    crop: Literal["disabled", "center"] = "disabled"

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        samples = self.samples["samples"]
        width, height = self.width, self.height
        if width == 0 and height == 0:
            return dict(self.samples)
        old_height, old_width = samples.shape[-2:]
        if width == 0:
            height = max(64, height)
            width = max(64, round(old_width * height / old_height))
        elif height == 0:
            width = max(64, width)
            height = max(64, round(old_height * width / old_width))
        resized = upscale_samples(samples, self.upscale_method, width // RATIO, height // RATIO, self.crop)
        return with_samples(self.samples, resized)


@node(display_name="Upscale Latent By", category="latent", outputs=[Output(LATENT)])
class LatentUpscaleBy(Node):
    """Resize latents by a factor."""

    samples: Latent
    upscale_method: UpscaleMethod = "nearest-exact"
    scale_by: float = Input(1.5, min=0.01, max=8.0, step=0.01)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        samples = self.samples["samples"]
        height, width = samples.shape[-2:]
        size = max(1, round(width * self.scale_by)), max(1, round(height * self.scale_by))
        return with_samples(self.samples, upscale_samples(samples, self.upscale_method, *size, "disabled"))


@node(display_name="Latent From Batch", category="latent/batch", outputs=[Output(LATENT)])
class LatentFromBatch(Node):
    """Take `length` latents from a batch, starting at `batch_index`. The picked latents keep their
    place in the batch, so sampling them draws the same noise as sampling the whole batch."""

    samples: Latent
    batch_index: int = Input(0, min=0, max=63)
    length: int = Input(1, min=1, max=64)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        samples = self.samples["samples"]
        start = min(samples.shape[0] - 1, self.batch_index)
        stop = start + min(samples.shape[0] - start, self.length)
        indices = self.samples.get("batch_index")
        changes: dict[str, Any] = {"batch_index": list(range(start, stop)) if indices is None else list(indices[start:stop])}
        mask = self.samples.get("noise_mask")
        if mask is not None and mask.shape[0] > 1:
            changes["noise_mask"] = repeat_to_batch_size(mask, samples.shape[0])[start:stop].clone()
        return with_samples(self.samples, samples[start:stop].clone(), **changes)


@node(display_name="Repeat Latent Batch", category="latent/batch", outputs=[Output(LATENT)])
class RepeatLatentBatch(Node):
    """Repeat a batch of latents `amount` times; repeated entries get their own noise."""

    samples: Latent
    amount: int = Input(1, min=1, max=64)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        samples = self.samples["samples"]
        changes: dict[str, Any] = {}
        mask = self.samples.get("noise_mask")
        if mask is not None and mask.shape[0] > 1:
            changes["noise_mask"] = _repeat(repeat_to_batch_size(mask, samples.shape[0]), self.amount)
        indices = self.samples.get("batch_index")
        if indices is not None:
            offset = max(indices) - min(indices) + 1
            changes["batch_index"] = [*indices, *(index + offset * i for i in range(1, self.amount) for index in indices)]
        return with_samples(self.samples, _repeat(samples, self.amount), **changes)


def _repeat(batch: torch.Tensor, amount: int) -> torch.Tensor:
    return batch.repeat(amount, *[1] * (batch.dim() - 1))


@node(display_name="Latent Composite", category="latent", outputs=[Output(LATENT)])
class LatentComposite(Node):
    """Paste one latent onto another at a position in pixels, optionally with feathered edges."""

    samples_to: Latent
    samples_from: Latent
    x: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    y: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    feather: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        destination = self.samples_to["samples"]
        source = self.samples_from["samples"]
        if source.shape[0] != destination.shape[0]:
            source = repeat_to_batch_size(source, destination.shape[0])
        pasted = composite(destination, source, self.x // RATIO, self.y // RATIO, self.feather // RATIO)
        return with_samples(self.samples_to, pasted)


@node(display_name="Latent Blend", category="_for_testing", outputs=[Output(LATENT)])
class LatentBlend(Node):
    """Mix two latents: samples1 × factor + samples2 × (1 - factor). samples2 is resized (bicubic,
    centre crop) to samples1's size when they differ."""

    samples1: Latent
    samples2: Latent
    blend_factor: float = Input(0.5, min=0.0, max=1.0, step=0.01)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        samples1, samples2 = self.samples1["samples"], self.samples2["samples"]
        if samples1.shape != samples2.shape:
            samples2 = common_upscale(samples2, samples1.shape[-1], samples1.shape[-2], "bicubic", "center")
        return with_samples(self.samples1, samples1 * self.blend_factor + samples2 * (1.0 - self.blend_factor))


@node(display_name="Set Latent Noise Mask", category="latent/inpaint", outputs=[Output(LATENT)])
class SetLatentNoiseMask(Node):
    """Attach a mask to latents: sampling regenerates only where the mask is 1."""

    samples: Latent
    mask: Mask

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        mask = self.mask.reshape(-1, 1, *self.mask.shape[-2:])
        return {**self.samples, "noise_mask": mask}

