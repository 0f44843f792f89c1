"""Image nodes that compute new images from others: scaling, inverting, batching, padding,
cropping, compositing, and solid-colour images."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from engine import IMAGE, MASK, MAX_RESOLUTION, Image, Input, Mask, Node, NodeContext, NodeInputError, Output, node
from nodes.imaging import as_mask_batch, repeat_to_batch_size, scale_image

UpscaleMethod = Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]


@node(display_name="Upscale Image", category="image/upscaling", outputs=[Output(IMAGE)])
class ImageScale(Node):
    """Resize images to a width and height; a size of 0 keeps the aspect ratio."""

    image: Image
    upscale_method: UpscaleMethod = "nearest-exact"
    width: int = Input(512, min=0, max=MAX_RESOLUTION, step=1)
    height: int = Input(512, min=0, max=MAX_RESOLUTION, step=1)
    crop: Literal["disabled", "center"] = "disabled"

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        width, height = self.width, self.height
        if width == 0 and height == 0:
            return self.image
        old_height, old_width = self.image.shape[1:3]
        if width == 0:
            width = max(1, round(old_width * height / old_height))
        elif height == 0:
            height = max(1, round(old_height * width / old_width))
        return scale_image(self.image, width, height, self.upscale_method, self.crop)


@node(display_name="Upscale Image By", category="image/upscaling", outputs=[Output(IMAGE)])
class ImageScaleBy(Node):
    """Resize images by a factor."""

    image: Image
    upscale_method: UpscaleMethod = "nearest-exact"
    scale_by: float = Input(1.0, min=0.01, max=8.0, step=0.01)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        height, width = self.image.shape[1:3]
        size = max(1, round(width * self.scale_by)), max(1, round(height * self.scale_by))
        return scale_image(self.image, *size, self.upscale_method)


@node(display_name="Scale Image to Total Pixels", category="image/upscaling", outputs=[Output(IMAGE)])
class ImageScaleToTotalPixels(Node):
    """Resize images to about a number of megapixels, keeping the aspect ratio."""

    image: Image
    upscale_method: UpscaleMethod = "nearest-exact"
    megapixels: float = Input(1.0, min=0.01, max=16.0, step=0.01)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        height, width = self.image.shape[1:3]
        scale = math.sqrt(self.megapixels * 1024 * 1024 / (width * height))
        return scale_image(self.image, max(1, round(width * scale)), max(1, round(height * scale)), self.upscale_method)


@node(display_name="Invert Image", category="image", outputs=[Output(IMAGE)])
class ImageInvert(Node):
    """Invert the colours of images (1 - value)."""

    image: Image

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return 1.0 - self.image


@node(display_name="Batch Images", category="image", outputs=[Output(IMAGE)])
class ImageBatch(Node):
    """Join two image batches; image2 is resized (bilinear, centre crop) to image1's size."""

    image1: Image
    image2: Image

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        image1, image2 = self.image1, self.image2
        if image1.shape[-1] != image2.shape[-1]:
            raise NodeInputError("image2", f"has {image2.shape[-1]} channels but image1 has {image1.shape[-1]}")
        if image1.shape[1:] != image2.shape[1:]:
            image2 = scale_image(image2, image1.shape[2], image1.shape[1], "bilinear", "center")
        return torch.cat((image1, image2), dim=0)


@node(display_name="Empty Image", category="image", outputs=[Output(IMAGE)])
class EmptyImage(Node):
    """A batch of images filled with one colour."""

    width: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)
    height: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)
    batch_size: int = Input(1, min=1, max=4096)
    color: int = Input(0, min=0, max=0xFFFFFF, step=1, display="color")

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        rgb = torch.tensor([((self.color >> shift) & 0xFF) / 0xFF for shift in (16, 8, 0)], dtype=torch.float32)
        return rgb.repeat(self.batch_size, self.height, self.width, 1)


