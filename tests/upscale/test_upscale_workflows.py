"""The upscaling workflows (and ComfyUI's esrgan_example) run on the demo models plus the tiny upscaler.

tests/examples runs every workflow once the demo models include the upscaler; until then, and for
ComfyUI's own template, this copies the demo models and writes the upscaler beside them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from diffusion.demo_upscale import SCALE, write_tiny_upscaler
from engine.runtime import Runtime, Settings
from engine.workflow.convert import convert_workflow
from tests.conftest import COMFY_WORKFLOWS
from tests.examples.test_workflows import INPUTS, WORKFLOWS, shortened
from tests.upscale.conftest import DEMO_NAME

CHECKPOINT = "sdflow-tiny-sd15.safetensors"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Runtime:
    base = tmp_path_factory.mktemp("upscale-workflows")
    shutil.copytree(models_dir, base / "models")
    write_tiny_upscaler(base / "models" / "upscale_models" / DEMO_NAME)
    return Runtime(Settings(base_dir=base, input_dir=INPUTS, load_plugins=False, preview_method="none"))


def saved_sizes(runtime: Runtime, prompt: dict) -> list[tuple[int, int]]:
    """Run a prompt; the sizes of the pictures it saved (each checked to be a picture, not a flat fill)."""
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    sizes = []
    for ui in result.ui.values():
        for entry in ui["images"]:
            with Image.open(runtime.folders.root(entry["type"]) / entry["subfolder"] / entry["filename"]) as saved:
                assert any(low != high for low, high in saved.convert("RGB").getextrema())
                sizes.append(saved.size)
    return sizes


def test_esrgan_upscale(runtime: Runtime) -> None:
    prompt = shortened(json.loads((WORKFLOWS / "api" / "esrgan_upscale.json").read_text()))
    side = prompt["4"]["inputs"]["width"] * SCALE
    assert saved_sizes(runtime, prompt) == [(side, side)]


def test_hires_fix_with_an_upscale_model(runtime: Runtime) -> None:
    prompt = shortened(json.loads((WORKFLOWS / "api" / "hires_fix_model.json").read_text()))
    target = prompt["9"]["inputs"]
    target["width"], target["height"] = target["width"] // 4, target["height"] // 4  # as small as the shortened first pass
    assert saved_sizes(runtime, prompt) == [(target["width"], target["height"])]


def test_comfyuis_esrgan_example(runtime: Runtime) -> None:
    workflow = json.loads((COMFY_WORKFLOWS / "esrgan_example.json").read_text())
    prompt = shortened(convert_workflow(workflow, runtime.registry.specs(runtime.folders)).to_json())
    for entry in prompt.values():
        inputs = entry["inputs"]
        if "ckpt_name" in inputs:
            inputs["ckpt_name"] = CHECKPOINT
        if "model_name" in inputs:
            inputs["model_name"] = DEMO_NAME
    side = prompt["5"]["inputs"]["width"]
    assert sorted(saved_sizes(runtime, prompt)) == [(side, side), (side * SCALE, side * SCALE)]  # previewed, then saved upscaled
