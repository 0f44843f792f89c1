"""Reading a LoRA-style file into layers, and matching its layers to a model's weights."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from diffusion.families import ModelFormatError
from diffusion.loading import read_state_dict
from diffusion.lora.adapters import ROLES, SUFFIXES, Adapter, AdapterError, adapter_for
from diffusion.lora.keys import Target, is_text_layer

#: how many example names a report shows
EXAMPLES = 3


@dataclass(frozen=True, eq=False)
class LoraFile:
    """The layers of one file: layer name → role → tensor, plus tensors with no known role."""

    name: str
    layers: dict[str, dict[str, torch.Tensor]]
    unknown: tuple[str, ...] = ()


def read_lora(path: Path) -> LoraFile:
    """Group a file's tensors by layer (safetensors, or a pickle-free .pt/.ckpt)."""
    state = read_state_dict(path)
    layers: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    unknown = []
    for key in state:
        split = _split(key)
        if split is None:
            unknown.append(key)
        else:
            layer, role = split
            layers[layer][role] = state[key]
    if not layers:
        found = ", ".join(list(state)[:EXAMPLES]) or "no tensors"
        raise ModelFormatError(f"{path.name}: not a LoRA file: no LoRA, LoHa, LoKr or full-difference layers (found {found})")
    return LoraFile(path.name, dict(layers), tuple(unknown))


def _split(key: str) -> tuple[str, str] | None:
    """(layer name, canonical role) of a tensor name, or None when no role matches."""
    for suffix in SUFFIXES:
        joined = suffix if suffix.startswith("_") else f".{suffix}"
        if key.endswith(joined) and len(key) > len(joined):
            return key[: -len(joined)], ROLES[suffix]
    return None


@dataclass
class Matched:
    """What fits where: adapters per (component, parameter name), and what fits nowhere."""

    adapters: dict[Target, list[Adapter]] = field(default_factory=lambda: defaultdict(list))
    applied: int = 0
    #: layers that match no layer of the model
    unmatched: list[str] = field(default_factory=list)
    #: "layer: reason" for layers that name a model layer but cannot change it
    misfits: list[str] = field(default_factory=list)
    #: layers for a part that is not being patched (text encoder layers in a model-only load)
    skipped: int = 0

    def problems(self, lora: LoraFile) -> list[str]:
        """Human sentences about everything in the file that was not applied."""
        notes = []
        if self.unmatched:
            notes.append(f"{len(self.unmatched)} layers match nothing in this model (e.g. {', '.join(self.unmatched[:EXAMPLES])})")
        if self.misfits:
            notes.append(f"{len(self.misfits)} layers cannot be applied to their model layer ({'; '.join(self.misfits[:EXAMPLES])})")
        if lora.unknown:
            notes.append(f"{len(lora.unknown)} tensors are of no known LoRA kind (e.g. {', '.join(lora.unknown[:EXAMPLES])})")
        return notes


def match(lora: LoraFile, targets: Mapping[str, Target], shapes: Mapping[Target, tuple[torch.Size, torch.Size | None]], text: bool) -> Matched:
    """Match every layer to a target weight (or bias) whose shape its change fits.

    `shapes` gives each target module's (weight shape, bias shape); `text` says whether text
    encoder layers are being applied (else they are only counted as skipped).
    """
    matched = Matched()
    for name, tensors in lora.layers.items():
        target = targets.get(name)
        if target is None:
            if is_text_layer(name) and not text:
                matched.skipped += 1
            else:
                matched.unmatched.append(name)
            continue
        try:
            adapter = adapter_for(tensors)
            weight, bias = shapes[target]
            shape = bias if adapter.bias else weight
            if shape is None:
                raise AdapterError("the model layer has no bias")
            adapter.delta(shape, torch.device("meta"))  # shape check without computing anything
        except AdapterError as exc:
            matched.misfits.append(f"{name}: {exc}")
            continue
        matched.adapters[target].append(adapter)
        matched.applied += 1
    return matched
