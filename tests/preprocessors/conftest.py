"""Random-weight annotator files written in the real file names and layouts, and a runtime whose
`models/annotators/` folder holds them."""

from __future__ import annotations

import functools
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from PIL import Image

import diffusion  # noqa: F401  (makes torchvision importable before controlnet-aux is)
from engine.executor import PromptInvalid
from engine.runtime import Runtime, Settings
from tests.capture import run_captured, with_capture

StateDict = dict[str, torch.Tensor]


def _hed() -> dict[str, StateDict]:
    from controlnet_aux.hed import ControlNetHED_Apache2

    return {"ControlNetHED.pth": ControlNetHED_Apache2().state_dict()}


def _pidinet() -> dict[str, object]:
    from controlnet_aux.pidi.model import pidinet

    # as published: nested under "state_dict", with DataParallel's "module." prefix
    return {"table5_pidinet.pth": {"epoch": 14, "state_dict": {f"module.{k}": v for k, v in pidinet().state_dict().items()}}}


def _mlsd() -> dict[str, StateDict]:
    from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large

    return {"mlsd_large_512_fp32.pth": MobileV2_MLSD_Large().state_dict()}


def _lineart() -> dict[str, StateDict]:
    from controlnet_aux.lineart import Generator

    return {name: Generator(3, 1, 3).state_dict() for name in ("sk_model.pth", "sk_model2.pth")}


def _lineart_anime() -> dict[str, StateDict]:
    from controlnet_aux.lineart_anime import UnetGenerator

    norm = functools.partial(torch.nn.InstanceNorm2d, affine=False, track_running_stats=False)
    state = UnetGenerator(3, 1, 8, 64, norm_layer=norm, use_dropout=False).state_dict()
    return {"netG.pth": {f"module.{k}": v for k, v in state.items()}}


def _midas() -> dict[str, StateDict]:
    from controlnet_aux.midas.midas.dpt_depth import DPTDepthModel

    return {"dpt_hybrid-midas-501f0c75.pt": DPTDepthModel(path=None, backbone="vitb_rn50_384", non_negative=True).state_dict()}


def _zoe() -> dict[str, object]:
    from controlnet_aux.zoe.zoedepth.models.zoedepth.zoedepth_v1 import ZoeDepth
    from controlnet_aux.zoe.zoedepth.utils.config import get_config

    return {"ZoeD_M12_N.pt": {"model": ZoeDepth.build_from_config(get_config("zoedepth", "infer")).state_dict()}}


def _normal_bae() -> dict[str, object]:
    from controlnet_aux.normalbae.nets.NNET import NNET

    settings = types.SimpleNamespace(mode="client", architecture="BN", pretrained="scannet", sampling_ratio=0.4, importance_ratio=0.7)
    return {"scannet.pt": {"model": NNET(settings).state_dict()}}


def _openpose() -> dict[str, StateDict]:
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    def by_layer(network: torch.nn.Module) -> StateDict:  # the files name layers without their block
        return {key.split(".", 1)[1]: value for key, value in network.state_dict().items()}

    return {
        "body_pose_model.pth": by_layer(bodypose_model()),
        "hand_pose_model.pth": by_layer(handpose_model()),
        "facenet.pth": FaceNet().state_dict(),
    }


def _sam() -> dict[str, StateDict]:
    from controlnet_aux.segment_anything.build_sam import sam_model_registry

    return {"mobile_sam.pt": sam_model_registry["vit_t"]().state_dict()}


#: annotator → its files' contents (networks with their own random initialisation)
CONTENTS: dict[str, Callable[[], dict[str, object]]] = {
    "hed": _hed, "pidinet": _pidinet, "mlsd": _mlsd, "lineart": _lineart, "lineart_anime": _lineart_anime,
    "midas": _midas, "zoe": _zoe, "normal_bae": _normal_bae, "openpose": _openpose, "sam": _sam,
}


def write_annotator(name: str, folder: Path) -> list[Path]:
    """Write annotator `name`'s files into `folder` (seeded, so every run writes the same)."""
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, content in CONTENTS[name]().items():
        torch.save(content, folder / file)
        paths.append(folder / file)
    return paths


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return with_capture(Runtime(Settings(base_dir=tmp_path, load_plugins=False, preview_method="none")))


@pytest.fixture
def annotators(runtime: Runtime) -> Path:
    """The runtime's `models/annotators/` folder."""
    return runtime.folders.models.paths("annotators")[0]


def synthetic(height: int = 64, width: int = 64) -> np.ndarray:
    """uint8 RGB: a white square and a mid-grey disc on black, and a faint square."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[height // 8 : height // 2, width // 8 : width // 2] = 255
    rows, cols = np.ogrid[:height, :width]
    image[(rows - 3 * height // 4) ** 2 + (cols - 3 * width // 4) ** 2 < (min(height, width) // 6) ** 2] = 128
    image[height // 8 : height // 4, 5 * width // 8 : 7 * width // 8] = 25
    return image


def as_images(array: np.ndarray) -> torch.Tensor:
    """A uint8 RGB array as a one-image IMAGE batch (as LoadImage gives it)."""
    return torch.from_numpy(array.astype(np.float32) / 255.0)[None]


def _prompt(runtime: Runtime, class_type: str, image: np.ndarray | None, batch: int, outputs: int, inputs: dict[str, Any]) -> dict[str, Any]:
    """A prompt: LoadImage of `image` (default `synthetic()`, repeated `batch` times) → the node →
    Capture nodes `out0`, `out1`, ... on its outputs."""
    Image.fromarray(synthetic() if image is None else image).save(runtime.folders.root("input") / "in.png")
    prompt: dict[str, Any] = {"load": {"class_type": "LoadImage", "inputs": {"image": "in.png"}}}
    source = ["load", 0]
    for index in range(1, batch):
        prompt[f"batch{index}"] = {"class_type": "ImageBatch", "inputs": {"image1": source, "image2": ["load", 0]}}
        source = [f"batch{index}", 0]
    prompt["node"] = {"class_type": class_type, "inputs": {"image": source, **inputs}}
    prompt.update({f"out{slot}": {"class_type": "Capture", "inputs": {"value": ["node", slot]}} for slot in range(outputs)})
    return prompt


def run_node(runtime: Runtime, class_type: str, image: np.ndarray | None = None, batch: int = 1, outputs: int = 1, **inputs: Any) -> Any:
    """Run one node on an image through the runtime's executor; returns its first output (a tuple
    of `outputs` when several)."""
    captured = run_captured(runtime, _prompt(runtime, class_type, image, batch, outputs, inputs))
    values = tuple(captured[f"out{slot}"] for slot in range(outputs))
    return values if outputs > 1 else values[0]


def node_failure(runtime: Runtime, class_type: str, **inputs: Any) -> str:
    """The message of the node's failure when run on `synthetic()` (it must fail)."""
    result = runtime.executor.execute(_prompt(runtime, class_type, None, 1, 1, inputs))
    assert not result.ok
    return result.failures["node"].message


def validation_error(runtime: Runtime, class_type: str, **inputs: Any) -> str:
    """The details of the node's validation error (the prompt must be refused)."""
    with pytest.raises(PromptInvalid) as refused:
        runtime.executor.execute(_prompt(runtime, class_type, None, 1, 1, inputs))
    return refused.value.validation.node_errors["node"]["errors"][0]["details"]
