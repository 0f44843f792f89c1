"""Between IMAGE batches (float `[B, H, W, C]` in 0..1) and the uint8 RGB arrays annotators work on."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

#: one image (uint8 `[H, W, 3]`) → its control map (uint8 `[h, w]` or `[h, w, 3]`)
Annotate = Callable[[np.ndarray], np.ndarray]
#: called after each image of a batch with (done, total): progress and interrupt checks
Step = Callable[[int, int], None]


def to_array(image: torch.Tensor) -> np.ndarray:
    """One `[H, W, C]` image as uint8 RGB; a grey image is repeated, an alpha channel dropped."""
    rgb = image[..., :3] if image.shape[-1] >= 3 else image[..., :1].expand(*image.shape[:-1], 3)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def scaled_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side is `resolution`, the aspect ratio kept."""
    scale = resolution / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resized(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """`array` at (height, width): area averaging when shrinking, bilinear when enlarging."""
    if array.shape[:2] == (height, width):
        return array
    shrinking = height * width < array.shape[0] * array.shape[1]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def map_images(images: torch.Tensor, annotate: Annotate, size: tuple[int, int] | None = None, step: Step | None = None) -> torch.Tensor:
    """Annotate each image of a batch; the maps come back as an RGB IMAGE batch of `size`
    (height, width), by default the input's."""
    height, width = size or images.shape[1:3]
    maps = []
    for index, image in enumerate(images):
        result = resized(annotate(to_array(image)), height, width)
        if result.ndim == 2:
            result = np.repeat(result[..., None], 3, axis=2)
        maps.append(torch.from_numpy(np.ascontiguousarray(result)).float() / 255.0)
        if step is not None:
            step(index + 1, len(images))
    return torch.stack(maps)


@contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (which controlnet-aux draws from) inside the block; the
    previous state comes back after it, so results depend on `seed` alone."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)
