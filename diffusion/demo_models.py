"""Tiny random Stable Diffusion models of every family, saved in the formats users' files come in.

The models follow the real families' architecture rules (attention layout, text encoders, added
conditions) at toy sizes, so sdflow's loader reads them the way it reads a user's checkpoint.
`sdflow demo-models DIR` writes one of each (plus a VAE, an embedding and add-ons such as LoRAs)
into a ComfyUI-style models folder. transformers and diffusers are imported where used, so that
loading the CLI command costs nothing.
"""

from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple, TypeVar

import torch
from accelerate import init_empty_weights
from safetensors.torch import save_file
from torch import nn

from diffusion import ldm_keys
from engine.folders import Folders

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    TextEncoder = CLIPTextModel | CLIPTextModelWithProjection

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class _Family:
    base: str  # the architecture: "sd15", "sd2", "sdxl" or "sdxl-refiner"
    in_channels: int = 4
    v_prediction: bool = False


_FAMILIES = {
    "sd15": _Family("sd15"),
    "sd15-inpaint": _Family("sd15", in_channels=9),
    "sd2": _Family("sd2"),
    "sd2-v": _Family("sd2", v_prediction=True),
    "sd2-inpaint": _Family("sd2", in_channels=9),
    "sdxl": _Family("sdxl"),
    "sdxl-refiner": _Family("sdxl-refiner"),
}
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)

# clip_g is wider than clip_l so that diffusers tells SDXL's two encoders apart by their widths.
HIDDEN_SIZE: Mapping[str, int] = MappingProxyType({"clip_l": 64, "clip_h": 64, "clip_g": 80})
CLIP_G_PROJECTION = 32
ADDITION_TIME_EMBED_DIM = 8
NORM_BIAS_STD = 0.02  # eps models: well under the 0.09 that marks a v-prediction SD2 file
V_NORM_BIAS_STD = 0.2
V_PREDICTION_YAML = 'model:\n  params:\n    parameterization: "v"\n'
SD_VAE_SCALE = 0.18215
SDXL_VAE_SCALE = 0.13025


class _Encoder(NamedTuple):
    key: str  # "clip_l", "clip_h" or "clip_g"
    subfolder: str  # its folder in a diffusers pipeline
    prefix: str  # its prefix in a single file
    to_ldm: Callable[[ldm_keys.StateDict, str], dict[str, torch.Tensor]]


_ENCODERS = {
    "sd15": (_Encoder("clip_l", "text_encoder", ldm_keys.SD1_CLIP_PREFIX, ldm_keys.clip_to_ldm),),
    "sd2": (_Encoder("clip_h", "text_encoder", ldm_keys.SD2_OPEN_CLIP_PREFIX, ldm_keys.open_clip_to_ldm),),
    "sdxl": (
        _Encoder("clip_l", "text_encoder", ldm_keys.SDXL_CLIP_L_PREFIX, ldm_keys.clip_to_ldm),
        _Encoder("clip_g", "text_encoder_2", ldm_keys.SDXL_CLIP_G_PREFIX, ldm_keys.open_clip_to_ldm),
    ),
    "sdxl-refiner": (_Encoder("clip_g", "text_encoder_2", ldm_keys.REFINER_CLIP_G_PREFIX, ldm_keys.open_clip_to_ldm),),
}


@dataclass
class TinyModel:
    """One tiny random model of a family: its UNet, VAE and text encoders (by "clip_l"/"clip_h"/"clip_g")."""

    family: str
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoders: dict[str, TextEncoder]

    @property
    def prediction_type(self) -> str:
        """The scheduler's prediction type: "v_prediction" or "epsilon"."""
        return "v_prediction" if _FAMILIES[self.family].v_prediction else "epsilon"


