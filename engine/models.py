"""The model manager: loads each model file once and moves torch modules between devices.

It knows nothing of what the modules are. Loaded objects are cached by a key (normally the
file's path, size and modification time): a strong LRU bounded by RAM keeps recent ones, and a
weak map finds any object still referenced elsewhere, so one file is never in memory twice.
`use(...)` makes modules ready on the compute device according to the memory mode, evicting
the least recently used ones when the VRAM budget would be exceeded.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, TypeVar

import torch

from engine.cache import estimate_bytes
from engine.devices import DevicePolicy, VramMode

T = TypeVar("T")

DEFAULT_RAM_BUDGET = 16 * 1024**3


def file_key(path: Path, *extra: Hashable) -> tuple[Hashable, ...]:
    """A cache key that changes when the file is replaced: real path, size, mtime (+ extras)."""
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, *extra)


@dataclass
class _Placed:
    """A module the manager moves (weakly held), its size and whether it sits on the compute device."""

    ref: weakref.ref[torch.nn.Module]
    size: int
    on_compute: bool = False


class ModelManager:
    """Load-once cache of models and their placement on devices."""

    def __init__(self, policy: DevicePolicy, vram_budget: int | None = None, ram_budget: int = DEFAULT_RAM_BUDGET) -> None:
        self.policy = policy
        self.vram_budget = policy.vram_budget() if vram_budget is None else vram_budget
        self.ram_budget = ram_budget
        self._lock = threading.RLock()
        self._recent: OrderedDict[Hashable, Any] = OrderedDict()
        self._alive: weakref.WeakValueDictionary[Hashable, Any] = weakref.WeakValueDictionary()
        #: id(module) → placement, most recently used last
        self._placed: OrderedDict[int, _Placed] = OrderedDict()
        #: id(module) → how many `use` blocks are running with it (nested uses, e.g. a ControlNet inside the UNet's)
        self._in_use: Counter[int] = Counter()
        self.loads = 0  # how many times a loader actually ran

    # ---- loading ------------------------------------------------------------------------

    def load(self, key: Hashable, loader: Callable[[], T]) -> T:
        """The object loaded for `key` before, or `loader()` called once now."""
        with self._lock:
            found = self._recent.get(key)
            if found is None:
                found = self._alive.get(key)
            if found is None:
                found = loader()
                self.loads += 1
                try:
                    self._alive[key] = found
                except TypeError:  # not weakly referenceable (e.g. a tuple): the LRU alone keeps it
                    pass
            self._recent[key] = found
            self._recent.move_to_end(key)
            self._trim_recent()
            return found

    def _trim_recent(self) -> None:
        total = sum(estimate_bytes(v) for v in self._recent.values())
        while len(self._recent) > 1 and total > self.ram_budget:
            _, dropped = self._recent.popitem(last=False)
            total -= estimate_bytes(dropped)

    # ---- placement ------------------------------------------------------------------------

    @contextmanager
    def use(self, *modules: torch.nn.Module) -> Iterator[torch.device]:
        """Have `modules` ready for computing inside the block; yields the compute device."""
        with self._lock:
            if self.policy.mode is VramMode.NONE:
                for module in modules:
                    self._stream_from_ram(module)
            else:
                self._place(modules)
            self._in_use.update(id(m) for m in modules)
        try:
            yield self.policy.compute
        finally:
            with self._lock:
                self._in_use.subtract(id(m) for m in modules)
                if self.policy.mode is VramMode.LOW:
                    for module in modules:
                        if self._in_use[id(module)] <= 0:
                            self._offload(id(module))

    def _place(self, modules: tuple[torch.nn.Module, ...]) -> None:
        self._forget_collected()
        wanted = {id(m): (m, self._track(m)) for m in modules}
        needed = sum(p.size for _, p in wanted.values() if not p.on_compute)
        if self.policy.mode is not VramMode.HIGH:
            for key in list(self._placed):
                if needed + self.bytes_on_compute() <= self.vram_budget:
                    break
                if key not in wanted and self._in_use[key] <= 0:  # never a module a running block uses
                    self._offload(key)
        for key, (module, placed) in wanted.items():
            if not placed.on_compute:
                module.to(self.policy.compute)
                placed.on_compute = True
            self._placed.move_to_end(key)

    def _track(self, module: torch.nn.Module) -> _Placed:
        placed = self._placed.get(id(module))
        if placed is None or placed.ref() is not module:
            on_compute = next(module.parameters(), torch.empty(0)).device == self.policy.compute
            placed = self._placed[id(module)] = _Placed(weakref.ref(module), estimate_bytes(module), on_compute)
        return placed

    def _offload(self, key: int) -> None:
        placed = self._placed.get(key)
        module = placed.ref() if placed is not None else None
        if module is None:
            self._placed.pop(key, None)
            return
        if placed.on_compute and self.policy.offload != self.policy.compute:
            module.to(self.policy.offload)
        placed.on_compute = self.policy.offload == self.policy.compute

    def _forget_collected(self) -> None:
        for key in [k for k, p in self._placed.items() if p.ref() is None]:
            del self._placed[key]

    def _stream_from_ram(self, module: torch.nn.Module) -> None:
        """novram: weights stay in RAM and each layer visits the compute device when it runs."""
        if getattr(module, "_sdflow_streaming", False) or not self.policy.on_gpu:
            return
        from accelerate import cpu_offload

        cpu_offload(module, execution_device=self.policy.compute)
        module._sdflow_streaming = True  # type: ignore[attr-defined]

    def bytes_on_compute(self) -> int:
        """Bytes of tracked (still existing) modules currently on the compute device."""
        return sum(p.size for p in self._placed.values() if p.on_compute and p.ref() is not None)

    # ---- freeing ------------------------------------------------------------------------

    def free(self, unload: bool = True) -> None:
        """Move every model off the GPU; with `unload`, also forget loaded models (RAM is returned
        once nothing else references them)."""
        with self._lock:
            for key in list(self._placed):
                self._offload(key)
            if unload:
                self._recent.clear()
                self._placed.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
