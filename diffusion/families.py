"""Stable Diffusion model families and how to recognise them from a checkpoint's tensors.

The checks follow the usual signals: the layout of the text encoders, whether the UNet has
SDXL's added-condition embedding (`label_emb`), linear or convolutional attention projections
(SD2 vs SD1), 9 input channels (inpainting), and for v-prediction a sidecar `.yaml` that says
`parameterization: "v"`, the `v_pred` marker key of SDXL v models, or the norm statistics that
separate SD2-768-v from SD2-base (as other tools do). A caller may force the prediction type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import torch
import yaml

CONFIGS = Path(__file__).parent / "assets" / "configs"
UNET_PREFIX = "model.diffusion_model."

Prediction = Literal["eps", "v"]
#: std of a v model's last attention norm bias is well above this; eps models stay below it
V_NORM_STD_THRESHOLD = 0.09


class ModelFormatError(ValueError):
    """A file is not a checkpoint sdflow can load; the message names the file and what was found."""


@dataclass(frozen=True)
class EncoderSlot:
    """One text encoder of a family: its key in conditioning, file prefix and model class."""

    key: Literal["clip_l", "clip_h", "clip_g"]
    #: prefix of its tensors in an original-format checkpoint
    prefix: str
    #: diffusers folder subfolder holding its config
    subfolder: str
    #: OpenCLIP layout in the file (else OpenAI/transformers layout)
    open_clip: bool
    projected: bool
    #: the hidden layer used by default (None: the last, with the final norm) and whether the
    #: final layer norm is applied to a selected hidden layer
    default_layer: int | None
    norm_hidden_layer: bool


@dataclass(frozen=True)
class Family:
    """A model family: configs, latent scaling, encoders and how its attention is shaped."""

    id: str
    name: str
    encoders: tuple[EncoderSlot, ...]
    latent_scale: float
    #: SD1 uses 8 heads everywhere; SD2 and SDXL use 64-dimensional heads
    heads_rule: Literal["eight_heads", "head_dim_64"]
    #: SDXL's added conditions: None, "sdxl" (size and crop) or "sdxl_refiner" (aesthetic score)
    adm: Literal["sdxl", "sdxl_refiner"] | None = None
    inpaint: bool = False
    prediction: Prediction = "eps"

    @property
    def config_dir(self) -> Path:
        return CONFIGS / self.id


CLIP_L_SD1 = EncoderSlot("clip_l", "cond_stage_model.transformer.", "text_encoder", False, False, None, True)
CLIP_H_SD2 = EncoderSlot("clip_h", "cond_stage_model.model.", "text_encoder", True, False, -2, True)
CLIP_L_SDXL = EncoderSlot("clip_l", "conditioner.embedders.0.transformer.", "text_encoder", False, False, -2, False)
CLIP_G_SDXL = EncoderSlot("clip_g", "conditioner.embedders.1.model.", "text_encoder_2", True, True, -2, False)
CLIP_G_REFINER = EncoderSlot("clip_g", "conditioner.embedders.0.model.", "text_encoder_2", True, True, -2, False)

FAMILIES = {
    f.id: f
    for f in (
        Family("sd15", "SD1.x", (CLIP_L_SD1,), 0.18215, "eight_heads"),
        Family("sd15-inpaint", "SD1.x inpainting", (CLIP_L_SD1,), 0.18215, "eight_heads", inpaint=True),
        Family("sd2", "SD2.x", (CLIP_H_SD2,), 0.18215, "head_dim_64"),
        Family("sd2-v", "SD2.x 768-v", (CLIP_H_SD2,), 0.18215, "head_dim_64", prediction="v"),
        Family("sd2-inpaint", "SD2.x inpainting", (CLIP_H_SD2,), 0.18215, "head_dim_64", inpaint=True),
        Family("sdxl", "SDXL", (CLIP_L_SDXL, CLIP_G_SDXL), 0.13025, "head_dim_64", adm="sdxl"),
        Family("sdxl-refiner", "SDXL refiner", (CLIP_G_REFINER,), 0.13025, "head_dim_64", adm="sdxl_refiner"),
    )
}


@dataclass(frozen=True)
class Detection:
    """What a checkpoint is: its family and prediction type (and zero-terminal-SNR for SDXL)."""

    family: Family
    prediction: Prediction
    zero_terminal_snr: bool = False


def _has_prefix(keys: Mapping[str, object], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def detect(state_dict: Mapping[str, torch.Tensor], source: Path, prediction: Prediction | None = None) -> Detection:
    """Recognise the family of an original-format checkpoint; ModelFormatError if unknown."""
    conv_in = state_dict.get(UNET_PREFIX + "input_blocks.0.0.weight")
    if conv_in is None or conv_in.ndim != 4:
        found = sorted({k.split(".")[0] for k in state_dict})[:8]
        raise ModelFormatError(f"{source.name}: no Stable Diffusion UNet in this file (top-level keys: {', '.join(found) or 'none'})")
    in_channels = conv_in.shape[1]
    if in_channels not in (4, 9):
        raise ModelFormatError(f"{source.name}: a UNet with {in_channels} input channels is not a supported family (4 or 9)")
    has_adm = UNET_PREFIX + "label_emb.0.0.weight" in state_dict
    linear = _linear_attention(state_dict)
    if has_adm:
        base = "sdxl" if _is_sdxl_base(state_dict) else "sdxl-refiner"
    elif linear is None:
        raise ModelFormatError(f"{source.name}: a UNet without attention layers is not a supported family")
    else:
        base = "sd2" if linear else "sd15"
    if in_channels == 9:
        if base not in ("sd15", "sd2"):
            raise ModelFormatError(f"{source.name}: an inpainting (9-channel) {FAMILIES[base].name} UNet is not supported")
        base += "-inpaint"
    family = FAMILIES[base]
    chosen = prediction or _prediction_from_file(state_dict, source, family)
    if family.id == "sd2" and chosen == "v":
        family = FAMILIES["sd2-v"]
    return Detection(family, chosen, zero_terminal_snr="ztsnr" in state_dict)


def _linear_attention(state_dict: Mapping[str, torch.Tensor]) -> bool | None:
    """True for linear attention projections (SD2/SDXL), False for 1×1 convs (SD1), None if no attention."""
    for key in state_dict:
        if key.startswith(UNET_PREFIX) and key.endswith(".proj_in.weight"):
            return state_dict[key].ndim == 2
    return None


def _is_sdxl_base(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """SDXL base conditions on two text encoders (cross-attention = clip_l + clip_g widths);
    the refiner only on clip_g. Without encoders in the file, fall back to the real sizes."""
    if _has_prefix(state_dict, CLIP_G_SDXL.prefix):
        return True
    if _has_prefix(state_dict, CLIP_G_REFINER.prefix):
        return False
    return state_dict[UNET_PREFIX + "label_emb.0.0.weight"].shape[1] == 2816


def _prediction_from_file(state_dict: Mapping[str, torch.Tensor], source: Path, family: Family) -> Prediction:
    sidecar = sidecar_prediction(source)
    if sidecar is not None:
        return sidecar
    if "v_pred" in state_dict:
        return "v"
    if family.id == "sd2":
        bias = _last_attention_norm_bias(state_dict)
        if bias is not None and bias.float().std().item() > V_NORM_STD_THRESHOLD:
            return "v"
    return "eps"


def sidecar_prediction(source: Path) -> Prediction | None:
    """The prediction type a `<file>.yaml` next to the checkpoint declares (A1111/ComfyUI style)."""
    sidecar = source.with_suffix(".yaml")
    if not sidecar.is_file():
        return None
    return config_prediction(sidecar)


def config_prediction(config: Path) -> Prediction | None:
    """`model.params.parameterization` of an original-format model config (`"v"` or eps)."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelFormatError(f"{config.name}: cannot read the model config: {exc}") from None
    params = (data.get("model") or {}).get("params") or {}
    if not isinstance(params, dict):
        return None
    return "v" if params.get("parameterization") == "v" else "eps"


def _last_attention_norm_bias(state_dict: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """norm1.bias of the first transformer block in the last output block that has attention."""
    found = None
    index = 0
    while UNET_PREFIX + f"output_blocks.{index}.0.in_layers.0.weight" in state_dict:
        key = UNET_PREFIX + f"output_blocks.{index}.1.transformer_blocks.0.norm1.bias"
        if key in state_dict:
            found = state_dict[key]
        index += 1
    return found
