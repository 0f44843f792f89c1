"""Reading model files and building diffusers/transformers modules from them.

Single-file checkpoints in original key names are converted with diffusers' own converters
(`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`,
`convert_open_clip_checkpoint`) into modules whose configs come from `diffusion.architecture`.
Every module is loaded strictly: a missing or misshapen weight is an error naming the file and
the part, never a half-initialised model. `.ckpt`/`.pt` files are read only with
`torch.load(weights_only=True)`; a file that needs code to unpickle is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)
from safetensors import SafetensorError, safe_open
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from diffusion.architecture import clip_config, unet_config, vae_config
from diffusion.families import (
    CLIP_G_SDXL,
    CLIP_H_SD2,
    CLIP_L_SD1,
    CLIP_L_SDXL,
    FAMILIES,
    UNET_PREFIX,
    Detection,
    EncoderSlot,
    Family,
    ModelFormatError,
    Prediction,
    detect,
)

log = logging.getLogger(__name__)

Tensors = Mapping[str, torch.Tensor]
#: the dtype each tensor is read into, by key (None keeps the stored dtype)
DtypeOf = Callable[[str], torch.dtype | None]
M = TypeVar("M", bound=torch.nn.Module)
TextModel = CLIPTextModel | CLIPTextModelWithProjection
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
#: keys under which pickled checkpoints keep their tensors (Lightning, Real-ESRGAN/BasicSR)
WRAPPERS = ("state_dict", "params_ema", "params")


@dataclass(frozen=True)
class Dtypes:
    """The dtype each component is loaded into (chosen by the caller for its device)."""

    unet: torch.dtype = torch.float32
    vae: torch.dtype = torch.float32
    text: torch.dtype = torch.float32

    def of_key(self, key: str) -> torch.dtype:
        """The dtype of a tensor of an original-format checkpoint, by the component it belongs to."""
        if key.startswith(UNET_PREFIX):
            return self.unet
        return self.vae if key.startswith("first_stage_model.") else self.text


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The modules of one checkpoint; any part the file lacks is None / absent."""

    source: Path
    detection: Detection
    unet: UNet2DConditionModel | None = None
    vae: AutoencoderKL | None = None
    #: encoder key ("clip_l", "clip_h", "clip_g") → (slot, model)
    encoders: dict[str, tuple[EncoderSlot, TextModel]] = field(default_factory=dict)


# ---- reading files --------------------------------------------------------------------------


