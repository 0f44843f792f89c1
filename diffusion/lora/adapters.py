"""Weight adapters: what one layer of a LoRA-style file does to one weight of the model.

A file stores, per layer, a few tensors named by their role (`lora_up.weight`, `hada_w1_a`,
`lokr_w2`, `diff`, ...). `adapter_for(tensors)` turns such a group into an `Adapter` whose
`delta(shape)` is the change to a weight of that shape, before the user's strength:

- LoRA and LoCon (kohya `lora_up/lora_down[/lora_mid]`, peft `lora_B/lora_A`, diffusers
  `lora.up/lora.down`): ΔW = up @ down · alpha/rank (rank = down's first dim; no alpha: 1);
  convolution layers multiply through the kernel, a `lora_mid` (Tucker) core included.
- LoHa: ΔW = (w1_a @ w1_b) ⊙ (w2_a @ w2_b) · alpha/rank, with optional Tucker cores t1/t2.
- LoKr: ΔW = kron(w1, w2), each factor stored whole or as a low-rank pair (then · alpha/rank).
- full: ΔW = diff (LyCORIS "full" layers; `diff_b` is a bias change).

Everything is computed in float32 on the device of the weight it is applied to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

Tensors = Mapping[str, torch.Tensor]

#: role name in a file → the canonical role used here
ROLES: Mapping[str, str] = {
    # LoRA / LoCon
    "lora_up.weight": "up", "lora_down.weight": "down", "lora_mid.weight": "mid",
    "lora_B.weight": "up", "lora_A.weight": "down",
    "lora.up.weight": "up", "lora.down.weight": "down",
    "lora_linear_layer.up.weight": "up", "lora_linear_layer.down.weight": "down",
    "_lora.up.weight": "up", "_lora.down.weight": "down",
    "alpha": "alpha",
    # LoHa
    "hada_w1_a": "w1_a", "hada_w1_b": "w1_b", "hada_w2_a": "w2_a", "hada_w2_b": "w2_b", "hada_t1": "t1", "hada_t2": "t2",
    # LoKr
    "lokr_w1": "k1", "lokr_w1_a": "k1_a", "lokr_w1_b": "k1_b", "lokr_w2": "k2", "lokr_w2_a": "k2_a", "lokr_w2_b": "k2_b", "lokr_t2": "kt2",
    # full
    "diff": "diff", "diff_b": "diff_b",
    # DoRA's magnitude: recognised so that such layers are refused rather than half applied
    "dora_scale": "dora",
}
#: roles, longest first, so that "lora_linear_layer.up.weight" wins over "up.weight" lookalikes
SUFFIXES = sorted(ROLES, key=len, reverse=True)


class AdapterError(ValueError):
    """A layer's tensors do not form a known adapter, or do not fit the weight they target."""


@dataclass(frozen=True, eq=False)
class Adapter:
    """The change one file layer makes to one model weight; `bias` says it targets the bias."""

    kind: str
    tensors: dict[str, torch.Tensor]
    bias: bool = False

    def delta(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """ΔW for a weight of `shape` (float32 on `device`); AdapterError if it does not fit."""
        t = {k: v.to(device, torch.float32) for k, v in self.tensors.items() if k != "alpha"}
        delta = _DELTAS[self.kind](t, self._alpha_scale())
        if delta.numel() != shape.numel():
            raise AdapterError(f"a {self.kind} change of shape {tuple(delta.shape)} does not fit a weight of shape {tuple(shape)}")
        return delta.reshape(shape)

    def add_to(self, value: torch.Tensor, strength: float) -> None:
        """Add strength × ΔW to `value` (float32, the weight's shape) in place."""
        down = self.tensors.get("down")
        if self.kind == "lora" and down is not None and down.ndim == 2 and "mid" not in self.tensors:
            up = self.tensors["up"].to(value.device, torch.float32)
            value.addmm_(up, down.to(value.device, torch.float32), alpha=strength * self._alpha_scale())
        else:
            value.add_(self.delta(value.shape, value.device), alpha=strength)

    def _alpha_scale(self) -> float:
        alpha = self.tensors.get("alpha")
        rank = _rank(self.kind, self.tensors)
        if alpha is None or rank is None:
            return 1.0
        return float(alpha) / rank


def _rank(kind: str, t: Mapping[str, torch.Tensor]) -> int | None:
    if kind == "lora":
        return t["down"].shape[0]
    if kind == "loha":
        return t["w1_b"].shape[0]
    if kind == "lokr":
        low_rank = t.get("k1_b", t.get("k2_b"))
        return None if low_rank is None else low_rank.shape[0]
    return None


def _lora(t: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    up, down, mid = t["up"], t["down"], t.get("mid")
    if mid is not None:  # Tucker: down [r, in, 1, 1], mid [r, r, k, k], up [out, r, 1, 1]
        core = torch.einsum("i j k l, j r -> i r k l", mid, down.flatten(1))
        return torch.einsum("i j k l, i r -> r j k l", core, up.flatten(1)) * scale
    if down.ndim == 4:  # LoCon: a k×k (or 1×1) convolution down, a 1×1 convolution up
        return (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:]) * scale
    return (up @ down) * scale


def _loha(t: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    if "t1" in t:
        first = torch.einsum("i j k l, j r, i p -> p r k l", t["t1"], t["w1_b"], t["w1_a"])
        second = torch.einsum("i j k l, j r, i p -> p r k l", t["t2"], t["w2_b"], t["w2_a"])
    else:
        first = t["w1_a"] @ t["w1_b"].flatten(1)
        second = t["w2_a"] @ t["w2_b"].flatten(1)
    return first * second * scale


def _lokr(t: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    w1 = t["k1"] if "k1" in t else t["k1_a"] @ t["k1_b"]
    if "k2" in t:
        w2 = t["k2"]
    elif "kt2" in t:
        w2 = torch.einsum("i j k l, j r, i p -> p r k l", t["kt2"], t["k2_b"], t["k2_a"])
    else:
        w2 = t["k2_a"] @ t["k2_b"].flatten(1)
    if w2.ndim == 4 and w1.ndim == 2:
        w1 = w1[:, :, None, None]
    return torch.kron(w1, w2) * scale


def _full(t: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    return t.get("diff", t.get("diff_b"))


_DELTAS = {"lora": _lora, "loha": _loha, "lokr": _lokr, "full": _full}
_REQUIRED = {
    "lora": ({"up", "down"},),
    "loha": ({"w1_a", "w1_b", "w2_a", "w2_b"},),
    "lokr": ({"k1", "k2"}, {"k1", "k2_a", "k2_b"}, {"k1_a", "k1_b", "k2"}, {"k1_a", "k1_b", "k2_a", "k2_b"}),
    "full": ({"diff"}, {"diff_b"}),
}


def adapter_for(tensors: Mapping[str, torch.Tensor]) -> Adapter:
    """The adapter a layer's tensors (keyed by canonical role) describe; AdapterError if none."""
    roles = set(tensors) - {"alpha"}
    if "dora" in roles:
        raise AdapterError("DoRA layers (dora_scale) are not supported")
    for kind, alternatives in _REQUIRED.items():
        if any(required <= roles for required in alternatives):
            return Adapter(kind, dict(tensors), bias=roles == {"diff_b"})
    raise AdapterError(f"an incomplete or unknown layer (it has {', '.join(sorted(roles)) or 'only an alpha'})")
