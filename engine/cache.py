"""Content-addressed output cache: keys from node content, entries evicted LRU under a byte budget.

The key of a node is a hash of its class, node version, constant inputs, fingerprint
(IS_CHANGED) and the keys of the nodes feeding it, so it names *what* would be computed, not
*where* in which prompt. The cache outlives prompts, so switching workflows and back is free.
An entry's size counts every tensor it keeps alive, the weights of a model handle included, so
the cache lets go of models the model manager has stopped keeping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import sys
import threading
import types
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from engine.workflow.api import Link

DEFAULT_CACHE_BYTES = 4 * 1024**3


def cache_key(
    class_type: str,
    version: str,
    constants: dict[str, Any],
    links: dict[str, tuple[str, int]],
    fingerprint: Any = None,
    node_id: str | None = None,
) -> str:
    """The content key of one node; `links` maps input name → (producer key, slot).

    Constants that are not JSON data, and fingerprints that are NaN, make the key unique, so
    such a node (and everything after it) always runs.
    """
    if isinstance(fingerprint, float) and math.isnan(fingerprint):
        return unique_key()
    material = {
        "class": class_type,
        "version": version,
        "constants": constants,
        "links": {name: list(value) for name, value in links.items()},
        "fingerprint": None if fingerprint is None else repr(fingerprint),
        "node": node_id,
    }
    try:
        text = json.dumps(material, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_strict)
    except (TypeError, ValueError):
        return unique_key()
    return hashlib.sha256(text.encode()).hexdigest()


def unique_key() -> str:
    """A key no other node will ever have (for nodes that must not be cached)."""
    return "uncached-" + uuid.uuid4().hex


def _strict(value: Any) -> Any:
    if isinstance(value, Link):
        return list(value)
    raise TypeError(f"not JSON data: {type(value).__name__}")


#: how deep `estimate_bytes` follows containers and object fields
MAX_DEPTH = 8


def estimate_bytes(value: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Approximate memory held by a value: tensors by their size, a torch module by its parameters
    and buffers, and containers, dataclass fields and objects' attributes followed down to
    MAX_DEPTH levels, each object counted once (so a handle holding a model counts its weights)."""
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, torch.nn.Module):
        return sum(estimate_bytes(t, seen) for t in itertools.chain(value.parameters(), value.buffers()))
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    nbytes = getattr(value, "nbytes", None)  # numpy arrays and the like
    if isinstance(nbytes, int):
        return nbytes
    return sys.getsizeof(value) + sum(estimate_bytes(v, seen, _depth + 1) for v in _members(value, _depth))


def _members(value: Any, depth: int) -> Iterable[Any]:
    """What a value refers to: items of containers, fields of dataclasses, attributes of objects."""
    if depth >= MAX_DEPTH or isinstance(value, (type, types.ModuleType)):
        return ()
    if isinstance(value, dict):
        return itertools.chain.from_iterable(value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    if dataclasses.is_dataclass(value):
        return (getattr(value, f.name) for f in dataclasses.fields(value))
    attributes = getattr(value, "__dict__", None)
    return attributes.values() if isinstance(attributes, dict) else ()


@dataclass(frozen=True)
class CacheEntry:
    """What one node produced: per-slot lists of values, and its UI data."""

    outputs: tuple[list[Any], ...]
    ui: dict[str, Any] | None
    size: int


class OutputCache:
    """An LRU map of cache key → CacheEntry bounded by total bytes; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, outputs: tuple[list[Any], ...], ui: dict[str, Any] | None) -> bool:
        """Store an entry; returns False when it alone exceeds the budget (then it is not kept)."""
        size = estimate_bytes(outputs) + estimate_bytes(ui)
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = CacheEntry(outputs, ui, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
