"""controlnet-aux detectors built around networks that `weights.filled` loads safely.

Each builder takes the `Weights` of its files (in the order `annotators.ANNOTATORS` lists them)
and returns the detector object controlnet-aux's `from_pretrained` would, without letting it open
a file. controlnet-aux is imported inside the builders: importing it takes seconds.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch

from diffusion.preprocessors.weights import Weights, filled


def hed(weights: Weights) -> Any:
    from controlnet_aux.hed import ControlNetHED_Apache2, HEDdetector

    return HEDdetector(filled(ControlNetHED_Apache2, weights))


def pidinet(weights: Weights) -> Any:
    from controlnet_aux.pidi import PidiNetDetector
    from controlnet_aux.pidi.model import pidinet as network

    return PidiNetDetector(filled(network, weights))


def mlsd(weights: Weights) -> Any:
    from controlnet_aux.mlsd import MLSDdetector
    from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large

    return MLSDdetector(filled(MobileV2_MLSD_Large, weights))


def lineart(fine: Weights, coarse: Weights) -> Any:
    from controlnet_aux.lineart import Generator, LineartDetector

    generator = functools.partial(Generator, 3, 1, 3)
    return LineartDetector(filled(generator, fine), filled(generator, coarse))


def lineart_anime(weights: Weights) -> Any:
    from controlnet_aux.lineart_anime import LineartAnimeDetector, UnetGenerator

    norm = functools.partial(torch.nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return LineartAnimeDetector(filled(lambda: UnetGenerator(3, 1, 8, 64, norm_layer=norm, use_dropout=False), weights))


def midas(weights: Weights) -> Any:
    """MiDaS DPT-Hybrid; the detector calls the network directly (controlnet-aux's MiDaSInference
    wrapper would load, or download, the file itself). timm's hybrid ViT runs its ResNet once
    while being built, so it is built with weights."""
    from controlnet_aux.midas import MidasDetector
    from controlnet_aux.midas.midas.dpt_depth import DPTDepthModel

    network = functools.partial(DPTDepthModel, path=None, backbone="vitb_rn50_384", non_negative=True)
    return MidasDetector(filled(network, weights, empty=False))


def zoe(weights: Weights) -> Any:
    """ZoeDepth (its MiDaS BEiT-L core included). ZoeDepth's own `load_state_dict` (which drops
    the index buffers older timm saved, and takes no `assign`) gives way to torch's: extra tensors
    are ignored anyway, and missing ones are still reported."""
    from controlnet_aux.zoe import ZoeDetector
    from controlnet_aux.zoe.zoedepth.models.zoedepth.zoedepth_v1 import ZoeDepth
    from controlnet_aux.zoe.zoedepth.utils.config import get_config

    def network() -> torch.nn.Module:
        depth = ZoeDepth.build_from_config(get_config("zoedepth", "infer"))
        depth.load_state_dict = types.MethodType(torch.nn.Module.load_state_dict, depth)
        return depth

    return ZoeDetector(filled(network, weights))


def normal_bae(weights: Weights) -> Any:
    from controlnet_aux.normalbae import NormalBaeDetector
    from controlnet_aux.normalbae.nets.NNET import NNET

    settings = types.SimpleNamespace(mode="client", architecture="BN", pretrained="scannet", sampling_ratio=0.4, importance_ratio=0.7)
    return NormalBaeDetector(filled(lambda: NNET(settings), weights))


def openpose(body: Weights, hand: Weights, face: Weights) -> Any:
    from controlnet_aux.open_pose import Body, Face, Hand, OpenposeDetector
    from controlnet_aux.open_pose.face import FaceNet, params
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    return OpenposeDetector(
        _estimator(Body, model=filled(bodypose_model, body, by_layer=True)),
        _estimator(Hand, model=filled(handpose_model, hand, by_layer=True)),
        _estimator(
            Face, model=filled(FaceNet, face), inference_size=params["inference_img_size"],
            sigma=params["gaussian_sigma"], threshold=params["heatmap_peak_thresh"],
        ),
    )


def _estimator(cls: type, **attributes: Any) -> Any:
    """An OpenPose Body/Hand/Face estimator holding a built network: their own `__init__` would
    `torch.load` a path."""
    estimator = cls.__new__(cls)
    estimator.__dict__.update(attributes)
    return estimator


def mobile_sam(weights: Weights) -> Any:
    from controlnet_aux.segment_anything import SamDetector
    from controlnet_aux.segment_anything.automatic_mask_generator import SamAutomaticMaskGenerator
    from controlnet_aux.segment_anything.build_sam import sam_model_registry

    from diffusion.preprocessors.nms import use_where_needed

    use_where_needed()
    return SamDetector(SamAutomaticMaskGenerator(filled(sam_model_registry["vit_t"], weights)))