def _outpaint_feather(height: int, width: int, sides: tuple[int, int, int, int], feathering: int) -> torch.Tensor:
    """Mask values inside the original image: ((f - d) / f)² near padded sides, d = distance to the nearest one.

    `sides` = (left, top, right, bottom); a side without padding counts as the full dimension away.
    """
    left, top, right, bottom = sides
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    far_rows, far_cols = torch.full_like(rows, height), torch.full_like(cols, width)
    vertical = torch.minimum(rows if top else far_rows, height - rows if bottom else far_rows)
    horizontal = torch.minimum(cols if left else far_cols, width - cols if right else far_cols)
    distance = torch.minimum(vertical[:, None], horizontal[None, :])
    ramp = ((feathering - distance) / feathering).clamp(min=0)
    return (ramp * ramp).to(torch.float32)


@node(display_name="Pad Image for Outpainting", category="image", outputs=[Output(IMAGE), Output(MASK)])
class ImagePadForOutpaint(Node):
    """Pad images with grey for outpainting; the mask is 1 over the padding, feathered into the image."""

    image: Image
    left: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    top: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    right: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    bottom: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    feathering: int = Input(40, min=0, max=MAX_RESOLUTION, step=1)

    def execute(self, ctx: NodeContext) -> tuple[torch.Tensor, torch.Tensor]:
        batch, height, width, channels = self.image.shape
        size = (height + self.top + self.bottom, width + self.left + self.right)
        inside = (slice(self.top, self.top + height), slice(self.left, self.left + width))
        padded = torch.full((batch, *size, channels), 0.5, dtype=self.image.dtype)
        padded[:, inside[0], inside[1], :] = self.image
        mask = torch.ones(size, dtype=torch.float32)
        feathering = self.feathering
        if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
            mask[inside] = _outpaint_feather(height, width, (self.left, self.top, self.right, self.bottom), feathering)
        else:
            mask[inside] = 0.0
        return padded, mask.unsqueeze(0)


@node(display_name="Image Crop", category="image/transform", outputs=[Output(IMAGE)])
class ImageCrop(Node):
    """Crop a rectangle out of images (clipped to the image)."""

    image: Image
    width: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)
    height: int = Input(512, min=1, max=MAX_RESOLUTION, step=1)
    x: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    y: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        x = min(self.x, self.image.shape[2] - 1)
        y = min(self.y, self.image.shape[1] - 1)
        return self.image[:, y : y + self.height, x : x + self.width, :].clone()


def _match_channels(destination: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The source with the destination's channel count: extra channels dropped, a missing alpha set to 1."""
    channels = destination.shape[-1]
    if source.shape[-1] > channels:
        return source[..., :channels]
    if source.shape[-1] < channels:
        return F.pad(source, (0, channels - source.shape[-1]), value=1.0)
    return source


@node(display_name="Image Composite Masked", category="image", outputs=[Output(IMAGE)])
class ImageCompositeMasked(Node):
    """Paste a source image onto a destination at (x, y), blended through an optional mask."""

    destination: Image
    source: Image
    x: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    y: int = Input(0, min=0, max=MAX_RESOLUTION, step=1)
    resize_source: bool = False
    mask: Mask | None = None

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        destination = self.destination
        batch, dest_height, dest_width, _ = destination.shape
        source = _match_channels(destination, self.source)
        if self.resize_source:
            source = scale_image(source, dest_width, dest_height, "bilinear")
        source = repeat_to_batch_size(source, batch)
        src_height, src_width = source.shape[1:3]
        left, top = min(self.x, dest_width), min(self.y, dest_height)
        visible_width, visible_height = min(src_width, dest_width - left), min(src_height, dest_height - top)
        if self.mask is None:
            mask = torch.ones((batch, visible_height, visible_width, 1), dtype=destination.dtype)
        else:
            mask = as_mask_batch(self.mask)[:, None]
            if mask.shape[-2:] != (src_height, src_width):
                mask = F.interpolate(mask, size=(src_height, src_width), mode="bilinear")
            mask = repeat_to_batch_size(mask, batch).movedim(1, -1)[:, :visible_height, :visible_width]
        region = (slice(None), slice(top, top + visible_height), slice(left, left + visible_width))
        output = destination.clone()
        output[region] = mask * source[:, :visible_height, :visible_width] + (1.0 - mask) * destination[region]
        return output
