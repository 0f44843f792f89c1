"""Mask nodes: make, convert, combine, feather, grow and threshold masks `[B, H, W]`."""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F

from engine import IMAGE, MASK, MAX_RESOLUTION, Image, Input, Mask, Node, NodeContext, NodeInputError, Output, node
from nodes.imaging import as_mask_batch

CHANNELS = ("red", "green", "blue", "alpha")


@node(display_name="Solid Mask", category="mask", outputs=[Output(MASK)])
class SolidMask(Node):
    """A mask filled with one value."""

    value: float = Input(1.0, min=0.0, max=1.0, step=0.01)
    width: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)
    height: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return torch.full((1, self.height, self.width), self.value, dtype=torch.float32)


@node(display_name="Invert Mask", category="mask", outputs=[Output(MASK)])
class InvertMask(Node):
    """Invert a mask (1 - value)."""

    mask: Mask

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return 1.0 - as_mask_batch(self.mask)


@node(display_name="Convert Mask to Image", category="mask", outputs=[Output(IMAGE)])
class MaskToImage(Node):
    """Turn a mask into a grey image (the mask value in all three channels)."""

    mask: Mask

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return as_mask_batch(self.mask)[..., None].repeat(1, 1, 1, 3)


@node(display_name="Convert Image to Mask", category="mask", outputs=[Output(MASK)])
class ImageToMask(Node):
    """Take one channel of an image as a mask."""

    image: Image
    channel: Literal["red", "green", "blue", "alpha"] = "red"

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        index = CHANNELS.index(self.channel)
        if index >= self.image.shape[-1]:
            raise NodeInputError("channel", f"the image has no {self.channel} channel ({self.image.shape[-1]} channels)")
        return self.image[..., index].clone()


def _logical(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A boolean operation on mask values rounded to 0/1."""
    return lambda a, b: op(a.round().bool(), b.round().bool()).float()


_OPERATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "multiply": torch.mul,
    "add": torch.add,
    "subtract": torch.sub,
    "and": _logical(torch.logical_and),
    "or": _logical(torch.logical_or),
    "xor": _logical(torch.logical_xor),
}


@node(display_name="Mask Composite", category="mask", outputs=[Output(MASK)])
class MaskComposite(Node):
    """Combine a source mask into a destination mask at (x, y); the result is clamped to 0..1."""

    destination: Mask
    source: Mask
    x: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    y: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    operation: Literal["multiply", "add", "subtract", "and", "or", "xor"] = "multiply"

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        output = as_mask_batch(self.destination).clone()
        source = as_mask_batch(self.source)
        height, width = output.shape[1:]
        left, top = min(self.x, width), min(self.y, height)
        right, bottom = min(left + source.shape[2], width), min(top + source.shape[1], height)
        region = output[:, top:bottom, left:right]
        output[:, top:bottom, left:right] = _OPERATIONS[self.operation](region, source[:, : bottom - top, : right - left])
        return output.clamp(0.0, 1.0)


def _edge_ramp(size: int, start: int, end: int) -> torch.Tensor:
    """Per-position factors: (i+1)/start for the i-th position from the start, likewise from the end, else 1."""
    start, end = min(start, size), min(end, size)
    factors = torch.ones(size, dtype=torch.float32)
    if start:
        factors[:start] *= torch.arange(1, start + 1, dtype=torch.float32) / start
    if end:
        factors[size - end :] *= torch.arange(end, 0, -1, dtype=torch.float32) / end
    return factors


@node(display_name="Feather Mask", category="mask", outputs=[Output(MASK)])
class FeatherMask(Node):
    """Fade a mask linearly towards its edges over the given number of pixels per side."""

    mask: Mask
    left: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    top: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    right: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    bottom: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        mask = as_mask_batch(self.mask)
        rows = _edge_ramp(mask.shape[1], self.top, self.bottom)
        cols = _edge_ramp(mask.shape[2], self.left, self.right)
        return mask * rows[:, None] * cols[None, :]


def _dilate(masks: torch.Tensor, tapered: bool) -> torch.Tensor:
    """One 3×3 grey dilation of `[B, 1, H, W]`: a cross (no corners) when tapered, else a square."""
    if not tapered:
        return F.max_pool2d(masks, 3, stride=1, padding=1)
    vertical = F.max_pool2d(masks, (3, 1), stride=1, padding=(1, 0))
    horizontal = F.max_pool2d(masks, (1, 3), stride=1, padding=(0, 1))
    return torch.maximum(vertical, horizontal)


@node(display_name="Grow Mask", category="mask", outputs=[Output(MASK)])
class GrowMask(Node):
    """Grow (expand > 0) or shrink (expand < 0) a mask by that many pixels."""

    mask: Mask
    expand: int = Input(0, min=-MAX_RESOLUTION, max=MAX_RESOLUTION, step=1)
    tapered_corners: bool = True

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        masks = as_mask_batch(self.mask)[:, None]
        sign = -1.0 if self.expand < 0 else 1.0  # erosion = dilation of the negated mask
        grown = sign * masks
        # beyond H + W steps every pixel already holds the extreme value of the whole mask
        for _ in range(min(abs(self.expand), masks.shape[2] + masks.shape[3])):
            ctx.check_interrupt()
            grown = _dilate(grown, self.tapered_corners)
        return (sign * grown)[:, 0]


@node(display_name="Threshold Mask", category="mask", outputs=[Output(MASK)])
class ThresholdMask(Node):
    """1 where the mask is above the value, else 0."""

    mask: Mask
    value: float = Input(0.5, min=0.0, max=1.0, step=0.01)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return (as_mask_batch(self.mask) > self.value).float()
