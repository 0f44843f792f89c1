"""ControlNet preprocessor nodes: ComfyUI's Canny, and the nodes of the community pack
comfyui_controlnet_aux under its class names, input names and order, so shared workflows run
unchanged. The pack's inputs other than the image are optional, `resolution` (the detection
resolution) among them; maps come back with their shorter side at `resolution`, the input's
aspect ratio kept. Weights are read from `models/annotators/` (see `diffusion.preprocessors`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch

from diffusion.preprocessors import AnnotatorUnavailable, annotate, canny, fingerprint
from diffusion.preprocessors.dwpose import BOX_DETECTOR as DWPOSE_DETECTOR
from diffusion.preprocessors.dwpose import POSE_SIZES as DWPOSE_SIZES
from diffusion.preprocessors.dwpose import annotator_name as dwpose_annotator
from engine import IMAGE, MAX_RESOLUTION, Image, Input, Node, NodeContext, Output, node
from engine.models import ModelManager

POSE_KEYPOINT = "POSE_KEYPOINT"
LINES = "ControlNet Preprocessors/Line Extractors"
DEPTH = "ControlNet Preprocessors/Normal and Depth Estimators"
POSES = "ControlNet Preprocessors/Faces and Poses Estimators"

Enabled = Literal["enable", "disable"]
Disabled = Literal["disable", "enable"]


def resolution() -> Any:
    """The pack's `resolution` input: the size (shorter side) the detector works and answers at."""
    return Input(512, min=64, max=MAX_RESOLUTION, step=64, optional=True)


def option(default: Any, **limits: Any) -> Any:
    """One of the pack's optional inputs."""
    return Input(default, optional=True, **limits)


@node(display_name="Canny", category="image/preprocessors", outputs=[Output(IMAGE)])
class Canny(Node):
    """Canny edges (white on black) at the image's size; thresholds apply to the gradient
    magnitude of the 0..1 image, as in ComfyUI."""

    image: Image
    low_threshold: float = Input(0.4, min=0.01, max=0.99, step=0.01)
    high_threshold: float = Input(0.8, min=0.01, max=0.99, step=0.01)

    def check_inputs(self, ctx: NodeContext) -> str | None:
        if self.low_threshold is not None and self.high_threshold is not None and self.low_threshold > self.high_threshold:
            return f"low_threshold ({self.low_threshold}) must not be above high_threshold ({self.high_threshold})"
        return None

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return canny(self.image, self.low_threshold, self.high_threshold, step=_step(ctx))


def _step(ctx: NodeContext) -> Any:
    """Per-image progress, with a chance to interrupt between images."""

    def step(done: int, total: int) -> None:
        ctx.check_interrupt()
        ctx.progress(done, total)

    return step


class Preprocessor(Node):
    """Base of the pack's nodes: an image in, the control map of preprocessor `annotator` out.
    The other inputs go to the detector as keywords; every node declares `resolution` (at the
    pack's place in its input order). Replacing one of its weight files runs the node again."""

    annotator: ClassVar[str]
    #: input name → the detector's keyword for it, where they differ
    keywords: ClassVar[dict[str, str]] = {}
    #: keywords given whatever the inputs
    fixed: ClassVar[dict[str, Any]] = {}
    image: Image

    def fingerprint(self, ctx: NodeContext) -> Any:
        return fingerprint(self.annotator, ctx.folders.models)

    def options(self) -> dict[str, Any]:
        """The inputs besides the image and resolution, under the detector's keywords; the pack's
        "enable"/"disable" choices become booleans."""
        names = [name for name in type(self).model_fields if name not in ("image", "resolution")]
        return {**{self.keywords.get(name, name): _flag(getattr(self, name)) for name in names}, **self.fixed}

    def run(self, ctx: NodeContext, **options: Any) -> torch.Tensor:
        manager = ctx.services.get(ModelManager)
        return annotate(self.annotator, self.image, self.resolution, ctx.folders.models, manager, _step(ctx), **options)

    def execute(self, ctx: NodeContext) -> Any:
        return self.run(ctx, **self.options())


def _flag(value: Any) -> Any:
    return value == "enable" if value in ("enable", "disable") else value


class ResolutionOnly(Preprocessor):
    """Base of the nodes whose only option is the resolution."""

    resolution: int = resolution()


class SoftEdges(Preprocessor):
    """Base of the soft-edge nodes; `safe` quantises the edges into a few levels."""

    safe: Enabled = option("enable")
    resolution: int = resolution()


@node(display_name="Canny Edge", category=LINES, outputs=[Output(IMAGE)])
class CannyEdgePreprocessor(Preprocessor):
    """Canny edges of the 8-bit image (OpenCV thresholds, 0..255)."""

    annotator = "canny"
    low_threshold: int = option(100, min=0, max=255, step=1)
    high_threshold: int = option(200, min=0, max=255, step=1)
    resolution: int = resolution()


