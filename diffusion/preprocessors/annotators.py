"""The table of preprocessors: for each, its detector, the weight files it reads from the
`annotators` model folders and how it is called; and running one over an IMAGE batch.

Detectors with weights are loaded once per set of files (path, size, modification time) and kept
by the model manager, which also places their networks on the compute device while they run.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Hashable

import torch

from diffusion.preprocessors import calls, dwpose, networks, simple
from diffusion.preprocessors.images import Step, map_images, scaled_size
from diffusion.preprocessors.weights import AnnotatorUnavailable, find_weights, read_weights
from engine.model_folders import ModelFolders
from engine.models import ModelManager, file_key


@dataclass(frozen=True)
class Annotator:
    """One preprocessor: how its detector is made and called."""

    #: the detector: from `files` as `read` reads them, in order (with no files: from nothing)
    build: Callable[..., Any]
    #: weight file names in the annotators folders, as controlnet-aux's `from_pretrained` reads them
    files: tuple[str, ...] = ()
    read: Callable[[Path], Any] = read_weights
    call: calls.Call = calls.sized
    #: attribute paths of the detector's torch networks, which the model manager places
    networks: tuple[str, ...] = ()
    #: the Hugging Face repository the files come from
    source: str = "lllyasviel/Annotators"
    #: the repositories of files that come from elsewhere
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class Loaded:
    """A detector and its networks (a field the model manager counts when it budgets RAM)."""

    detector: Any
    networks: torch.nn.ModuleList


def _import_controlnet_aux() -> None:
    """Import controlnet-aux (once) without the warnings its package import prints about optional
    packages sdflow does not use (mediapipe, mmpose, ...) and timm's deprecated paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UserWarning, FutureWarning))
        importlib.import_module("controlnet_aux")


def _aux(module: str, name: str) -> Callable[[], Any]:
    """A weightless controlnet-aux detector, imported when first made."""

    def make() -> Any:
        _import_controlnet_aux()
        return getattr(importlib.import_module(f"controlnet_aux.{module}"), name)()

    return make


_MIDAS = Annotator(networks.midas, ("dpt_hybrid-midas-501f0c75.pt",), networks=("model",))

ANNOTATORS: dict[str, Annotator] = {
    "canny": Annotator(_aux("canny", "CannyDetector")),
    "shuffle": Annotator(_aux("shuffle", "ContentShuffleDetector"), call=calls.seeded),
    "lineart_standard": Annotator(_aux("lineart_standard", "LineartStandardDetector"), call=calls.detected),
    "scribble": Annotator(lambda: simple.scribble, call=calls.plain),
    "tile": Annotator(lambda: simple.tile, call=calls.plain),
    "hed": Annotator(networks.hed, ("ControlNetHED.pth",), networks=("netNetwork",)),
    "pidinet": Annotator(networks.pidinet, ("table5_pidinet.pth",), networks=("netNetwork",)),
    "mlsd": Annotator(networks.mlsd, ("mlsd_large_512_fp32.pth",), networks=("model",)),
    "lineart": Annotator(networks.lineart, ("sk_model.pth", "sk_model2.pth"), networks=("model", "model_coarse")),
    "lineart_anime": Annotator(networks.lineart_anime, ("netG.pth",), networks=("model",)),
    "midas": _MIDAS,
    "midas_normal": replace(_MIDAS, call=calls.midas_normal),
    "zoe": Annotator(networks.zoe, ("ZoeD_M12_N.pt",), networks=("model",)),
    "normal_bae": Annotator(networks.normal_bae, ("scannet.pt",), networks=("model",)),
    "openpose": Annotator(
        networks.openpose, ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"), call=calls.poses,
        networks=("body_estimation.model", "hand_estimation.model", "face_estimation.model"),
    ),
    "sam": Annotator(
        networks.mobile_sam, ("mobile_sam.pt",), call=calls.segments, networks=("mask_generator.predictor.model",),
        source="dhkim2810/MobileSAM",
    ),
    **{
        dwpose.annotator_name(box, pose): Annotator(
            dwpose.build, (pose,) if box == "None" else (box, pose), read=dwpose.read_onnx, call=calls.poses, sources=dwpose.SOURCES,
        )
        for box in (dwpose.BOX_DETECTOR, "None")
        for pose in dwpose.POSE_SIZES
    },
}


def weight_files(name: str, folders: ModelFolders) -> list[Path]:
    """The files preprocessor `name` reads; AnnotatorUnavailable naming the first one missing."""
    annotator = ANNOTATORS[name]
    return [find_weights(folders, file, annotator.sources.get(file, annotator.source)) for file in annotator.files]


def fingerprint(name: str, folders: ModelFolders) -> tuple[Hashable, ...]:
    """The identity of a preprocessor's weight files (empty when some are missing), for cache keys."""
    try:
        return tuple(file_key(path) for path in weight_files(name, folders))
    except AnnotatorUnavailable:
        return ()


def load(name: str, folders: ModelFolders, manager: ModelManager) -> Loaded:
    """The detector of preprocessor `name`, its files read once and then kept by the manager."""
    annotator = ANNOTATORS[name]
    if not annotator.files:
        return Loaded(annotator.build(), torch.nn.ModuleList())
    paths = weight_files(name, folders)

    def build() -> Loaded:
        _import_controlnet_aux()
        detector = annotator.build(*(annotator.read(path) for path in paths))
        return Loaded(detector, torch.nn.ModuleList(attrgetter(path)(detector) for path in annotator.networks))

    key = ("annotator", annotator.build.__qualname__, *(file_key(path) for path in paths))
    return manager.load(key, build)


def annotate(
    name: str, images: torch.Tensor, resolution: int, folders: ModelFolders, manager: ModelManager, step: Step | None = None, **options: Any
) -> torch.Tensor:
    """Run preprocessor `name` on each image, detecting at `resolution`; the maps come back with
    their shorter side `resolution` and the input's aspect ratio."""
    annotator = ANNOTATORS[name]
    loaded = load(name, folders, manager)
    size = scaled_size(*images.shape[1:3], resolution)
    with manager.use(loaded.networks), torch.no_grad():
        return map_images(images, lambda image: annotator.call(loaded.detector, image, resolution, **options), size, step)
