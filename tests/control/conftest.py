"""Tiny models with ControlNets and T2I-Adapters in every file layout, and a runtime over them.

The models folder holds fp32 single-file checkpoints of the tiny SD1.5, SD1.5-inpainting and SDXL
models and, under controlnet/, the control files a user could have: ControlNets in the original
layout, as a diffusers folder and as a lone file with diffusers names, a diff ControlNet, and
T2I-Adapters with TencentARC's and diffusers' names. `Tiny` keeps the very modules written, so
tests can hand the same weights to diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from diffusion.demo_control import build_tiny_controlnet, build_tiny_t2i_adapter, write_controlnet, write_t2i_adapter
from diffusion.demo_models import TinyModel, build_tiny, write_single_file
from engine.runtime import Runtime, Settings
from tests.capture import with_capture

FAMILIES = ("sd15", "sd15-inpaint", "sdxl")
HINT = "hint.png"
HINT_SIZE = 64


@dataclass
class Tiny:
    """The modules behind the written files: models by family, control modules by file name."""

    models: dict[str, TinyModel]
    controls: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tiny]:
    root = tmp_path_factory.mktemp("control") / "models"
    tiny = Tiny({family: build_tiny(family) for family in FAMILIES})
    for family, model in tiny.models.items():
        write_single_file(model, root / "checkpoints" / f"{family}.safetensors")
    folder = root / "controlnet"
    sd15 = tiny.models["sd15"].unet
    for name, family, seed in (("cn-sd15", "sd15", 0), ("cn2-sd15", "sd15", 1), ("cn-sdxl", "sdxl", 0)):
        tiny.controls[name] = build_tiny_controlnet(family, seed, unet=tiny.models[family].unet)
        write_controlnet(tiny.controls[name], folder / f"{name}.safetensors")
    write_controlnet(tiny.controls["cn-sd15"], folder / "cn-sd15-diffusers", "diffusers_folder")
    write_controlnet(tiny.controls["cn-sd15"], folder / "cn-sd15-diffusers-names.safetensors", "diffusers_file")
    write_controlnet(tiny.controls["cn-sd15"], folder / "cn-sd15-diff.safetensors", diff_from=sd15)
    for name, family in (("t2i-sd15", "sd15"), ("t2i-sdxl", "sdxl")):
        tiny.controls[name] = build_tiny_t2i_adapter(family)
        write_t2i_adapter(tiny.controls[name], folder / f"{name}.safetensors")
    write_t2i_adapter(tiny.controls["t2i-sd15"], folder / "t2i-sd15-diffusers-names.safetensors", original_keys=False)
    return root, tiny


@pytest.fixture
def tiny(tiny_models: tuple[Path, Tiny]) -> Tiny:
    return tiny_models[1]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An input folder with a random RGB hint image."""
    folder = tmp_path_factory.mktemp("inputs")
    pixels = np.random.default_rng(0).integers(0, 256, (HINT_SIZE, HINT_SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / HINT)
    return folder


@pytest.fixture
def runtime(tmp_path: Path, tiny_models: tuple[Path, Tiny], inputs: Path) -> Runtime:
    settings = Settings(base_dir=tmp_path, models_dir=tiny_models[0], input_dir=inputs, load_plugins=False, preview_method="none")
    return with_capture(Runtime(settings))
