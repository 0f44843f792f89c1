"""DWPose: whole-body keypoints (COCO-WholeBody's 133: 17 body, 6 feet, 68 face, 2 × 21 hands)
of each person that YOLOX finds, by RTMPose; both networks are the community's ONNX files, run
by OpenCV's DNN module on the CPU. The people come back as controlnet-aux's OpenPose
`PoseResult`s (body in OpenPose's 18-point order, the neck between the shoulders), so that
`calls.poses` draws and reports them as it does OpenPose's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from diffusion.families import ModelFormatError
from diffusion.preprocessors import rtmpose, yolox

BOX_DETECTOR = "yolox_l.onnx"
#: the pose estimators sdflow runs, and their input size (width, height)
POSE_SIZES = {"dw-ll_ucoco_384.onnx": (288, 384), "dw-ll_ucoco.onnx": (192, 256)}
#: the Hugging Face repository of each file
SOURCES = {BOX_DETECTOR: "yzd-v/DWPose", "dw-ll_ucoco_384.onnx": "yzd-v/DWPose", "dw-ll_ucoco.onnx": "hr16/UnJIT-DWPose"}
#: a keypoint scoring at most this is not drawn (and reported as 0, 0, 0)
KEYPOINT_THRESHOLD = 0.3
SIMCC = ("simcc_x", "simcc_y")
#: OpenPose's 18 body points among COCO-WholeBody's keypoints, the neck appended to them as 133
OPENPOSE_BODY = [0, 133, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
SHOULDERS = [5, 6]
FACE, LEFT_HAND, RIGHT_HAND = slice(23, 91), slice(91, 112), slice(112, 133)


def annotator_name(box_detector: str, pose_estimator: str) -> str:
    """The name in `annotators.ANNOTATORS` of DWPose with these files ("None": no detector,
    the whole image is one person)."""
    return f"dwpose:{box_detector}:{pose_estimator}"


@dataclass(frozen=True, eq=False)
class OnnxNet:
    """An ONNX network loaded by OpenCV, with its file's name (for messages) and size (the
    model manager's RAM budget counts `nbytes`)."""

    name: str
    net: Any
    nbytes: int

    def run(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        """The network's outputs, by name, for one input blob."""
        names = self.net.getUnconnectedOutLayersNames()
        try:
            self.net.setInput(blob)
            return dict(zip(names, self.net.forward(names)))
        except cv2.error as exc:
            raise ModelFormatError(f"{self.name}: OpenCV could not run it on a {list(blob.shape)} input ({_reason(exc)})") from None


def _reason(exc: cv2.error) -> str:
    """The message of an OpenCV error, without its source location."""
    return str(getattr(exc, "err", None) or exc).strip()


def read_onnx(path: Path) -> OnnxNet:
    """An ONNX file as an OpenCV network (ONNX holds no code: nothing runs on reading it)."""
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
    except cv2.error as exc:
        raise ModelFormatError(f"{path.name}: not an ONNX network OpenCV can read ({_reason(exc)})") from None
    return OnnxNet(path.name, net, path.stat().st_size)


class DWPose:
    """The detector: people's boxes by YOLOX (or the whole image without it), then RTMPose."""

    def __init__(self, detector: OnnxNet | None, estimator: OnnxNet) -> None:
        missing = set(SIMCC) - set(estimator.net.getUnconnectedOutLayersNames())
        if missing:
            raise ModelFormatError(f"{estimator.name}: not an RTMPose SimCC network (no {', '.join(sorted(missing))} output)")
        self.detector = detector
        self.estimator = estimator
        self.size = POSE_SIZES[estimator.name]

    def boxes(self, image: np.ndarray) -> np.ndarray:
        """The people's boxes `[n, 4]` (x1, y1, x2, y2) in a uint8 RGB image; the whole image
        when there is no detector or it finds nobody (as DWPose does)."""
        found = np.zeros((0, 4), dtype=np.float32)
        if self.detector is not None:
            blob, ratio = yolox.letterbox(np.ascontiguousarray(image[..., ::-1]))
            [output] = self.detector.run(blob).values()
            found = yolox.person_boxes(output, ratio)
        height, width = image.shape[:2]
        return found if len(found) else np.array([[0, 0, width, height]], dtype=np.float32)

    def keypoints(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each person's 133 keypoints `[n, 133, 2]` in image pixels and their scores `[n, 133]`."""
        points, scores = [], []
        for box in self.boxes(image):
            blob, matrix = rtmpose.crop(image, box, self.size)
            outputs = self.estimator.run(blob)
            located, score = rtmpose.decode(*(outputs[name][0] for name in SIMCC))
            points.append(rtmpose.to_image(located, matrix))
            scores.append(score)
        return np.stack(points), np.stack(scores)

    def detect_poses(self, image: np.ndarray, include_hand: bool = True, include_face: bool = True) -> list[Any]:
        """The people in a uint8 RGB image as OpenPose `PoseResult`s, coordinates in 0..1."""
        points, scores = self.keypoints(image)
        height, width = image.shape[:2]
        return people(points / (width, height), scores, include_hand, include_face)


def build(*nets: OnnxNet) -> DWPose:
    """DWPose from its files' networks, as `annotators` reads them: the detector's (unless the
    node's bbox_detector is "None") and the pose estimator's."""
    return DWPose(nets[0] if len(nets) == 2 else None, nets[-1])


def people(keypoints: np.ndarray, scores: np.ndarray, include_hand: bool, include_face: bool) -> list[Any]:
    """COCO-WholeBody keypoints `[n, 133, 2]` and scores `[n, 133]` as OpenPose `PoseResult`s:
    keypoints scoring at most KEYPOINT_THRESHOLD are None, the neck (between the shoulders) is
    seen when both shoulders are, the face gets OpenPose's two pupils (the body's eyes), and a
    hand or face with no keypoint seen (or not asked for) is None. People with no keypoint
    seen are left out."""
    from controlnet_aux.open_pose import BodyResult, PoseResult

    results = []
    for points, confidences in zip(keypoints, scores):
        if not (confidences > KEYPOINT_THRESHOLD).any():
            continue
        points = np.concatenate((points, points[SHOULDERS].mean(axis=0, keepdims=True)))
        confidences = np.append(confidences, confidences[SHOULDERS].min())
        body = _part(points, confidences, OPENPOSE_BODY)
        face = _seen(_part(points, confidences, FACE), include_face)
        if face is not None:
            face += [body[14], body[15]]
        visible = [point.score for point in body if point is not None]
        results.append(PoseResult(
            BodyResult(body, float(sum(visible)), len(visible)),
            left_hand=_seen(_part(points, confidences, LEFT_HAND), include_hand),
            right_hand=_seen(_part(points, confidences, RIGHT_HAND), include_hand),
            face=face,
        ))
    return results


def _part(points: np.ndarray, confidences: np.ndarray, indices: Any) -> list[Any]:
    """The OpenPose `Keypoint`s at `indices`, None where not seen."""
    from controlnet_aux.open_pose import Keypoint

    return [
        Keypoint(float(x), float(y), float(score), index) if score > KEYPOINT_THRESHOLD else None
        for index, ((x, y), score) in enumerate(zip(points[indices], confidences[indices]))
    ]


def _seen(keypoints: list[Any], wanted: bool) -> list[Any] | None:
    """A hand's or the face's keypoints, or None when not wanted or none is seen."""
    return keypoints if wanted and any(keypoints) else None
