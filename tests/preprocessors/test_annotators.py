"""The preprocessors with weights, end to end through the executor on random-weight files written
in the real names and layouts: output maps, missing files, loading once, OpenPose keypoints, SAM."""

from __future__ import annotations

import functools
import os
from importlib.util import find_spec

import numpy as np
import pytest
import torch

from diffusion.preprocessors import AnnotatorUnavailable, annotate, load
from diffusion.preprocessors.calls import poses
from tests.preprocessors.conftest import as_images, node_failure, run_node, synthetic, validation_error, write_annotator

slow = pytest.mark.skipif(os.environ.get("SDFLOW_SLOW") != "1", reason="full-size depth networks: set SDFLOW_SLOW=1")


def _check_map(maps: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert maps.shape == shape and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parametrize(
    ("class_type", "annotator", "inputs"),
    [
        ("HEDPreprocessor", "hed", {"safe": "enable"}),
        ("FakeScribblePreprocessor", "hed", {"safe": "disable"}),
        ("PiDiNetPreprocessor", "pidinet", {"safe": "enable"}),
        ("M-LSDPreprocessor", "mlsd", {"score_threshold": 0.1, "dist_threshold": 0.1}),
        ("LineArtPreprocessor", "lineart", {"coarse": "enable"}),
        ("AnimeLineArtPreprocessor", "lineart_anime", {}),
        ("BAE-NormalMapPreprocessor", "normal_bae", {}),
        pytest.param("MiDaS-DepthMapPreprocessor", "midas", {"a": 6.28, "bg_threshold": 0.1}, marks=[pytest.mark.slow, slow]),
        pytest.param("Zoe-DepthMapPreprocessor", "zoe", {}, marks=[pytest.mark.slow, slow]),
    ],
)
def test_preprocessor_reads_its_files(runtime, annotators, class_type: str, annotator: str, inputs: dict) -> None:
    write_annotator(annotator, annotators)
    maps = run_node(runtime, class_type, synthetic(64, 96), resolution=64, **inputs)
    _check_map(maps, (1, 64, 96, 3))
    assert runtime.models.loads == 1


def test_missing_weights_name_the_file_and_folder(runtime, annotators) -> None:
    message = node_failure(runtime, "HEDPreprocessor")
    assert "missing weights: ControlNetHED.pth" in message and str(annotators) in message
    assert "huggingface.co/lllyasviel/Annotators" in message
    write_annotator("lineart", annotators)
    (annotators / "sk_model2.pth").unlink()
    assert "missing weights: sk_model2.pth" in node_failure(runtime, "LineArtPreprocessor")


def test_detector_loads_once_and_reloads_a_replaced_file(runtime, annotators) -> None:
    [path] = write_annotator("hed", annotators)
    first = run_node(runtime, "HEDPreprocessor", batch=2, safe="enable", resolution=64)
    assert first.shape == (2, 64, 64, 3) and torch.equal(first[0], first[1])
    run_node(runtime, "FakeScribblePreprocessor", safe="enable", resolution=64)
    run_node(runtime, "HEDPreprocessor", safe="disable", resolution=128)
    assert runtime.models.loads == 1
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = run_node(runtime, "HEDPreprocessor", batch=2, safe="enable", resolution=64)  # not an output-cache hit
    assert runtime.models.loads == 2 and torch.equal(again, first)


@pytest.mark.slow
@slow
def test_midas_depth_and_normal_share_one_load(runtime, annotators) -> None:
    write_annotator("midas", annotators)
    normal = run_node(runtime, "MiDaS-NormalMapPreprocessor", resolution=64)
    _check_map(normal, (1, 64, 64, 3))
    run_node(runtime, "MiDaS-DepthMapPreprocessor", resolution=64)
    assert runtime.models.loads == 1


def test_openpose_draws_and_returns_keypoints(runtime, annotators) -> None:
    write_annotator("openpose", annotators)
    maps, keypoints = run_node(runtime, "OpenposePreprocessor", outputs=2, resolution=64)
    _check_map(maps, (1, 64, 64, 3))
    [frame] = keypoints
    assert set(frame) == {"people", "canvas_height", "canvas_width"} and frame["canvas_height"] == 64


class _Posed:
    """A stand-in OpenPose detector that finds one person: two body keypoints, a right hand."""

    def detect_poses(self, image: np.ndarray, include_hand: bool, include_face: bool) -> list:
        from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

        body = [Keypoint(0.5, 0.2), Keypoint(0.5, 0.4)] + [None] * 16
        hand = [Keypoint(0.25 + 0.01 * i, 0.5) for i in range(21)] if include_hand else None
        return [PoseResult(BodyResult(body, 1.0, 2), left_hand=None, right_hand=hand, face=None)]


def test_openpose_keypoints_layout() -> None:
    found: list = []
    canvas = poses(_Posed(), synthetic(), 64, include_body=True, include_hand=False, include_face=False, found=found)
    [[entry]] = [frame["people"] for frame in found]
    assert entry["pose_keypoints_2d"][:9] == [0.5, 0.2, 1.0, 0.5, 0.4, 1.0, 0.0, 0.0, 0.0]
    assert len(entry["pose_keypoints_2d"]) == 18 * 3
    assert entry["hand_right_keypoints_2d"] is entry["hand_left_keypoints_2d"] is entry["face_keypoints_2d"] is None
    assert canvas.shape == (64, 64, 3) and canvas.any()


def test_openpose_hands_are_drawn_with_matplotlib() -> None:
    found: list = []
    draw = functools.partial(poses, _Posed(), synthetic(), 64, include_body=False, include_hand=True, include_face=False, found=found)
    if find_spec("matplotlib") is None:
        with pytest.raises(AnnotatorUnavailable, match=r"needs matplotlib .* set detect_hand to disable"):
            draw()
    else:
        assert draw().any() and len(found[0]["people"][0]["hand_right_keypoints_2d"]) == 21 * 3


def test_openpose_refuses_xinsr_sticks(runtime) -> None:
    assert "scale_stick_for_xinsr_cn" in validation_error(runtime, "OpenposePreprocessor", scale_stick_for_xinsr_cn="enable")


def test_sam_paints_segments_repeatably(runtime, annotators) -> None:
    from controlnet_aux.segment_anything.utils.amg import build_all_layer_point_grids

    write_annotator("sam", annotators)
    # a 3×3 prompt grid and no quality filters keep the CPU test short and let random weights find masks
    generator = load("sam", runtime.folders.models, runtime.models).detector.mask_generator
    generator.point_grids = build_all_layer_point_grids(3, 0, 1)
    generator.pred_iou_thresh = generator.stability_score_thresh = 0.0
    maps = run_node(runtime, "SAMPreprocessor", resolution=64)
    _check_map(maps, (1, 64, 64, 3))
    assert maps.max() > 0
    again = annotate("sam", as_images(synthetic()), 64, runtime.folders.models, runtime.models)
    assert torch.equal(again, maps) and runtime.models.loads == 1


@pytest.mark.parametrize(
    ("class_type", "inputs"),
    [
        ("ShufflePreprocessor", {"seed": 3}),
        ("TilePreprocessor", {"pyrUp_iters": 2}),
        ("ScribblePreprocessor", {}),
        ("LineartStandardPreprocessor", {"guassian_sigma": 2.0, "intensity_threshold": 8}),
    ],
)
def test_weightless_preprocessors(runtime, class_type: str, inputs: dict) -> None:
    maps = run_node(runtime, class_type, synthetic(64, 96), resolution=64, **inputs)
    _check_map(maps, (1, 64, 96, 3))
    assert runtime.models.loads == 0


def test_scribble_and_tile_maps(runtime) -> None:
    scribble = run_node(runtime, "ScribblePreprocessor", resolution=64)[0, ..., 0].numpy()
    assert scribble[20, 20] == 1 and scribble[48, 48] == 1 and scribble[2, 2] == 0  # light shapes white, black stays black
    assert set(np.unique(scribble)) == {0.0, 1.0}
    tile = run_node(runtime, "TilePreprocessor", resolution=64, pyrUp_iters=3)[0].numpy()
    image = synthetic() / 255.0
    assert abs(tile.mean() - image.mean()) < 0.05 and np.abs(np.diff(tile, axis=1)).max() < np.abs(np.diff(image, axis=1)).max() / 2


def test_shuffle_depends_on_the_seed_alone(runtime) -> None:
    one = run_node(runtime, "ShufflePreprocessor", resolution=64, seed=1)
    np.random.seed(12345)  # numpy's global state does not leak in, nor does the node change it
    state = np.random.get_state()[1].copy()
    again = annotate("shuffle", as_images(synthetic()), 64, runtime.folders.models, runtime.models, seed=1)
    other = run_node(runtime, "ShufflePreprocessor", resolution=64, seed=2)
    assert torch.equal(one, again) and not torch.equal(one, other)
    assert np.array_equal(np.random.get_state()[1], state)
