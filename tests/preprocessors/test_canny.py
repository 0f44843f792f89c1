"""ComfyUI's Canny and the community pack's Canny Edge, against OpenCV and controlnet-aux."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from tests.preprocessors.conftest import run_node, synthetic, validation_error


def _opencv_canny(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """The same edges computed the plain way: 8-bit grey, blur, cv2.Canny on 0..255 (thresholds ×255)."""
    grey = np.round(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
    blurred = cv2.GaussianBlur(grey, (5, 5), 1.0, borderType=cv2.BORDER_REFLECT_101)
    return cv2.Canny(blurred, low * 255, high * 255, L2gradient=True) > 0


def test_canny_matches_opencv_and_keeps_the_size(runtime) -> None:
    image = synthetic(64, 80)
    edges = run_node(runtime, "Canny", image, low_threshold=0.4, high_threshold=0.8)
    assert edges.shape == (1, 64, 80, 3) and edges.dtype == torch.float32
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(edges[..., 0], edges[..., 2])
    found = edges[0, ..., 0].numpy() > 0
    expected = _opencv_canny(image, 0.4, 0.8)
    assert expected.sum() > 100
    assert (found != expected).mean() < 0.01
    # the white square's left side is an edge; the faint square (gradient ~0.3) stays below the thresholds
    assert found[10:30, 6:12].any() and not found[8:16, 50:70].any()


def test_lower_thresholds_find_faint_edges(runtime) -> None:
    edges = run_node(runtime, "Canny", low_threshold=0.05, high_threshold=0.1)
    assert edges[0, 8:16, 40:56, 0].any()


def test_canny_thresholds_in_order(runtime) -> None:
    details = validation_error(runtime, "Canny", low_threshold=0.9, high_threshold=0.2)
    assert "low_threshold (0.9) must not be above high_threshold (0.2)" in details


def test_canny_edge_preprocessor_is_controlnet_aux(runtime) -> None:
    from controlnet_aux.canny import CannyDetector

    image = synthetic()
    edges = run_node(runtime, "CannyEdgePreprocessor", image, batch=2, low_threshold=50, high_threshold=150, resolution=64)
    expected = CannyDetector()(image, low_threshold=50, high_threshold=150, detect_resolution=64, image_resolution=64)
    assert edges.shape == (2, 64, 64, 3)
    assert torch.equal(edges[1], edges[0])
    assert np.array_equal((edges[0].numpy() * 255).round().astype(np.uint8), expected)


def test_resolution_sets_the_shorter_side(runtime) -> None:
    edges = run_node(runtime, "CannyEdgePreprocessor", synthetic(64, 96), resolution=128)
    assert edges.shape == (1, 128, 192, 3)