def build_tiny(family: str, seed: int = 0) -> TinyModel:
    """A tiny model of `family` (one of FAMILIES) with random weights fixed by family and seed."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    spec = _FAMILIES[family]
    generator = torch.Generator().manual_seed(zlib.crc32(f"{family}:{seed}".encode()))
    encoders = {e.key: _randomized(_text_encoder(e.key), generator) for e in _ENCODERS[spec.base]}
    unet = _randomized(_unet(spec), generator)
    if spec.v_prediction:
        _last_attention_norm(unet).bias.data.normal_(0, V_NORM_BIAS_STD, generator=generator)
    vae = _randomized(_vae(SDXL_VAE_SCALE if spec.base.startswith("sdxl") else SD_VAE_SCALE), generator)
    return TinyModel(family, unet, vae, encoders)


def _text_encoder(key: str) -> TextEncoder:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=HIDDEN_SIZE[key],
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=1,
        max_position_embeddings=77,
        hidden_act="quick_gelu" if key == "clip_l" else "gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        projection_dim=CLIP_G_PROJECTION,
    )
    with init_empty_weights(include_buffers=False):
        return CLIPTextModelWithProjection(config) if key == "clip_g" else CLIPTextModel(config)


def _unet(spec: _Family) -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    if spec.base == "sd15":
        shape = dict(
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            attention_head_dim=8,
            cross_attention_dim=HIDDEN_SIZE["clip_l"],
        )
    else:
        channels = (64, 128)
        shape = dict(
            block_out_channels=channels,
            attention_head_dim=tuple(c // 64 for c in channels),  # diffusers' name for the head count
            use_linear_projection=True,
        )
        if spec.base == "sd2":
            shape |= dict(
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                cross_attention_dim=HIDDEN_SIZE["clip_h"],
            )
        else:
            time_ids = 6 if spec.base == "sdxl" else 5  # sizes and crop, plus target size or aesthetic score
            shape |= dict(
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                transformer_layers_per_block=(1, 2),
                cross_attention_dim=sum(HIDDEN_SIZE[e.key] for e in _ENCODERS[spec.base]),
                addition_embed_type="text_time",
                addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
                projection_class_embeddings_input_dim=CLIP_G_PROJECTION + time_ids * ADDITION_TIME_EMBED_DIM,
            )
    with init_empty_weights(include_buffers=False):
        return UNet2DConditionModel(
            sample_size=64, in_channels=spec.in_channels, out_channels=4, layers_per_block=1, norm_num_groups=32, **shape
        )


def _vae(scaling_factor: float) -> AutoencoderKL:
    from diffusers import AutoencoderKL

    with init_empty_weights(include_buffers=False):
        return AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(32,) * 4,
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=32,
            scaling_factor=scaling_factor,
        )


def _randomized(model: M, generator: torch.Generator) -> M:
    """Give every parameter fresh small random values so that outputs depend on every tensor."""
    for module in model.modules():
        is_norm = isinstance(module, (nn.LayerNorm, nn.GroupNorm))
        for name, param in list(module.named_parameters(recurse=False)):
            noise = torch.randn(param.shape, generator=generator)
            if is_norm and name == "weight":
                value = 1 + 0.1 * noise
            elif param.ndim == 1:
                value = NORM_BIAS_STD * noise
            else:
                value = noise / math.sqrt(math.prod(param.shape[1:]))
            module.register_parameter(name, nn.Parameter(value))
    return model.eval()


def _last_attention_norm(unet: UNet2DConditionModel) -> nn.LayerNorm:
    """norm1 of the first transformer block in the last output block that has attention."""
    up = [block for block in unet.up_blocks if hasattr(block, "attentions")][-1]
    return up.attentions[-1].transformer_blocks[0].norm1


# ---- writers ---------------------------------------------------------------------------------


def write_single_file(tiny: TinyModel, path: Path, dtype: torch.dtype = torch.float32) -> list[Path]:
    """Save the whole checkpoint under its original key names as `.safetensors`.

    A v-prediction model also gets the sidecar `<name>.yaml` that marks it so. Returns the files written.
    """
    path = Path(path)
    state = ldm_keys.unet_to_ldm(tiny.unet.state_dict(), tiny.unet.config)
    state |= ldm_keys.vae_to_ldm(tiny.vae.state_dict(), tiny.vae.config)
    for encoder in _ENCODERS[_FAMILIES[tiny.family].base]:
        state |= encoder.to_ldm(tiny.text_encoders[encoder.key].state_dict(), encoder.prefix)
    files = [_save(state, path, dtype)]
    if _FAMILIES[tiny.family].v_prediction:
        sidecar = path.with_suffix(".yaml")
        sidecar.write_text(V_PREDICTION_YAML, encoding="utf-8")
        files.append(sidecar)
    return files


def write_diffusers_folder(tiny: TinyModel, folder: Path) -> Path:
    """Save as a diffusers pipeline folder (no tokenizer folders: sdflow ships its tokenizer)."""
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLPipeline,
    )

    spec = _FAMILIES[tiny.family]
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=tiny.prediction_type,
        timestep_spacing="leading",
        steps_offset=1,
    )
    parts = dict(vae=tiny.vae, unet=tiny.unet, scheduler=scheduler)
    if spec.base.startswith("sdxl"):
        encoders = {e.subfolder: tiny.text_encoders[e.key] for e in _ENCODERS[spec.base]}
        parts |= dict(
            text_encoder=encoders.get("text_encoder"),  # the refiner has only text_encoder_2
            text_encoder_2=encoders["text_encoder_2"],
            tokenizer=None,
            tokenizer_2=None,
            add_watermarker=False,
        )
        if spec.base == "sdxl":
            pipeline = StableDiffusionXLPipeline(**parts)
        else:
            pipeline = StableDiffusionXLImg2ImgPipeline(**parts, requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    else:
        kind = StableDiffusionInpaintPipeline if spec.in_channels == 9 else StableDiffusionPipeline
        (encoder,) = tiny.text_encoders.values()
        pipeline = kind(**parts, text_encoder=encoder, tokenizer=None, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return Path(folder)


def write_vae(path: Path, original_keys: bool = True, seed: int = 0) -> AutoencoderKL:
    """Save a standalone tiny VAE (original names without prefix, or diffusers names); returns it."""
    vae = _randomized(_vae(SD_VAE_SCALE), torch.Generator().manual_seed(zlib.crc32(f"vae:{seed}".encode())))
    state = vae.state_dict()
    _save(ldm_keys.vae_to_ldm(state, vae.config, prefix="") if original_keys else state, Path(path), torch.float32)
    return vae


def write_embedding(path: Path, dims: Mapping[str, int] = MappingProxyType({"clip_l": 64}), vectors: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Save a random textual-inversion embedding; returns its vectors by encoder key.

    `.pt` files use A1111's format (one encoder only); `.safetensors` files hold one tensor per
    encoder key ("clip_l", "clip_g").
    """
    path = Path(path)
    generator = torch.Generator().manual_seed(seed)
    tensors = {key: 0.02 * torch.randn(vectors, dim, generator=generator) for key, dim in dims.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, str(path))
    elif path.suffix == ".pt" and len(tensors) == 1:
        (vector,) = tensors.values()
        torch.save({"string_to_param": {"*": vector}, "name": path.stem, "step": 0}, path)
    else:
        raise ValueError(f"{path.name}: write a .safetensors file, or a .pt file for one encoder")
    return tensors


