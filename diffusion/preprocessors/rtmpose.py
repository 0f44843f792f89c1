"""RTMPose top-down keypoints for DWPose: each person's box cut out of the image by an affine
warp to the network's input, and its SimCC answer decoded back into image coordinates.

The network (`dw-ll_ucoco_384.onnx`: 288×384, `dw-ll_ucoco.onnx`: 192×256, width × height) takes
an RGB crop normalised by ImageNet's mean and deviation (0..255 scale) and answers, per keypoint,
a distribution over the crop's x and over its y (`simcc_x`, `simcc_y`) with SPLIT_RATIO bins
per pixel. The crop is the box enlarged by BOX_PADDING and widened or heightened to the input's
aspect ratio, around the box's centre.
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_PADDING = 1.25
SPLIT_RATIO = 2.0
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def crop_transform(box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 2×3 affine matrix taking image pixels into the crop of `size` (width, height) for
    `box` (x1, y1, x2, y2)."""
    width, height = size
    centre = (box[:2] + box[2:4]) / 2
    crop_width, crop_height = (box[2:4] - box[:2]) * BOX_PADDING
    crop_width = max(crop_width, crop_height * width / height)  # widened to the input's aspect ratio if need be
    scale = width / crop_width
    return np.array([[scale, 0, width / 2 - scale * centre[0]], [0, scale, height / 2 - scale * centre[1]]], dtype=np.float32)


def crop(image: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The network's input blob `[1, 3, height, width]` for one person of a uint8 RGB image, and
    the affine matrix from the image to it."""
    matrix = crop_transform(box, size)
    warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR)
    normalised = (warped.astype(np.float32) - MEAN) / STD
    return normalised.transpose(2, 0, 1)[None], matrix


def decode(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints `[..., K, 2]` in crop pixels and their scores `[..., K]` from SimCC
    distributions `[..., K, bins]`: each coordinate at its distribution's maximum, the score
    the smaller of the two maxima (as DWPose and MMPose 1.0 score them)."""
    locations = np.stack((simcc_x.argmax(-1), simcc_y.argmax(-1)), axis=-1).astype(np.float32) / SPLIT_RATIO
    return locations, np.minimum(simcc_x.max(-1), simcc_y.max(-1))


def to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop coordinates `[..., 2]` back in the image, through the inverse of `matrix`."""
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]
