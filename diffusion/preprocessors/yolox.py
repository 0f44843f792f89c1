"""YOLOX person detection for DWPose, from the raw output of the community's `yolox_l.onnx`.

The network takes a 640×640 BGR image (the picture resized into its top-left corner, keeping its
aspect ratio, the rest filled with 114; values 0..255, not normalised) and answers one row of
85 values per anchor of its three grids (strides 8, 16 and 32, row-major; 8400 rows): the box
centre as an offset from the anchor's cell and its size as a log, both in strides, then the
objectness and the 80 COCO class probabilities. Class 0 is the person.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from diffusion.preprocessors.nms import batched_nms

SIZE = 640
STRIDES = (8, 16, 32)
PADDING = 114
#: a person is kept above this score (objectness × person probability), as DWPose does
SCORE_THRESHOLD = 0.3
#: of two person boxes overlapping by more than this (IoU), the less likely one is dropped
IOU_THRESHOLD = 0.45


def letterbox(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The network's input blob `[1, 3, 640, 640]` (float32) for a uint8 BGR image, and the
    scale from the image to the blob."""
    height, width = image.shape[:2]
    ratio = min(SIZE / height, SIZE / width)
    resized = cv2.resize(image, (int(width * ratio), int(height * ratio)), interpolation=cv2.INTER_LINEAR)
    padded = np.full((SIZE, SIZE, 3), PADDING, dtype=np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return padded.transpose(2, 0, 1)[None].astype(np.float32), ratio


def _anchors() -> tuple[np.ndarray, np.ndarray]:
    """Each output row's cell (x, y) in its grid and that grid's stride, in the network's order."""
    cells, strides = [], []
    for stride in STRIDES:
        side = SIZE // stride
        rows, cols = np.mgrid[:side, :side]
        cells.append(np.stack((cols, rows), axis=-1).reshape(-1, 2))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The person boxes (x1, y1, x2, y2, in the blob's pixels) and scores of every anchor, from
    the raw output `[1, 8400, 85]`."""
    rows = output.reshape(-1, output.shape[-1]).astype(np.float32)
    cells, strides = _anchors()
    if len(rows) != len(cells):
        raise ValueError(f"a YOLOX output for {SIZE}×{SIZE} has {len(cells)} rows, not {len(rows)}")
    centres = (rows[:, :2] + cells) * strides
    with np.errstate(over="ignore", under="ignore"):  # boxes too large or too small to be, dropped later
        sizes = np.exp(rows[:, 2:4]) * strides
    boxes = np.concatenate((centres - sizes / 2, centres + sizes / 2), axis=1)
    return boxes, rows[:, 4] * rows[:, 5]


def person_boxes(output: np.ndarray, ratio: float) -> np.ndarray:
    """The people found, `[n, 4]` boxes in the image's pixels, most likely first: anchors above
    SCORE_THRESHOLD with a finite, non-empty box, overlapping ones reduced to the best by
    non-maximum suppression."""
    boxes, scores = decode(output)
    confident = (scores > SCORE_THRESHOLD) & np.isfinite(boxes).all(axis=1) & (boxes[:, 2:] > boxes[:, :2]).all(axis=1)
    boxes, scores = torch.from_numpy(boxes[confident]), torch.from_numpy(scores[confident])
    kept = batched_nms(boxes, scores, torch.zeros(len(boxes), dtype=torch.int64), IOU_THRESHOLD)
    return boxes[kept].numpy() / ratio
