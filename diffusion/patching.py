"""Weight patches (LoRA and its kin) put into shared modules only while a handle uses them.

Handles record patches as data; the modules the model manager holds are shared by every handle
of a checkpoint. `patched(module, patches)` makes the module's weights exactly base + patches for
the duration of a block: it applies what is missing and first restores the base weights from
backups when another set was applied before. Nothing is undone at the end of the block, so the
next run with the same patches costs nothing, and the next run without them (or with others)
gets the exact base weights back. Every use of a patchable module goes through `patched`, even
with no patches, which is what keeps other handles from seeing someone else's LoRA.

Changes are summed in float32 on the weight's device (in place for float32 weights) and cast
once to the weight's dtype.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Change(Protocol):
    """One layer's change (e.g. a LoRA adapter): to its weight, or to its bias when `bias`."""

    bias: bool

    def add_to(self, value: torch.Tensor, strength: float) -> None:
        """Add strength × the change to `value` (float32, the tensor's shape) in place."""
        ...


@dataclass(frozen=True)
class WeightPatch:
    """Changes to some layers of one component ("unet", "clip_l", ...), times a strength."""

    component: str
    #: module name → its changes (from one file)
    modules: Mapping[str, tuple[Change, ...]]
    strength: float
    #: where the changes come from, for messages
    source: str = ""


@dataclass(eq=False)
class _State:
    lock: threading.RLock = field(default_factory=threading.RLock)
    applied: tuple[WeightPatch, ...] = ()
    #: parameter name → its base value (on the CPU), for every parameter currently changed
    backups: dict[str, torch.Tensor] = field(default_factory=dict)


_states: weakref.WeakKeyDictionary[nn.Module, _State] = weakref.WeakKeyDictionary()
#: `applied` while weights are being changed: never equal to a real patch tuple
_CHANGING: tuple[WeightPatch, ...] = (WeightPatch("", {}, 0.0, "changing"),)
_states_lock = threading.Lock()


class PatchError(RuntimeError):
    """The module cannot be patched as it is held (e.g. streamed layer by layer)."""


@contextmanager
def patched(module: nn.Module, patches: Sequence[WeightPatch]) -> Iterator[None]:
    """Inside the block the module's weights are its base weights plus `patches` (in order)."""
    wanted = tuple(patches)
    state = _state_of(module)
    with state.lock:
        if state.applied != wanted:
            try:
                _update(module, wanted, state)
            except BaseException:
                _update(module, (), state)
                raise
        yield


def applied(module: nn.Module) -> tuple[WeightPatch, ...]:
    """The patches currently in the module's weights."""
    with _states_lock:
        state = _states.get(module)
    return state.applied if state is not None else ()


def _state_of(module: nn.Module) -> _State:
    with _states_lock:
        state = _states.get(module)
        if state is None:
            state = _states[module] = _State()
        return state


@torch.no_grad()
def _update(module: nn.Module, patches: tuple[WeightPatch, ...], state: _State) -> None:
    """Make the weights base + `patches`: parameters no patch changes get their base back; the
    others become their base (kept from before when already changed) plus every change."""
    state.applied = _CHANGING
    parameters = dict(module.named_parameters())
    changes = _changes_by_parameter(patches)
    for name in [n for n in state.backups if n not in changes]:
        parameters[name].copy_(state.backups.pop(name))
    for name, scaled in changes.items():
        parameter = parameters[name]
        if parameter.is_meta:
            raise PatchError("LoRA needs the model's weights in memory, but --novram streams them layer by layer: use --lowvram")
        base = state.backups.get(name)
        if base is None:  # the parameter holds its base value now
            state.backups[name] = parameter.detach().to("cpu", copy=True)
        elif parameter.dtype == torch.float32:
            parameter.copy_(base)
        # float32 weights take the changes in place; others are summed in float32 and cast once
        value = parameter if parameter.dtype == torch.float32 else state.backups[name].to(parameter.device, torch.float32)
        for change, strength in scaled:
            change.add_to(value, strength)
        if value is not parameter:
            parameter.copy_(value)
    state.applied = patches


def _changes_by_parameter(patches: tuple[WeightPatch, ...]) -> dict[str, list[tuple[Change, float]]]:
    changes: dict[str, list[tuple[Change, float]]] = {}
    for patch in patches:
        if patch.strength == 0:
            continue
        for name, layer_changes in patch.modules.items():
            for change in layer_changes:
                changes.setdefault(f"{name}.{'bias' if change.bias else 'weight'}", []).append((change, patch.strength))
    return changes
