"""Annotator weight files: found in the `annotators` model folders, read without running pickle
code, and assigned to networks built without initialising their weights.

controlnet-aux's own loaders call `torch.load` without `weights_only`, so sdflow never lets them
open a file: `.pth`/`.pt` files are read here with `weights_only=True` (a file that needs code to
be unpickled is refused), `.safetensors` files through `diffusion.loading.read_state_dict`.
"""

from __future__ import annotations

import pickle
import re
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from accelerate import init_empty_weights

from diffusion.families import ModelFormatError
from diffusion.loading import PICKLE_SUFFIXES, load_strictly, read_state_dict
from engine.model_folders import ModelFolders

FOLDER = "annotators"
#: keys some trainers nest the state dict under (Zoe and BAE under `model`, PiDiNet under `state_dict`)
NESTING_KEYS = ("model", "state_dict")
M = TypeVar("M", bound=torch.nn.Module)


class AnnotatorUnavailable(RuntimeError):
    """A preprocessor cannot run here: its weight file or a package it needs is missing."""


@dataclass(frozen=True)
class Weights:
    """The tensors of one weight file, with the file's name for error messages."""

    name: str
    tensors: dict[str, torch.Tensor]


def find_weights(folders: ModelFolders, name: str, source: str) -> Path:
    """The file `name` in the annotators folders, or a `.safetensors` file of the same stem."""
    for candidate in (name, f"{Path(name).stem}.safetensors"):
        try:
            return folders.find(FOLDER, candidate)
        except FileNotFoundError:
            continue
    searched = ", ".join(str(path) for path in folders.paths(FOLDER))
    raise AnnotatorUnavailable(
        f"missing weights: {name} is not in the {FOLDER} model folder (searched {searched}); "
        f"download {name} from https://huggingface.co/{source} into {folders.paths(FOLDER)[0]}"
    )


def read_weights(path: Path) -> Weights:
    """The tensors of a weight file, without a `module.` prefix (left by DataParallel training)."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        tensors = _unpickled(path)
    else:
        tensors = dict(read_state_dict(path))
    if not tensors:
        raise ModelFormatError(f"{path.name}: holds no tensors")
    return Weights(path.name, {key.removeprefix("module."): value for key, value in tensors.items()})


def _unpickled(path: Path) -> dict[str, torch.Tensor]:
    """A pickled checkpoint read with `weights_only=True`, its state dict taken out of the
    `model`/`state_dict` entry it may be nested in."""
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        needed = re.search(r"GLOBAL (\S+)", str(exc))
        raise ModelFormatError(
            f"{path.name}: refused: unpickling it would run code ({needed[1] if needed else 'not plain tensors'}); "
            "convert it to .safetensors with a tool you trust"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ModelFormatError(f"{path.name}: not a readable checkpoint ({exc}); it may be truncated") from None
    while isinstance(data, dict) and not any(isinstance(value, torch.Tensor) for value in data.values()):
        data = next((data[key] for key in NESTING_KEYS if isinstance(data.get(key), dict)), None)
    return {key: value for key, value in (data or {}).items() if isinstance(value, torch.Tensor)}


def filled(build: Callable[[], M], weights: Weights, by_layer: bool = False, empty: bool = True) -> M:
    """The network `build()` makes, holding `weights` (in fp32): built without initialising its
    weights (unless not `empty`: for networks that run themselves while being built), then given
    the file's tensors; a weight the file lacks is an error naming the file.

    `by_layer`: the file names each layer without its block, as OpenPose's do (`conv1_1.weight`
    for the network's `model0.conv1_1.weight`).
    """
    with init_empty_weights() if empty else nullcontext():
        network = build()
    tensors = weights.tensors
    if by_layer:
        layers = {key: key.split(".", 1)[-1] for key in network.state_dict()}
        tensors = {key: tensors[layer] for key, layer in layers.items() if layer in tensors}
    return load_strictly(network, tensors, torch.float32, f"{weights.name}: {type(network).__name__}")
