"""torchvision imports beside the CPU torch, and the fix is applied only to that mismatch."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch

from diffusion import torchvision_compat


@pytest.mark.parametrize(("torch_version", "torchvision_version", "mismatched"), [
    ("2.13.0+cpu", "0.28.0", True),  # PyPI's CUDA torchvision beside the CPU wheel
    ("2.13.0+cpu", "0.28.0+cpu", False),  # the PyTorch index's CPU pair
    ("2.13.0", "0.28.0", False),  # a CUDA (or macOS) pair from PyPI
    ("2.13.0+cu130", "0.28.0+cu130", False),
])
def test_only_a_cpu_torch_beside_a_cuda_torchvision_is_mismatched(monkeypatch, torch_version, torchvision_version, mismatched) -> None:
    monkeypatch.setattr(torch, "__version__", torch_version)
    monkeypatch.setattr(metadata, "version", lambda name: torchvision_version)
    assert torchvision_compat.mismatched() is mismatched


def test_without_torchvision_nothing_is_mismatched(monkeypatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert torchvision_compat.mismatched() is False


def test_torchvision_and_the_libraries_that_import_it_load() -> None:
    import torchvision.transforms  # noqa: F401
    from transformers import CLIPTextModel  # noqa: F401
    from controlnet_aux import CannyDetector  # noqa: F401