@node(display_name="HED Soft-Edge Lines", category=LINES, outputs=[Output(IMAGE)])
class HEDPreprocessor(SoftEdges):
    """Soft edges by HED (ControlNetHED.pth)."""

    annotator = "hed"


@node(display_name="Fake Scribble Lines (aka scribble_hed)", category=LINES, outputs=[Output(IMAGE)])
class FakeScribblePreprocessor(SoftEdges):
    """Scribble-like lines: HED edges thinned, blurred and binarised (ControlNetHED.pth)."""

    annotator = "hed"
    fixed = {"scribble": True}


@node(display_name="PiDiNet Soft-Edge Lines", category=LINES, outputs=[Output(IMAGE)])
class PiDiNetPreprocessor(SoftEdges):
    """Soft edges by PiDiNet (table5_pidinet.pth)."""

    annotator = "pidinet"


@node(display_name="Realistic Lineart", category=LINES, outputs=[Output(IMAGE)])
class LineArtPreprocessor(Preprocessor):
    """Line drawing of a photo (sk_model.pth, or sk_model2.pth when `coarse`)."""

    annotator = "lineart"
    coarse: Disabled = option("disable")
    resolution: int = resolution()


@node(display_name="Anime Lineart", category=LINES, outputs=[Output(IMAGE)])
class AnimeLineArtPreprocessor(ResolutionOnly):
    """Line drawing in anime style (netG.pth)."""

    annotator = "lineart_anime"


@node(display_name="Standard Lineart", category=LINES, outputs=[Output(IMAGE)])
class LineartStandardPreprocessor(Preprocessor):
    """Lines where the image is darker than its Gaussian blur (no weights)."""

    annotator = "lineart_standard"
    guassian_sigma: float = option(6.0, min=0.0, max=100.0, step=0.01)
    intensity_threshold: int = option(8, min=0, max=16, step=1)
    resolution: int = resolution()


@node(display_name="Scribble Lines", category=LINES, outputs=[Output(IMAGE)])
class ScribblePreprocessor(ResolutionOnly):
    """A drawing's dark strokes as a black-and-white map (no weights)."""

    annotator = "scribble"


@node(display_name="M-LSD Lines", category=LINES, outputs=[Output(IMAGE)], class_type="M-LSDPreprocessor")
class MLSDPreprocessor(Preprocessor):
    """Straight line segments by M-LSD (mlsd_large_512_fp32.pth)."""

    annotator = "mlsd"
    keywords = {"score_threshold": "thr_v", "dist_threshold": "thr_d"}
    score_threshold: float = option(0.1, min=0.01, max=2.0, step=0.01)
    dist_threshold: float = option(0.1, min=0.01, max=20.0, step=0.01)
    resolution: int = resolution()


@node(display_name="MiDaS Depth Map", category=DEPTH, outputs=[Output(IMAGE)], class_type="MiDaS-DepthMapPreprocessor")
class MiDaSDepthMapPreprocessor(Preprocessor):
    """Relative depth by MiDaS DPT-Hybrid (dpt_hybrid-midas-501f0c75.pt), near bright."""

    annotator = "midas"
    keywords = {"bg_threshold": "bg_th"}
    a: float = option(math.pi * 2.0, min=0.0, max=math.pi * 5.0, step=0.01)
    bg_threshold: float = option(0.1, min=0.0, max=1.0, step=0.01)
    resolution: int = resolution()


@node(display_name="MiDaS Normal Map", category=DEPTH, outputs=[Output(IMAGE)], class_type="MiDaS-NormalMapPreprocessor")
class MiDaSNormalMapPreprocessor(MiDaSDepthMapPreprocessor):
    """Normals derived from MiDaS depth; `a` sets their slant, `bg_threshold` flattens the background."""

    annotator = "midas_normal"


@node(display_name="Zoe Depth Map", category=DEPTH, outputs=[Output(IMAGE)], class_type="Zoe-DepthMapPreprocessor")
class ZoeDepthMapPreprocessor(ResolutionOnly):
    """Depth by ZoeDepth (ZoeD_M12_N.pt), near bright."""

    annotator = "zoe"


@node(display_name="BAE Normal Map", category=DEPTH, outputs=[Output(IMAGE)], class_type="BAE-NormalMapPreprocessor")
class BAENormalMapPreprocessor(ResolutionOnly):
    """Surface normals by BAE (scannet.pt)."""

    annotator = "normal_bae"


