"""The VAE service: pixels ↔ latents, whole or in overlapping tiles, and inpainting's pixel preparation.

Pixels are IMAGE batches `[B, H, W, C]` in 0..1; latents are the VAE's own (unscaled) latents
`[B, 4, H/8, W/8]`, float32 on the CPU. Encoding keeps the mean of the latent distribution (no
sampling), so the same image always gives the same latent.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from diffusion.handles import VaeHandle
from engine.models import ModelManager

Progress = Callable[[int, int], None]
#: a VAE half applied to a batch already on the VAE's device and in its dtype
Step = Callable[[AutoencoderKL, torch.Tensor], torch.Tensor]

#: working memory for one batch when the compute device is the CPU
CPU_BATCH_BYTES = 2 * 1024**3
#: activations alive at once, in multiples of (widest channel count × pixels) of one image
ACTIVATIONS = 3


def downscale_ratio(vae: VaeHandle) -> int:
    """Pixels per latent pixel along each side: 2^(levels - 1), 8 for Stable Diffusion's VAEs."""
    return 2 ** (len(vae.vae.config.block_out_channels) - 1)


def crop_to_multiple(samples: torch.Tensor, ratio: int, dims: tuple[int, int] = (1, 2)) -> torch.Tensor:
    """Narrow the two spatial `dims` to multiples of `ratio`, keeping the centre (the leftover
    pixels split with the smaller half before)."""
    for dim in dims:
        size = samples.shape[dim]
        samples = samples.narrow(dim, (size % ratio) // 2, size // ratio * ratio)
    return samples


def encode(vae: VaeHandle, pixels: torch.Tensor, manager: ModelManager) -> torch.Tensor:
    """IMAGE → latent. Channels beyond RGB are dropped; sizes are cropped to multiples of the ratio."""
    with _running(vae, manager, _encode_step) as run:
        return run(_vae_input(vae, pixels), 1)


def decode(vae: VaeHandle, latent: torch.Tensor, manager: ModelManager) -> torch.Tensor:
    """Latent → IMAGE `[B, H, W, 3]` in 0..1."""
    with _running(vae, manager, _decode_step) as run:
        return _image(run(latent, downscale_ratio(vae) ** 2))


def encode_tiled(
    vae: VaeHandle, pixels: torch.Tensor, manager: ModelManager, tile_size: int = 512, overlap: int = 64, progress: Progress | None = None
) -> torch.Tensor:
    """`encode` tile by tile (square tiles of `tile_size` pixels overlapping by at least
    `overlap`), for images too large to encode at once. Seams are cross-faded; the shape equals
    `encode`'s."""
    ratio = downscale_ratio(vae)
    tile, overlap = max(ratio, tile_size // ratio * ratio), overlap // ratio * ratio
    with _running(vae, manager, _encode_step) as run:
        return tiled(_vae_input(vae, pixels), lambda x: run(x, 1), tile, overlap, 1, ratio, progress)


def decode_tiled(
    vae: VaeHandle, latent: torch.Tensor, manager: ModelManager, tile_size: int = 512, overlap: int = 64, progress: Progress | None = None
) -> torch.Tensor:
    """`decode` tile by tile; `tile_size` and `overlap` are in pixels (divided by the ratio for the latent)."""
    ratio = downscale_ratio(vae)
    with _running(vae, manager, _decode_step) as run:
        samples = tiled(latent, lambda z: run(z, ratio**2), max(1, tile_size // ratio), overlap // ratio, ratio, 1, progress)
    return _image(samples)


def tiled(
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    tile: int,
    overlap: int,
    up: int,
    down: int,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Apply `fn` to overlapping square tiles of `x` `[B, C, H, W]` and blend the results.

    `fn` maps a tile of size s to one of size s·up/down (tile, overlap and x's size are multiples
    of `down`). Tiles overlap by at least `overlap`; across each overlap the two tiles cross-fade
    linearly (weights normalised by their sum).
    """
    if overlap >= tile:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile ({tile})")
    rows = _axis_tiles(x.shape[-2], tile, overlap, up, down)
    cols = _axis_tiles(x.shape[-1], tile, overlap, up, down)
    out = weights = None
    for index, ((rows_in, rows_out, row_weight), (cols_in, cols_out, col_weight)) in enumerate((r, c) for r in rows for c in cols):
        result = fn(x[..., rows_in, cols_in])
        if out is None:
            out = result.new_zeros(*result.shape[:2], rows[-1][1].stop, cols[-1][1].stop)
            weights = result.new_zeros(rows[-1][1].stop, cols[-1][1].stop)
        weight = row_weight[:, None] * col_weight[None, :]
        out[..., rows_out, cols_out] += result * weight
        weights[rows_out, cols_out] += weight
        if progress is not None:
            progress(index + 1, len(rows) * len(cols))
    return out / weights


def _axis_tiles(size: int, tile: int, overlap: int, up: int, down: int) -> list[tuple[slice, slice, torch.Tensor]]:
    """The tiles along one axis: input extent, output extent and output weights of each.

    As few tiles as overlap by at least `overlap`, spread evenly from end to end and starting at
    multiples of `down`. A tile's weight rises as (k+1)/(n+1) across the n pixels it shares with
    its neighbour, and the neighbour's falls alike, so the two always sum to 1.
    """
    if size <= tile:
        starts = [0]
    else:
        count = math.ceil((size - overlap) / (tile - overlap))
        starts = [round(i * (size - tile) / (count - 1) / down) * down for i in range(count)]
    inputs = [slice(start, min(start + tile, size)) for start in starts]
    outputs = [slice(span.start * up // down, span.stop * up // down) for span in inputs]
    tiles = []
    for i, (span_in, span) in enumerate(zip(inputs, outputs)):
        weight = torch.ones(span.stop - span.start)
        shared_before = outputs[i - 1].stop - span.start if i > 0 else 0
        shared_after = span.stop - outputs[i + 1].start if i + 1 < len(outputs) else 0
        if shared_before:
            weight[:shared_before] = torch.arange(1, shared_before + 1) / (shared_before + 1)
        if shared_after:
            fall = torch.arange(shared_after, 0, -1) / (shared_after + 1)
            weight[-shared_after:] = torch.minimum(weight[-shared_after:], fall)
        tiles.append((span_in, span, weight))
    return tiles


def inpaint_inputs(pixels: torch.Tensor, mask: torch.Tensor, ratio: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels and mask prepared for inpainting: the mask resized (bilinear) to the pixels, both
    cropped to multiples of `ratio`, masked pixels (mask ≥ 0.5) set to 0.5 grey.

    Returns the RGB pixels `[B, H, W, 3]` and the (unrounded) mask `[B, 1, H, W]`.
    """
    mask = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).float(), size=pixels.shape[1:3], mode="bilinear")
    pixels = crop_to_multiple(pixels[..., :3], ratio)
    mask = crop_to_multiple(mask, ratio, dims=(2, 3))
    keep = (1.0 - mask.round()).movedim(1, -1)
    return (pixels - 0.5) * keep + 0.5, mask


def grow_mask(mask: torch.Tensor, by: int) -> torch.Tensor:
    """A `[B, 1, H, W]` mask rounded and dilated by a `by`×`by` box (0 keeps it as it is), so that
    the regenerated area reaches a little past the masked pixels."""
    if by == 0:
        return mask.round()
    kernel = torch.ones(1, 1, by, by)
    grown = F.conv2d(mask.round(), kernel, padding=math.ceil((by - 1) / 2)).clamp(0, 1)
    return grown[..., : mask.shape[-2], : mask.shape[-1]].round()


# ---- running the VAE ----------------------------------------------------------------------


def _encode_step(vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    return vae.encode(pixels).latent_dist.mean


def _decode_step(vae: AutoencoderKL, latent: torch.Tensor) -> torch.Tensor:
    return vae.decode(latent).sample


def _vae_input(vae: VaeHandle, pixels: torch.Tensor) -> torch.Tensor:
    """IMAGE → the encoder's input `[B, 3, H, W]` in -1..1, cropped to multiples of the ratio."""
    return crop_to_multiple(pixels[..., :3], downscale_ratio(vae)).movedim(-1, 1) * 2.0 - 1.0


def _image(decoded: torch.Tensor) -> torch.Tensor:
    return ((decoded + 1.0) / 2.0).clamp(0.0, 1.0).movedim(1, -1)


@contextmanager
def _running(vae: VaeHandle, manager: ModelManager, step: Step) -> Iterator[Callable[[torch.Tensor, int], torch.Tensor]]:
    """Hold the VAE on the compute device; yields `run(x, pixels_per_input_pixel)` that applies
    `step` to x in batches that fit in memory and returns float32 on the CPU."""
    module = vae.vae
    with manager.use(module) as device, torch.no_grad():
        parameter = next(module.parameters())

        def run(x: torch.Tensor, area_factor: int) -> torch.Tensor:
            size = _batch_size(module, x.shape[-2] * x.shape[-1] * area_factor, parameter.element_size(), device)
            chunks = [step(module, chunk.to(device, parameter.dtype)).float().cpu() for chunk in x.split(size)]
            return torch.cat(chunks)

        yield run


def _batch_size(vae: AutoencoderKL, pixels: int, element_size: int, device: torch.device) -> int:
    """How many images to run at once: a rough activation estimate against free memory."""
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else CPU_BATCH_BYTES
    per_image = pixels * max(vae.config.block_out_channels) * element_size * ACTIVATIONS
    return max(1, free // per_image)
