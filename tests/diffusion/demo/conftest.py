"""Each family's tiny model, built and written once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffusion.demo_models import FAMILIES, TinyModel, build_tiny, write_diffusers_folder, write_single_file


@dataclass
class Demo:
    tiny: TinyModel
    file: Path  # the single-file checkpoint (fp32)
    checkpoint: dict[str, torch.Tensor]  # its tensors
    folder: Path  # the diffusers folder


@pytest.fixture(scope="session", params=FAMILIES)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    family = request.param
    root = tmp_path_factory.mktemp(family)
    tiny = build_tiny(family)
    file = root / f"{family}.safetensors"
    write_single_file(tiny, file)
    return Demo(tiny, file, load_file(file), write_diffusers_folder(tiny, root / "diffusers"))


def assert_same_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Same keys, and bit-identical tensors under each."""
    assert sorted(got) == sorted(expected)
    different = [key for key in expected if not torch.equal(got[key], expected[key])]
    assert not different