class Poses(Preprocessor):
    """Base of the pose nodes: skeletons drawn on black, the parts chosen by `detect_*`; the
    keypoints also come out as OpenPose JSON, one per image. Each node declares
    `scale_stick_for_xinsr_cn` itself, after its own inputs as in the pack."""

    detect_hand: Enabled = option("enable")
    detect_body: Enabled = option("enable")
    detect_face: Enabled = option("enable")
    resolution: int = resolution()

    def check_inputs(self, ctx: NodeContext) -> str | None:
        if self.scale_stick_for_xinsr_cn == "enable":
            return "scale_stick_for_xinsr_cn: 'enable' is not supported (controlnet-aux 0.0.10 draws sticks of one width)"
        return None

    def execute(self, ctx: NodeContext) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        found: list[dict[str, Any]] = []
        maps = self.run(
            ctx, include_body=self.detect_body == "enable", include_hand=self.detect_hand == "enable",
            include_face=self.detect_face == "enable", found=found,
        )
        return maps, found


@node(display_name="OpenPose Pose", category=POSES, outputs=[Output(IMAGE), Output(POSE_KEYPOINT)])
class OpenposePreprocessor(Poses):
    """Body, hand and face keypoints by OpenPose (body_pose_model.pth, hand_pose_model.pth,
    facenet.pth), drawn as skeletons; the keypoints also come out as OpenPose JSON, one per image."""

    annotator = "openpose"
    scale_stick_for_xinsr_cn: Disabled = option("disable")


@node(display_name="DWPose Estimator", category=POSES, outputs=[Output(IMAGE), Output(POSE_KEYPOINT)])
class DWPreprocessor(Poses):
    """Whole-body keypoints by DWPose: people found by YOLOX (yolox_l.onnx; "None": the whole
    image is one person), their keypoints by RTMPose (dw-ll_ucoco_384.onnx or dw-ll_ucoco.onnx),
    drawn as OpenPose skeletons; the keypoints also come out as OpenPose JSON, one per image.
    The TorchScript and YOLO-NAS files the pack also offers are refused."""

    bbox_detector: Literal["None", "yolox_l.torchscript.pt", "yolox_l.onnx", "yolo_nas_l_fp16.onnx", "yolo_nas_m_fp16.onnx", "yolo_nas_s_fp16.onnx"] = option("yolox_l.onnx")
    pose_estimator: Literal["dw-ll_ucoco_384_bs5.torchscript.pt", "dw-ll_ucoco_384.onnx", "dw-ll_ucoco.onnx"] = option("dw-ll_ucoco_384.onnx")
    scale_stick_for_xinsr_cn: Disabled = option("disable")

    @property
    def annotator(self) -> str:  # type: ignore[override]
        problem = self.unsupported()
        if problem is not None:  # a linked choice, not checked before running
            raise AnnotatorUnavailable(problem)
        return dwpose_annotator(self.bbox_detector, self.pose_estimator)

    def unsupported(self) -> str | None:
        """Why the chosen files cannot be run, if they cannot (linked choices pass)."""
        for name, value, supported in (
            ("bbox_detector", self.bbox_detector, ("None", DWPOSE_DETECTOR)), ("pose_estimator", self.pose_estimator, tuple(DWPOSE_SIZES)),
        ):
            if value is not None and value not in supported:
                return f"{name}: {value!r} is not supported (sdflow runs DWPose's ONNX files with OpenCV): choose {' or '.join(map(repr, supported))}"
        return None

    def check_inputs(self, ctx: NodeContext) -> str | None:
        return self.unsupported() or super().check_inputs(ctx)

    def fingerprint(self, ctx: NodeContext) -> Any:
        return super().fingerprint(ctx) if self.bbox_detector and self.pose_estimator else None


@node(display_name="Content Shuffle", category="ControlNet Preprocessors/T2IAdapter-only", outputs=[Output(IMAGE)])
class ShufflePreprocessor(Preprocessor):
    """The image's content shuffled by a random smooth warp (no weights); `seed` fixes the warp."""

    annotator = "shuffle"
    resolution: int = resolution()
    seed: int = option(0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True)


@node(display_name="Tile", category="ControlNet Preprocessors/tile", outputs=[Output(IMAGE)])
class TilePreprocessor(Preprocessor):
    """The image blurred by shrinking it and Gaussian-pyramid steps back up (no weights)."""

    annotator = "tile"
    pyrUp_iters: int = option(3, min=1, max=10, step=1)
    resolution: int = resolution()


@node(display_name="SAM Segmentor", category="ControlNet Preprocessors/others", outputs=[Output(IMAGE)])
class SAMPreprocessor(ResolutionOnly):
    """Segments by Segment Anything (MobileSAM, mobile_sam.pt), each painted one colour."""

    annotator = "sam"

