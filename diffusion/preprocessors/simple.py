"""Preprocessors without weights, in OpenCV: ComfyUI's Canny, and the scribble and tile maps of
the community preprocessor pack (controlnet-aux 0.0.10 has neither)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from diffusion.preprocessors.images import Step, map_images, resized, scaled_size

#: ITU-R 601 luma weights, as kornia's rgb_to_grayscale (which ComfyUI's Canny uses)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: gradients are handed to cv2.Canny as int16: Sobel responses of a 0..1 image stay within ±4
GRADIENT_SCALE = 32767 / 4


def canny(images: torch.Tensor, low_threshold: float, high_threshold: float, step: Step | None = None) -> torch.Tensor:
    """ComfyUI's Canny edges (white on black, the input's size).

    As kornia's `canny`: grey, 5×5 Gaussian blur (σ 1), 3×3 Sobel gradients of the 0..1 image,
    hysteresis thresholds on their L2 magnitude. OpenCV does the non-maximum suppression and
    hysteresis on the same gradients, given in fixed point with the thresholds scaled alike.
    """

    def edges(image: np.ndarray) -> np.ndarray:
        grey = (image.astype(np.float32) / 255.0) @ LUMA
        blurred = cv2.GaussianBlur(grey, (5, 5), 1.0, borderType=cv2.BORDER_REFLECT_101)
        dx, dy = (
            np.round(cv2.Sobel(blurred, cv2.CV_32F, *order, ksize=3, borderType=cv2.BORDER_REPLICATE) * GRADIENT_SCALE).astype(np.int16)
            for order in ((1, 0), (0, 1))
        )
        return cv2.Canny(dx, dy, low_threshold * GRADIENT_SCALE, high_threshold * GRADIENT_SCALE, L2gradient=True)

    return map_images(images, edges, step=step)


def scribble(image: np.ndarray, resolution: int) -> np.ndarray:
    """Scribble map: black where a pixel is dark in every channel (below 127), white elsewhere,
    with the shorter side `resolution`."""
    image = resized(image, *scaled_size(*image.shape[:2], resolution))
    return np.where(image.min(axis=2) < 127, 0, 255).astype(np.uint8)


def tile(image: np.ndarray, resolution: int, pyrUp_iters: int) -> np.ndarray:
    """Tile map: the image (shorter side `resolution`) shrunk 2^`pyrUp_iters` times, then brought
    back up by as many Gaussian pyramid steps, which blurs away its detail."""
    height, width = scaled_size(*image.shape[:2], resolution)
    factor = 2**pyrUp_iters
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    for _ in range(pyrUp_iters):
        small = cv2.pyrUp(small)
    return small
