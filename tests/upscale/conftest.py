"""The tiny ESRGAN upscaler written to disk, and a CPU model manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusion.demo_upscale import write_tiny_upscaler
from engine.devices import DevicePolicy, VramMode
from engine.models import ModelManager

DEMO_NAME = "sdflow-tiny-esrgan.safetensors"


@pytest.fixture(scope="session")
def upscaler_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_upscaler(tmp_path_factory.mktemp("upscaler") / DEMO_NAME)


@pytest.fixture
def manager() -> ModelManager:
    return ModelManager(DevicePolicy.detect(VramMode.CPU))
