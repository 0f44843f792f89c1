"""LoRA, LoCon, LoHa, LoKr and full-difference files applied to MODEL and CLIP handles.

A file is read once (through the model manager) and matched against the model it is applied to;
the result is a `WeightPatch` per component with the user's strength, added to new handles. The
base weights are never changed outside `diffusion.patching.patched`, so the handles without the
LoRA keep giving exactly the base model's output, and switching LoRAs never reloads a checkpoint.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from diffusion.families import ModelFormatError
from diffusion.handles import ClipHandle, ModelHandle
from diffusion.lora.files import LoraFile, Matched, match, read_lora
from diffusion.lora.keys import UNET, Target, text_targets, unet_targets
from diffusion.patching import WeightPatch
from engine.models import ModelManager, file_key

__all__ = ["LoraFile", "Applied", "load_lora", "apply_lora"]

_unet_names: weakref.WeakKeyDictionary[nn.Module, dict[str, Target]] = weakref.WeakKeyDictionary()


def load_lora(path: Path, manager: ModelManager) -> LoraFile:
    """A LoRA file's layers, read once while it stays loaded."""
    return manager.load((*file_key(path), "lora"), lambda: read_lora(path))


@dataclass
class Applied:
    """New handles (the inputs where nothing changed) and sentences about what was not applied."""

    model: ModelHandle | None
    clip: ClipHandle | None
    notes: list[str] = field(default_factory=list)


def apply_lora(lora: LoraFile, model: ModelHandle | None, clip: ClipHandle | None, strength_model: float, strength_clip: float) -> Applied:
    """Patch `model` and `clip` (either may be None) with the file's layers at these strengths.

    A strength of 0 leaves that part as it is. Layers that fit nothing are reported in the notes;
    when none of the file's layers fit the parts given, ModelFormatError says so.
    """
    targets: dict[str, Target] = {}
    modules: dict[str, nn.Module] = {}
    if model is not None:
        targets |= _unet_targets(model.unet)
        modules[UNET] = model.unet
    if clip is not None:
        encoders = [(e.key, e.model) for e in clip.encoders]
        targets |= text_targets(encoders)
        modules |= dict(encoders)
    matched = match(lora, targets, _shapes(targets.values(), modules), text=clip is not None)
    _check_fits(lora, matched)
    strengths = {component: strength_model if component == UNET else strength_clip for component in modules}
    patches = _patches(lora, matched, strengths)
    new_model = model.with_patches(patches[UNET]) if model is not None and UNET in patches else model
    text = [patch for component, patch in patches.items() if component != UNET]
    new_clip = clip.with_patches(*text) if clip is not None and text else clip
    return Applied(new_model, new_clip, matched.problems(lora) + _skipped(matched))


def _unet_targets(unet: nn.Module) -> dict[str, Target]:
    names = _unet_names.get(unet)
    if names is None:
        names = _unet_names[unet] = unet_targets(unet)
    return names


def _shapes(targets, modules: dict[str, nn.Module]) -> dict[Target, tuple[torch.Size, torch.Size | None]]:
    shapes = {}
    for target in set(targets):
        layer = modules[target.component].get_submodule(target.module)
        shapes[target] = (layer.weight.shape, layer.bias.shape if getattr(layer, "bias", None) is not None else None)
    return shapes


def _check_fits(lora: LoraFile, matched: Matched) -> None:
    if matched.applied == 0 and (matched.unmatched or matched.misfits):
        raise ModelFormatError(f"{lora.name}: none of its layers fit this model ({'; '.join(matched.problems(lora))}); "
                               "is it made for another model family?")


def _patches(lora: LoraFile, matched: Matched, strengths: dict[str, float]) -> dict[str, WeightPatch]:
    by_component: dict[str, dict[str, tuple]] = defaultdict(dict)
    for target, adapters in matched.adapters.items():
        by_component[target.component][target.module] = tuple(adapters)
    return {
        component: WeightPatch(component, layers, strengths[component], lora.name)
        for component, layers in by_component.items()
        if strengths[component] != 0
    }


def _skipped(matched: Matched) -> list[str]:
    if matched.skipped and matched.applied == 0:
        return [f"it has only text encoder layers ({matched.skipped}); apply it with Load LoRA to change the text encoder"]
    return []