def write_demo_models(folder: Path) -> list[Path]:
    """Write one tiny checkpoint per family, a VAE and an embedding into `folder` (e.g. models/checkpoints)."""
    folder = Path(folder)
    written = []
    for family in FAMILIES:
        written += write_single_file(build_tiny(family), folder / f"sdflow-tiny-{family}.safetensors", torch.float16)
    vae = folder / "sdflow-tiny-vae.safetensors"
    write_vae(vae)
    embedding = folder / "sdflow-tiny-embedding.safetensors"
    write_embedding(embedding, dims={key: HIDDEN_SIZE[key] for key in ("clip_l", "clip_g")})
    return [*written, vae, embedding]


def write_demo_model_folders(models: Path) -> list[Path]:
    """The demo models laid out in a models folder: checkpoints/, vae/, embeddings/, loras/,
    controlnet/ and upscale_models/."""
    from diffusion.demo_control import write_demo_controlnets
    from diffusion.demo_lora import write_demo_loras
    from diffusion.demo_upscale import write_tiny_upscaler

    placed = []
    for path in write_demo_models(models / "checkpoints"):
        kind = {"sdflow-tiny-vae.safetensors": "vae", "sdflow-tiny-embedding.safetensors": "embeddings"}.get(path.name)
        if kind:
            (models / kind).mkdir(parents=True, exist_ok=True)
            path = path.replace(models / kind / path.name)
        placed.append(path)
    placed += write_demo_loras(models / "loras")
    placed += write_demo_controlnets(models)
    placed.append(write_tiny_upscaler(models / "upscale_models" / "sdflow-tiny-esrgan.safetensors"))
    return placed


def provide_demo_models(folders: Folders) -> str | None:
    """Start-up hook of `sdflow serve`: with no checkpoint installed, write the demo models so the
    default workflow runs end to end. Returns what it did, for the console."""
    assert folders.models is not None
    if folders.models.list("checkpoints"):
        return None
    write_demo_model_folders(folders.models.root)
    return (f"No checkpoint is installed, so sdflow wrote its tiny demo models (random weights, for trying sdflow out) to "
            f"{folders.models.root / 'checkpoints'}. Put your own checkpoints there.")


def _save(state: ldm_keys.StateDict, path: Path, dtype: torch.dtype) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.to(dtype).contiguous() for key, value in state.items()}, str(path), metadata={"format": "pt"})
    return path


class _DemoModelsCommand:
    """`sdflow demo-models DIR`: write the tiny demo models into a models folder (DIR, or the folder
    above DIR when DIR is its `checkpoints` subfolder)."""

    name = "demo-models"
    help = "write tiny random models of every family (for trying sdflow out without downloads)"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("dir", type=Path, help="the models folder to write them into (models, or models/checkpoints)")

    def run(self, args: argparse.Namespace) -> int:
        root = args.dir.parent if args.dir.name == "checkpoints" else args.dir
        for path in write_demo_model_folders(root):
            print(path)
        return 0


COMMAND = _DemoModelsCommand()
