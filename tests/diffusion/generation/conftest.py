"""A runtime on fp32 single files of the tiny families, and diffusers pipelines on the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import EulerDiscreteScheduler

from diffusion.demo_models import write_single_file
from engine.runtime import Runtime, Settings
from tests.capture import run_captured, with_capture


@pytest.fixture(scope="session")
def fp32_models(tmp_path_factory: pytest.TempPathFactory, written) -> Path:
    """A models folder with every family's tiny checkpoint in fp32 (the same weights `written` holds)."""
    folder = tmp_path_factory.mktemp("fp32") / "models"
    for family, item in written.items():
        write_single_file(item.tiny, folder / "checkpoints" / f"{family}.safetensors")
    return folder


@pytest.fixture
def runtime(tmp_path: Path, fp32_models: Path) -> Runtime:
    return with_capture(Runtime(Settings(base_dir=tmp_path, models_dir=fp32_models, load_plugins=False, preview_method="none")))


def run(runtime: Runtime, prompt: dict) -> dict[str, Any]:
    return run_captured(runtime, prompt)


def euler_trailing(prediction: str = "epsilon") -> EulerDiscreteScheduler:
    """diffusers' Euler on integer timesteps 999, 999-1000/n, ...: sdflow's euler + "simple"."""
    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", prediction_type=prediction,
        steps_offset=1,
    )


def comfy_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
