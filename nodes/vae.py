"""VAE nodes: decode latents to images and encode images to latents (whole or tiled), and the
two ways of preparing an image for inpainting."""

from __future__ import annotations

from typing import Any

import torch

from diffusion import vae as service
from engine import IMAGE, Image, Input, Mask, Node, NodeContext, Output, node
from engine.models import ModelManager
from nodes.conditioning_edit import set_values
from nodes.sd_types import CONDITIONING, LATENT, Conditioning, Latent, Vae

TEMPORAL = "For video VAEs only; image VAEs ignore it."


def _tiles(tile_size: int, overlap: int) -> tuple[int, int]:
    """The tile size and overlap used: the overlap is at most a quarter of the tile."""
    return tile_size, overlap if overlap * 4 <= tile_size else tile_size // 4


@node(display_name="VAE Decode", category="latent", outputs=[Output(IMAGE)])
class VAEDecode(Node):
    """Decode latent images back into pixel images."""

    samples: Latent = Input(tooltip="The latent to be decoded.")
    vae: Vae = Input(tooltip="The VAE model used for decoding the latent.")

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return service.decode(self.vae, self.samples["samples"], ctx.services.get(ModelManager))


@node(display_name="VAE Encode", category="latent", outputs=[Output(LATENT)])
class VAEEncode(Node):
    """Encode images into latents (an alpha channel is dropped; sizes are cropped to multiples of 8)."""

    pixels: Image
    vae: Vae

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"samples": service.encode(self.vae, self.pixels, ctx.services.get(ModelManager))}


@node(display_name="VAE Decode (Tiled)", category="_for_testing", outputs=[Output(IMAGE)])
class VAEDecodeTiled(Node):
    """Decode latents tile by tile, for images too large to decode at once."""

    samples: Latent
    vae: Vae
    tile_size: int = Input(512, min=64, max=4096, step=32, tooltip="Tile size in pixels.")
    overlap: int = Input(64, min=0, max=4096, step=32, tooltip="Overlap of neighbouring tiles in pixels (at most a quarter of the tile).")
    temporal_size: int = Input(64, min=8, max=4096, step=4, tooltip=f"Frames decoded at a time. {TEMPORAL}")
    temporal_overlap: int = Input(8, min=4, max=4096, step=4, tooltip=f"Frames shared by neighbouring chunks. {TEMPORAL}")

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        tile, overlap = _tiles(self.tile_size, self.overlap)
        manager = ctx.services.get(ModelManager)
        return service.decode_tiled(self.vae, self.samples["samples"], manager, tile, overlap, progress=ctx.progress)


@node(display_name="VAE Encode (Tiled)", category="_for_testing", outputs=[Output(LATENT)])
class VAEEncodeTiled(Node):
    """Encode images tile by tile, for images too large to encode at once."""

    pixels: Image
    vae: Vae
    tile_size: int = Input(512, min=64, max=4096, step=64, tooltip="Tile size in pixels.")
    overlap: int = Input(64, min=0, max=4096, step=32, tooltip="Overlap of neighbouring tiles in pixels (at most a quarter of the tile).")
    temporal_size: int = Input(64, min=8, max=4096, step=4, tooltip=f"Frames encoded at a time. {TEMPORAL}")
    temporal_overlap: int = Input(8, min=4, max=4096, step=4, tooltip=f"Frames shared by neighbouring chunks. {TEMPORAL}")

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        tile, overlap = _tiles(self.tile_size, self.overlap)
        manager = ctx.services.get(ModelManager)
        return {"samples": service.encode_tiled(self.vae, self.pixels, manager, tile, overlap, progress=ctx.progress)}


@node(display_name="VAE Encode (for Inpainting)", category="latent/inpaint", outputs=[Output(LATENT)])
class VAEEncodeForInpaint(Node):
    """Encode an image for inpainting: the masked area is painted grey before encoding and
    becomes the latent's noise mask, grown by a few pixels to hide the seam."""

    pixels: Image
    vae: Vae
    mask: Mask
    grow_mask_by: int = Input(6, min=0, max=64, step=1)

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        pixels, mask = service.inpaint_inputs(self.pixels, self.mask, service.downscale_ratio(self.vae))
        latent = service.encode(self.vae, pixels, ctx.services.get(ModelManager))
        return {"samples": latent, "noise_mask": service.grow_mask(mask, self.grow_mask_by)}


@node(display_name="Inpaint Model Conditioning", category="conditioning/inpaint",
      outputs=[Output(CONDITIONING, "positive"), Output(CONDITIONING, "negative"), Output(LATENT, "latent")])
class InpaintModelConditioning(Node):
    """Prepare an image for inpainting models: the conditionings carry the encoded image with
    the masked area greyed out and the mask; the latent is the encoded image itself."""

    positive: Conditioning
    negative: Conditioning
    vae: Vae
    pixels: Image
    mask: Mask
    noise_mask: bool = Input(True, tooltip="Also regenerate only the masked area (adds the mask to the latent). "
                                           "Off gives better results with some models.")

    def execute(self, ctx: NodeContext) -> tuple[list[list[Any]], list[list[Any]], dict[str, Any]]:
        manager = ctx.services.get(ModelManager)
        pixels, mask = service.inpaint_inputs(self.pixels, self.mask, service.downscale_ratio(self.vae))
        concat = service.encode(self.vae, pixels, manager)
        latent: dict[str, Any] = {"samples": service.encode(self.vae, self.pixels, manager)}
        if self.noise_mask:
            latent["noise_mask"] = mask
        positive, negative = (set_values(c, concat_latent_image=concat, concat_mask=mask) for c in (self.positive, self.negative))
        return positive, negative, latent