class SafetensorsFile(Mapping[str, torch.Tensor]):
    """The tensors of a `.safetensors` file, each read only when asked for and in the dtype its
    key calls for, so loading never holds the stored copy and the converted copy of a model at once."""

    def __init__(self, path: Path, dtype_of: DtypeOf | None = None) -> None:
        try:
            self._file = safe_open(str(path), framework="pt", device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFormatError(f"{path.name}: not a readable safetensors file ({exc}); it may be truncated") from None
        self._keys = list(self._file.keys())
        self._key_set = set(self._keys)
        self._dtype_of = dtype_of

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._key_set:
            raise KeyError(key)
        tensor = self._file.get_tensor(key)
        dtype = self._dtype_of(key) if self._dtype_of is not None else None
        return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor

    def __contains__(self, key: object) -> bool:
        return key in self._key_set

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Renamed(Mapping[str, torch.Tensor]):
    """Tensors of another mapping under new names (new → old); nothing is read until asked for."""

    def __init__(self, source: Tensors, names: Mapping[str, str]) -> None:
        self._source = source
        self._names = dict(names)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._source[self._names[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def read_state_dict(path: Path, dtype_of: DtypeOf | None = None) -> Tensors:
    """The tensors of a `.safetensors` file (read lazily), or of a pickle-free `.ckpt`/`.pt`/`.pth`/`.bin`."""
    if path.suffix.lower() in (".safetensors", ".sft"):
        return SafetensorsFile(path, dtype_of)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return _read_pickle(path)
    raise ModelFormatError(f"{path.name}: unsupported model file type {path.suffix!r} (use .safetensors)")


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFormatError(
            f"{path.name}: refused: this file needs to run code to be unpickled, which could do anything "
            f"({str(exc).splitlines()[0]}). Convert it to .safetensors with a tool you trust."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ModelFormatError(f"{path.name}: not a readable checkpoint ({exc}); it may be truncated") from None
    for wrapper in WRAPPERS:  # training tools nest the weights one level down
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path.name}: holds a {type(data).__name__}, not a dictionary of tensors")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


# ---- building modules -----------------------------------------------------------------------


def load_strictly(module: M, weights: Mapping[str, torch.Tensor], dtype: torch.dtype, what: str) -> M:
    """Assign `weights` (cast to `dtype`) to a meta-initialised module; every parameter must be given."""
    weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}
    try:
        missing, unexpected = module.load_state_dict(weights, strict=False, assign=True)
    except RuntimeError as exc:  # shape mismatches
        raise ModelFormatError(f"{what}: weights do not fit the detected architecture: {str(exc).splitlines()[-1].strip()}") from None
    if missing:
        raise ModelFormatError(f"{what}: {len(missing)} weights are missing (e.g. {', '.join(missing[:3])}); the file is incomplete")
    if unexpected:
        log.debug("%s: ignored %d extra tensors, e.g. %s", what, len(unexpected), unexpected[:3])
    return module.eval()


def build_unet(state: Tensors, family: Family, dtype: torch.dtype, source: Path, pooled_dim: int | None = None) -> UNet2DConditionModel:
    """The UNet of an original-format checkpoint."""
    config = unet_config(state, family, pooled_dim)
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(config)
    return load_strictly(unet, convert_ldm_unet_checkpoint(state, config), dtype, f"{source.name}: UNet")


def build_vae(state: Tensors, family: Family, dtype: torch.dtype, source: Path) -> AutoencoderKL:
    """A VAE from original names (with or without `first_stage_model.`) or diffusers names."""
    prefixed = [k for k in state if k.startswith("first_stage_model.")]
    plain = Renamed(state, {k.removeprefix("first_stage_model."): k for k in prefixed} if prefixed else {k: k for k in state})
    config = vae_config(plain, family)
    with init_empty_weights():
        vae = AutoencoderKL.from_config(config)
    weights = plain if "encoder.down_blocks.0.resnets.0.conv1.weight" in plain else convert_ldm_vae_checkpoint(plain, config)
    return load_strictly(vae, weights, dtype, f"{source.name}: VAE")


def build_text_encoder(state: Tensors, slot: EncoderSlot, family: Family, dtype: torch.dtype, source: Path) -> TextModel:
    """One text encoder stored under `slot.prefix` (OpenAI/transformers or OpenCLIP layout)."""
    config = clip_config(state, slot, family)
    model_class = CLIPTextModelWithProjection if slot.projected else CLIPTextModel
    with init_empty_weights():
        model = model_class(config)
    if slot.open_clip:
        weights = convert_open_clip_checkpoint(model, state, prefix=slot.prefix)
        weights.update(_sd2_last_text_layer(model, state, slot))
    else:
        weights = convert_ldm_clip_checkpoint(state, remove_prefix=slot.prefix)
    if not hasattr(model, "text_model"):  # transformers 5 flattened CLIPTextModel
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    return load_strictly(model, weights, dtype, f"{source.name}: text encoder {slot.key}")


def _sd2_last_text_layer(model: TextModel, state: Tensors, slot: EncoderSlot) -> Tensors:
    """SD2's 24th text layer, which diffusers' converter leaves out (its pipelines stop one layer
    earlier), converted by that same converter under a neutral prefix so CLIP skip -1 works."""
    own = slot.prefix + "transformer.resblocks.23."
    if slot.prefix != CLIP_H_SD2.prefix or own + "ln_1.weight" not in state:
        return {}
    alone = Renamed(state, {"layer.transformer.resblocks.0." + k[len(own) :]: k for k in state if k.startswith(own)})
    converted = convert_open_clip_checkpoint(model, alone, prefix="layer.")
    return {k.replace(".layers.0.", ".layers.23.", 1): v for k, v in converted.items() if ".layers.0." in k}


# ---- whole files ----------------------------------------------------------------------------


def load_checkpoint(path: Path, dtypes: Dtypes, prediction: Prediction | None = None) -> Checkpoint:
    """A single-file checkpoint (original key names) or a diffusers folder."""
    if path.is_dir():
        return load_diffusers_folder(path, dtypes, prediction)
    state = read_state_dict(path, dtypes.of_key)
    detection = detect(state, path, prediction)
    family = detection.family
    encoders = {
        slot.key: (slot, build_text_encoder(state, slot, family, dtypes.text, path))
        for slot in family.encoders
        if any(k.startswith(slot.prefix) for k in state)
    }
    pooled = encoders["clip_g"][1].config.projection_dim if "clip_g" in encoders else None
    unet = build_unet(state, family, dtypes.unet, path, pooled)
    has_vae = any(k.startswith("first_stage_model.") for k in state)
    vae = build_vae(state, family, dtypes.vae, path) if has_vae else None
    return Checkpoint(path, detection, unet, vae, encoders)


def load_diffusers_folder(path: Path, dtypes: Dtypes, prediction: Prediction | None = None) -> Checkpoint:
    """A diffusers-format model folder (model_index.json with unet/, vae/, text_encoder*/)."""
    if not (path / "model_index.json").is_file():
        raise ModelFormatError(f"{path.name}: not a diffusers model folder (no model_index.json)")
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtypes.unet, local_files_only=True)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtypes.vae, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path.name}: cannot load the diffusers folder: {exc}") from None
    family = _family_of_unet_config(unet.config, path)
    encoders = {}
    for slot in family.encoders:
        model_class = CLIPTextModelWithProjection if slot.projected else CLIPTextModel
        try:
            model = model_class.from_pretrained(path / slot.subfolder, torch_dtype=dtypes.text, local_files_only=True)
        except OSError as exc:
            raise ModelFormatError(f"{path.name}: cannot load {slot.subfolder}: {exc}") from None
        encoders[slot.key] = (slot, model.eval())
    chosen = prediction or _scheduler_prediction(path)
    if family.id == "sd2" and chosen == "v":
        family = FAMILIES["sd2-v"]
    return Checkpoint(path, Detection(family, chosen), unet.eval(), vae.eval(), encoders)


