"""The model manager: load once, RAM LRU, VRAM placement per memory mode, freeing."""

from __future__ import annotations

import gc
import os

import pytest
import torch

from engine.devices import DevicePolicy, VramMode
from engine.cache import estimate_bytes
from engine.models import ModelManager, file_key


def linear(size: int) -> torch.nn.Module:
    return torch.nn.Linear(size, size, bias=False)  # size*size*4 bytes


def test_file_key_changes_when_the_file_is_replaced(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"one")
    first = file_key(path)
    os.utime(path, ns=(1, 1))
    assert file_key(path) != first
    path.write_bytes(b"three")
    assert file_key(path)[1] == 5


def test_load_runs_the_loader_once_per_key() -> None:
    manager = ModelManager(DevicePolicy.detect(VramMode.CPU))
    calls = []
    load = lambda: calls.append(1) or linear(4)  # noqa: E731
    first = manager.load("a", load)
    assert manager.load("a", load) is first
    assert manager.load("b", load) is not first
    assert (len(calls), manager.loads) == (2, 2)


def test_ram_budget_keeps_recent_models_and_weakly_finds_used_ones() -> None:
    size = estimate_bytes(linear(32))
    manager = ModelManager(DevicePolicy.detect(VramMode.CPU), ram_budget=2 * size)
    kept_outside = manager.load("a", lambda: linear(32))
    manager.load("b", lambda: linear(32))
    manager.load("c", lambda: linear(32))  # "a" leaves the LRU...
    assert manager.load("a", lambda: pytest.fail("still referenced: must be reused")) is kept_outside
    manager.load("d", lambda: linear(32))
    manager.load("e", lambda: linear(32))
    gc.collect()
    loads = manager.loads
    manager.load("b", lambda: linear(32))  # ...while an unreferenced, evicted one is loaded again
    assert manager.loads == loads + 1


def test_ram_budget_counts_modules_inside_tuples_and_dicts() -> None:
    size = estimate_bytes(linear(32))
    manager = ModelManager(DevicePolicy.detect(VramMode.CPU), ram_budget=int(2.5 * size))
    manager.load("a", lambda: ("detection", linear(32)))
    manager.load("b", lambda: {"encoders": {"clip_l": linear(32)}})
    manager.load("c", lambda: ("detection", linear(32)))  # over budget: "a" leaves the LRU
    gc.collect()
    loads = manager.loads
    manager.load("a", lambda: ("detection", linear(32)))
    assert manager.loads == loads + 1


def gpu_like(mode: VramMode) -> DevicePolicy:
    """CPU computes, and "offloading" moves weights to the meta device, so tests can see where a
    module was put (its data is gone afterwards, which these tests never need)."""
    return DevicePolicy(mode, torch.device("cpu"), torch.device("meta"))


def on_compute(module: torch.nn.Module) -> bool:
    return next(module.parameters()).device.type == "cpu"


def test_normal_mode_evicts_the_least_recently_used_to_fit_the_budget() -> None:
    a, b, c = linear(16), linear(16), linear(16)
    manager = ModelManager(gpu_like(VramMode.NORMAL), vram_budget=2 * estimate_bytes(a))
    with manager.use(a):
        pass
    with manager.use(b):
        pass
    with manager.use(a):  # a is now the most recently used
        pass
    with manager.use(c):
        assert on_compute(c) and on_compute(a) and not on_compute(b)
    assert manager.bytes_on_compute() == 2 * estimate_bytes(a)


def test_modules_used_together_are_never_evicted_for_each_other() -> None:
    a, b = linear(16), linear(16)
    manager = ModelManager(gpu_like(VramMode.NORMAL), vram_budget=estimate_bytes(a))
    with manager.use(a, b):  # over budget, but both are needed at once
        assert on_compute(a) and on_compute(b)


@pytest.mark.parametrize("mode", [VramMode.NORMAL, VramMode.LOW])
def test_a_module_of_a_running_block_is_never_evicted_by_a_nested_use(mode: VramMode) -> None:
    """A ControlNet placed while the UNet's block runs must not push the UNet off the device."""
    unet, controlnet = linear(16), linear(16)
    manager = ModelManager(gpu_like(mode), vram_budget=estimate_bytes(unet))
    with manager.use(unet):
        with manager.use(controlnet):
            assert on_compute(unet) and on_compute(controlnet)
        with manager.use(unet):  # nested use of the same module: leaving it keeps the outer block's
            pass
        assert on_compute(unet)
    assert on_compute(unet) is (mode is VramMode.NORMAL)


def test_high_mode_never_evicts() -> None:
    a, b = linear(16), linear(16)
    manager = ModelManager(gpu_like(VramMode.HIGH), vram_budget=estimate_bytes(a))
    for module in (a, b):
        with manager.use(module):
            pass
    assert on_compute(a) and on_compute(b)


def test_low_mode_offloads_after_use() -> None:
    a = linear(16)
    manager = ModelManager(gpu_like(VramMode.LOW), vram_budget=10**9)
    with manager.use(a) as device:
        assert device.type == "cpu" and on_compute(a)
    assert not on_compute(a)


def test_free_moves_everything_off_and_forgets_loaded_models() -> None:
    manager = ModelManager(gpu_like(VramMode.NORMAL), vram_budget=10**9)
    model = manager.load("m", lambda: linear(8))
    with manager.use(model):
        pass
    manager.free(unload=True)
    assert not on_compute(model) and manager.bytes_on_compute() == 0
    del model
    gc.collect()
    manager.load("m", lambda: linear(8))
    assert manager.loads == 2


def test_collected_modules_are_forgotten_by_placement() -> None:
    manager = ModelManager(gpu_like(VramMode.NORMAL), vram_budget=10**9)
    with manager.use(linear(8)):
        pass
    gc.collect()
    assert manager.bytes_on_compute() == 0


def test_cpu_policy_uses_float32_and_an_unlimited_budget() -> None:
    policy = DevicePolicy.detect(VramMode.CPU)
    assert policy.compute.type == "cpu" and not policy.on_gpu
    assert policy.dtype((torch.float16, torch.bfloat16)) is torch.float32
    assert ModelManager(policy).vram_budget > 10**15
