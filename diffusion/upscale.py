"""Upscale models (ESRGAN, RealESRGAN, SwinIR, … any single-image model spandrel reads) and
tiled upscaling with them.

Files are read by `diffusion.loading.read_state_dict` (pickles only with `weights_only=True`);
spandrel only recognises the architecture from the tensors and builds the module, which runs in
fp32. Upscaling works as ComfyUI's does: overlapping tiles of 512 pixels (overlap 32) whose
results are cross-faded, the tile halved whenever the GPU runs out of memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

from diffusion.families import ModelFormatError
from diffusion.loading import read_state_dict
from diffusion.vae import Progress, tiled
from engine.models import ModelManager, file_key

log = logging.getLogger(__name__)

TILE, OVERLAP = 512, 32
#: the smallest tile tried after running out of memory
MIN_TILE = 128


def load_upscale_model(path: Path, manager: ModelManager) -> ImageModelDescriptor:
    """The upscale model in a file, loaded once through the manager."""
    return manager.load((*file_key(path), "upscale_model"), lambda: _load(path))


def _load(path: Path) -> ImageModelDescriptor:
    state = dict(read_state_dict(path))
    if not state:
        raise ModelFormatError(f"{path.name}: holds no tensors")
    try:
        model = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        examples = ", ".join(list(state)[:3])
        raise ModelFormatError(f"{path.name}: not an upscale model of a known architecture ({len(state)} tensors, e.g. {examples})") from None
    except (KeyError, IndexError, ValueError, RuntimeError, AssertionError) as exc:
        raise ModelFormatError(f"{path.name}: its tensors do not fit the upscale architecture they resemble ({exc})") from None
    if not isinstance(model, ImageModelDescriptor):
        raise ModelFormatError(f"{path.name}: a {model.architecture.name} {model.purpose} model, not a single-image upscale model")
    return model.eval()


def upscale(
    model: ImageModelDescriptor,
    image: torch.Tensor,
    manager: ModelManager,
    tile: int = TILE,
    overlap: int = OVERLAP,
    progress: Progress | None = None,
) -> torch.Tensor:
    """IMAGE `[B, H, W, C]` → `[B, H·scale, W·scale, C']` in 0..1, tile by tile (C' = the model's
    output channels; channels beyond the model's inputs, such as alpha, are dropped).

    On a CUDA out-of-memory error the tile is halved and the batch started again; below
    `MIN_TILE` the error is raised with the sizes tried.
    """
    pixels = image[..., : model.input_channels].movedim(-1, 1)
    with manager.use(model.model) as device:
        first = tile
        while True:
            try:
                return _upscale_tiles(model, pixels, device, tile, overlap, progress).movedim(1, -1).clamp(0.0, 1.0)
            except torch.cuda.OutOfMemoryError as exc:
                if tile // 2 < MIN_TILE:
                    raise torch.cuda.OutOfMemoryError(
                        f"out of GPU memory upscaling a {pixels.shape[-1]}x{pixels.shape[-2]} image, "
                        f"even in tiles of {tile} pixels (started at {first}): {str(exc).splitlines()[0]}"
                    ) from exc
                tile //= 2
                log.warning("out of GPU memory while upscaling; retrying with %d-pixel tiles", tile)
                torch.cuda.empty_cache()


def _upscale_tiles(
    model: ImageModelDescriptor, pixels: torch.Tensor, device: torch.device, tile: int, overlap: int, progress: Progress | None
) -> torch.Tensor:
    """Each image of `[B, C, H, W]` upscaled on its own, in tiles; progress counts the tiles of the whole batch."""

    def step(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(device, model.dtype)).float().cpu()

    def image_progress(index: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total: progress(index * total + done, len(pixels) * total)

    return torch.cat([tiled(pixels[i : i + 1], step, tile, overlap, model.scale, 1, image_progress(i)) for i in range(len(pixels))])