def _family_of_unet_config(config: Any, source: Path) -> Family:
    if config.addition_embed_type == "text_time":
        return FAMILIES["sdxl" if (source / CLIP_L_SDXL.subfolder).is_dir() else "sdxl-refiner"]
    base = "sd2" if config.use_linear_projection else "sd15"
    if config.in_channels == 9:
        return FAMILIES[base + "-inpaint"]
    if config.in_channels != 4:
        raise ModelFormatError(f"{source.name}: a UNet with {config.in_channels} input channels is not a supported family")
    return FAMILIES[base]


def _scheduler_prediction(folder: Path) -> Prediction:
    config = folder / "scheduler" / "scheduler_config.json"
    if not config.is_file():
        return "eps"
    return "v" if json.loads(config.read_text()).get("prediction_type") == "v_prediction" else "eps"


def load_unet_file(path: Path, dtype: torch.dtype, prediction: Prediction | None = None) -> tuple[Detection, UNet2DConditionModel]:
    """A UNet-only file (original names, with or without `model.diffusion_model.`)."""
    state = read_state_dict(path, lambda key: dtype)
    if not any(k.startswith(UNET_PREFIX) for k in state):
        state = Renamed(state, {UNET_PREFIX + k: k for k in state})
    detection = detect(state, path, prediction)
    return detection, build_unet(state, detection.family, dtype, path)


def load_vae_file(path: Path, dtype: torch.dtype) -> AutoencoderKL:
    """A standalone VAE file (original or diffusers names); all SD families share its shape rules."""
    state = read_state_dict(path, lambda key: dtype)
    if "encoder.conv_in.weight" not in {k.removeprefix("first_stage_model.") for k in state}:
        raise ModelFormatError(f"{path.name}: no VAE encoder/decoder tensors in this file")
    return build_vae(state, FAMILIES["sd15"], dtype, path)


def load_text_encoder_file(path: Path, dtype: torch.dtype, sdxl: bool) -> tuple[EncoderSlot, TextModel]:
    """A standalone text encoder file (transformers, OpenAI or OpenCLIP names).

    Which encoder it is follows from its layout: OpenCLIP or a projection means SD2's clip_h (or
    SDXL's clip_g when `sdxl`), otherwise OpenAI CLIP-L.
    """
    state = read_state_dict(path, lambda key: dtype)
    layout, names = _text_encoder_layout(state, path)
    if layout == "open_clip":
        slot = CLIP_G_SDXL if sdxl else CLIP_H_SD2
    elif "text_projection.weight" in names:
        slot = dataclasses.replace(CLIP_G_SDXL, open_clip=False)
    else:
        slot = CLIP_L_SDXL if sdxl else CLIP_L_SD1
    family = FAMILIES["sdxl" if sdxl else ("sd2" if slot is CLIP_H_SD2 else "sd15")]
    slot = dataclasses.replace(slot, prefix="file.")
    return slot, build_text_encoder(Renamed(state, {"file." + k: old for k, old in names.items()}), slot, family, dtype, path)


#: prefixes under which checkpoints and tools store a text encoder
_TEXT_PREFIXES = ("", "cond_stage_model.transformer.", "cond_stage_model.model.", "conditioner.embedders.0.transformer.",
                  "conditioner.embedders.1.model.", "conditioner.embedders.0.model.")


def _text_encoder_layout(state: Tensors, path: Path) -> tuple[str, dict[str, str]]:
    """The layout ("openai": transformers names under `text_model.`; "open_clip") and the names of
    the encoder's tensors without their prefix (new name → name in the file)."""
    for prefix in _TEXT_PREFIXES:
        names = {k[len(prefix) :]: k for k in state if k.startswith(prefix)}
        if "token_embedding.weight" in names and "transformer.resblocks.0.ln_1.weight" in names:
            return "open_clip", names
        if "embeddings.token_embedding.weight" in names:  # transformers 5 CLIPTextModel names
            names = {k if k == "text_projection.weight" else "text_model." + k: v for k, v in names.items()}
        if "text_model.embeddings.token_embedding.weight" in names:
            return "openai", names
    raise ModelFormatError(f"{path.name}: not a CLIP text encoder (no token embedding found)")
