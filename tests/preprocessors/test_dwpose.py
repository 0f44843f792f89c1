"""DWPose: YOLOX and SimCC decoding on hand-made outputs, the OpenPose layout of its keypoints,
and the node end to end through the executor on tiny ONNX stand-ins run by OpenCV."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion.families import ModelFormatError
from diffusion.preprocessors import dwpose, rtmpose, yolox
from tests.preprocessors.conftest import node_failure, run_node, synthetic, validation_error
from tests.preprocessors.dwpose_models import ROWS, write_dwpose


def _anchor(output: np.ndarray, stride: int, cell: tuple[int, int], offset: tuple[float, float], size: tuple[float, float], objectness: float, person: float) -> None:
    """Set the row of one anchor in a raw YOLOX output."""
    side = yolox.SIZE // stride
    row = sum((yolox.SIZE // s) ** 2 for s in yolox.STRIDES if s < stride) + cell[1] * side + cell[0]
    output[0, row, :6] = [*offset, math.log(size[0]), math.log(size[1]), objectness, person]


def test_yolox_decodes_the_confident_person_anchor() -> None:
    output = np.zeros((1, ROWS, 85), dtype=np.float32)
    _anchor(output, 16, (5, 7), (0.5, 0.25), (4, 2), objectness=0.9, person=0.8)
    _anchor(output, 8, (3, 3), (0, 0), (1, 1), objectness=0.9, person=0.1)
    output[0, 3 * 80 + 3, 6] = 0.99  # that anchor is confidently something else
    boxes, scores = yolox.decode(output)
    assert np.allclose(boxes[6400 + 7 * 40 + 5], [56, 100, 120, 132]) and np.isclose(scores.max(), 0.72)
    assert np.allclose(yolox.person_boxes(output, ratio=2.0), [[28, 50, 60, 66]])


def test_nms_keeps_the_best_of_overlapping_people() -> None:
    output = np.zeros((1, ROWS, 85), dtype=np.float32)
    _anchor(output, 8, (20, 20), (0, 0), (8, 8), objectness=0.75, person=0.8)  # (128, 128, 192, 192), 0.6
    _anchor(output, 8, (21, 20), (0, 0), (8, 8), objectness=1.0, person=0.9)  # 8 px right: IoU 0.78, 0.9
    _anchor(output, 32, (15, 15), (0, 0), (2, 2), objectness=1.0, person=0.5)  # far away, 0.5
    assert np.allclose(yolox.person_boxes(output, ratio=1.0), [[136, 128, 200, 192], [448, 448, 512, 512]])
    assert yolox.person_boxes(np.zeros((1, ROWS, 85), dtype=np.float32), 1.0).shape == (0, 4)


def test_letterbox_keeps_the_aspect_ratio_and_pads_with_114() -> None:
    image = np.empty((320, 160, 3), dtype=np.uint8)
    image[:] = (10, 20, 30)
    blob, ratio = yolox.letterbox(image)
    assert blob.shape == (1, 3, 640, 640) and blob.dtype == np.float32 and ratio == 2.0
    assert (blob[0, :, :, :320] == np.array([10, 20, 30])[:, None, None]).all() and (blob[0, :, :, 320:] == 114).all()


def test_simcc_maxima_map_back_through_the_crop() -> None:
    box, size = np.array([10, 20, 50, 100], dtype=np.float32), (192, 256)
    simcc_x, simcc_y = np.zeros((1, 2, 384), np.float32), np.zeros((1, 2, 512), np.float32)
    simcc_x[0, 0, 192], simcc_y[0, 0, 256] = 0.9, 0.7  # the crop's centre
    simcc_x[0, 1, 0], simcc_y[0, 1, 384] = 0.4, 0.8  # its left edge, three quarters down
    located, scores = rtmpose.decode(simcc_x, simcc_y)
    assert np.allclose(located, [[[96, 128], [0, 192]]]) and np.allclose(scores, [[0.7, 0.4]])
    # the padded box, 50 × 100, widened to 192:256 is 75 × 100: 2.56 crop pixels an image pixel
    assert np.allclose(rtmpose.to_image(located, rtmpose.crop_transform(box, size)), [[[30, 60], [30 - 96 / 2.56, 60 + 64 / 2.56]]])


def test_crop_puts_the_box_centre_at_the_input_centre() -> None:
    image = np.zeros((120, 80, 3), dtype=np.uint8)
    image[60, 30] = 255
    blob, _ = rtmpose.crop(image, np.array([10, 20, 50, 100], dtype=np.float32), (192, 256))
    assert blob.shape == (1, 3, 256, 192)
    assert np.allclose(blob[0, :, 128, 96], (255 - rtmpose.MEAN) / rtmpose.STD)
    assert np.allclose(blob[0, :, 0, 0], -rtmpose.MEAN / rtmpose.STD)


def test_people_come_in_openpose_order() -> None:
    points = np.stack((np.arange(133), 2 * np.arange(133)), axis=-1)[None] / 1000.0
    scores = np.full((2, 133), 0.9)
    scores[1] = 0.1  # nobody seen: left out
    scores[0, 6] = 0.2  # the right shoulder is not seen, nor the neck
    [person] = dwpose.people(np.concatenate((points, points)), scores, include_hand=True, include_face=True)
    body = person.body.keypoints
    assert len(body) == 18 and body[1] is None and body[2] is None
    assert (body[0].x, body[5].x, body[14].x, body[15].x) == (0.0, 0.005, 0.002, 0.001)  # nose, left shoulder, eyes
    assert len(person.face) == 70 and person.face[0].x == 0.023 and person.face[68:] == body[14:16]
    assert person.left_hand[0].x == 0.091 and person.right_hand[20].x == 0.132 and len(person.right_hand) == 21
    scores[0, 6] = 0.9
    scores[0, 112:] = 0.0
    [person] = dwpose.people(points, scores[:1], include_hand=True, include_face=False)
    assert np.isclose(person.body.keypoints[1].x, 0.0055) and person.body.total_parts == 18
    assert person.right_hand is None and person.face is None and person.left_hand is not None


@pytest.mark.parametrize(("pose", "bbox"), [("dw-ll_ucoco_384.onnx", "yolox_l.onnx"), ("dw-ll_ucoco.onnx", "None")])
def test_dwpose_node_finds_the_stand_in_person(runtime, annotators, pose: str, bbox: str) -> None:
    write_dwpose(annotators, pose, detector=bbox != "None")
    maps, [frame] = run_node(runtime, "DWPreprocessor", outputs=2, resolution=64, bbox_detector=bbox, pose_estimator=pose)
    assert maps.shape == (1, 64, 64, 3) and maps.max() == 1.0
    assert frame["canvas_width"] == frame["canvas_height"] == 64
    [person] = frame["people"]
    assert np.allclose(person["pose_keypoints_2d"], [0.5, 0.5, 1.0] * 18)  # the box's centre, in the image's middle
    assert len(person["face_keypoints_2d"]) == 70 * 3 and len(person["hand_right_keypoints_2d"]) == 21 * 3
    run_node(runtime, "DWPreprocessor", outputs=2, resolution=64, bbox_detector=bbox, pose_estimator=pose, detect_face="disable")
    assert runtime.models.loads == 1


def test_opencv_runs_the_stand_ins_as_torch_does(tmp_path) -> None:
    for name, (network, shape) in write_dwpose(tmp_path, zeroed=False).items():
        blob = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        expected = network(torch.from_numpy(blob))
        outputs = dwpose.read_onnx(tmp_path / name).run(blob)
        for got, want in zip(outputs.values(), expected if isinstance(expected, tuple) else (expected,), strict=True):
            assert np.allclose(got, want.detach().numpy(), rtol=1e-4, atol=1e-4), name


def test_dwpose_node_on_random_networks(runtime, annotators) -> None:
    write_dwpose(annotators, zeroed=False)
    maps, keypoints = run_node(runtime, "DWPreprocessor", synthetic(64, 96), batch=2, outputs=2, resolution=64, detect_hand="disable")
    assert maps.shape == (2, 64, 96, 3) and len(keypoints) == 2
    assert all(person["hand_left_keypoints_2d"] is None for frame in keypoints for person in frame["people"])


def test_dwpose_missing_files_name_the_file_and_folder(runtime, annotators) -> None:
    message = node_failure(runtime, "DWPreprocessor")
    assert "missing weights: yolox_l.onnx" in message and str(annotators) in message and "huggingface.co/yzd-v/DWPose" in message
    write_dwpose(annotators)
    message = node_failure(runtime, "DWPreprocessor", pose_estimator="dw-ll_ucoco.onnx")
    assert "missing weights: dw-ll_ucoco.onnx" in message and "huggingface.co/hr16/UnJIT-DWPose" in message


def test_dwpose_refuses_what_it_cannot_run(runtime, tmp_path) -> None:
    assert "'yolo_nas_s_fp16.onnx' is not supported" in validation_error(runtime, "DWPreprocessor", bbox_detector="yolo_nas_s_fp16.onnx")
    refused = validation_error(runtime, "DWPreprocessor", pose_estimator="dw-ll_ucoco_384_bs5.torchscript.pt")
    assert "is not supported" in refused and "dw-ll_ucoco_384.onnx" in refused
    (tmp_path / "yolox_l.onnx").write_bytes(b"not a network")
    with pytest.raises(ModelFormatError, match="yolox_l.onnx: not an ONNX network OpenCV can read"):
        dwpose.read_onnx(tmp_path / "yolox_l.onnx")
