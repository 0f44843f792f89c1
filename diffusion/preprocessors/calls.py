"""How each kind of detector is called on one uint8 RGB image at a detection resolution.

Every call has the signature `(detector, image, resolution, **options) → uint8 map`; the map may
come back at any size, `images.map_images` brings it to the node's output size.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any, Callable

import numpy as np

from diffusion.preprocessors.images import numpy_seed
from diffusion.preprocessors.weights import AnnotatorUnavailable

Call = Callable[..., np.ndarray]


def sized(detector: Any, image: np.ndarray, resolution: int, **options: Any) -> np.ndarray:
    """controlnet-aux's usual call: detect at `resolution`, and return the map at it."""
    return detector(image, detect_resolution=resolution, image_resolution=resolution, output_type="np", **options)


def detected(detector: Any, image: np.ndarray, resolution: int, **options: Any) -> np.ndarray:
    """Detectors that take only the detection resolution (and return the map at the input's size)."""
    return detector(image, detect_resolution=resolution, output_type="np", **options)


def seeded(detector: Any, image: np.ndarray, resolution: int, seed: int, **options: Any) -> np.ndarray:
    """Detectors drawing from numpy's global generator (content shuffle), made repeatable by `seed`."""
    with numpy_seed(seed):
        return sized(detector, image, resolution, **options)


def midas_normal(detector: Any, image: np.ndarray, resolution: int, **options: Any) -> np.ndarray:
    """The normal map MiDaS derives from its depth (`a`, `bg_th` shape it)."""
    return sized(detector, image, resolution, depth_and_normal=True, **options)[1]


def plain(function: Callable[..., np.ndarray], image: np.ndarray, resolution: int, **options: Any) -> np.ndarray:
    """sdflow's own annotators (`simple.scribble`, `simple.tile`): `function(image, resolution, **options)`."""
    return function(image, resolution, **options)


def poses(
    detector: Any, image: np.ndarray, resolution: int, include_body: bool, include_hand: bool, include_face: bool, found: list[dict[str, Any]]
) -> np.ndarray:
    """OpenPose skeletons drawn on black; the keypoints are appended to `found` in the OpenPose
    JSON layout the community pack's POSE_KEYPOINT output uses (coordinates in 0..1)."""
    from controlnet_aux.open_pose import draw_poses
    from controlnet_aux.util import resize_image

    image = resize_image(image, resolution)
    height, width = image.shape[:2]
    people = detector.detect_poses(image, include_hand=include_hand, include_face=include_face)
    if include_hand and people and find_spec("matplotlib") is None:
        raise AnnotatorUnavailable(
            "drawing OpenPose hands needs matplotlib (controlnet-aux draws them with it), which is not installed: "
            "install it (pip install matplotlib), or set detect_hand to disable"
        )
    found.append({
        "people": [
            {
                "pose_keypoints_2d": _flat(person.body.keypoints),
                "face_keypoints_2d": _flat(person.face),
                "hand_left_keypoints_2d": _flat(person.left_hand),
                "hand_right_keypoints_2d": _flat(person.right_hand),
            }
            for person in people
        ],
        "canvas_height": height,
        "canvas_width": width,
    })
    return draw_poses([_drawable(person) for person in people], height, width, draw_body=include_body, draw_hand=include_hand, draw_face=include_face)


def _drawable(person: Any) -> Any:
    """A PoseResult whose unseen hand and face keypoints (None, as DWPose gives them) are off
    the canvas, where controlnet-aux's drawing skips them (it would fail on None)."""
    from controlnet_aux.open_pose import Keypoint

    def placed(keypoints: list[Any] | None) -> list[Any] | None:
        return keypoints and [Keypoint(-1.0, -1.0) if point is None else point for point in keypoints]

    return person._replace(left_hand=placed(person.left_hand), right_hand=placed(person.right_hand), face=placed(person.face))


def _flat(keypoints: list[Any] | None) -> list[float] | None:
    """Keypoints as [x, y, confidence, ...]; an undetected one is 0, 0, 0."""
    if not keypoints:
        return None
    return [value for point in keypoints for value in ((float(point.x), float(point.y), 1.0) if point is not None else (0.0, 0.0, 0.0))]


def segments(detector: Any, image: np.ndarray, resolution: int) -> np.ndarray:
    """Segment Anything's automatic masks, each painted one colour (the colours fixed by a seed,
    so the map is repeatable); black where no mask was found."""
    from controlnet_aux.util import resize_image

    image = resize_image(image, resolution)
    masks = detector.mask_generator.generate(image)
    if not masks:
        return np.zeros_like(image)
    with numpy_seed(0):
        return detector.show_anns(masks)
