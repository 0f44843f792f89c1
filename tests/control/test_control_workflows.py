"""The ControlNet example workflows and ComfyUI's controlnet_example.json run on the demo models.

The demo models folder gets the tiny demo ControlNets and T2I-Adapter (`write_demo_controlnets`)
and, for the diffusers layout, a ControlNet saved as a diffusers folder. Sampling is shortened as
in tests/examples/test_workflows.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from diffusion.demo_control import build_tiny_controlnet, write_controlnet, write_demo_controlnets
from engine.runtime import Runtime, Settings
from engine.workflow.convert import convert_workflow
from tests.conftest import COMFY_WORKFLOWS
from tests.examples.test_workflows import INPUTS, WORKFLOWS, shortened

NAMES = ("controlnet_canny", "controlnet_two", "controlnet_hires_fix")
DIFFUSERS_CONTROLNET = "sdflow-tiny-controlnet-sd15-diffusers/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Runtime:
    base = tmp_path_factory.mktemp("control-workflows")
    shutil.copytree(models_dir, base / "models")
    write_demo_controlnets(base / "models")
    write_controlnet(build_tiny_controlnet("sd15", seed=1), (base / "models" / "controlnet" / DIFFUSERS_CONTROLNET).parent, "diffusers_folder", torch.float16)
    return Runtime(Settings(base_dir=base, input_dir=INPUTS, load_plugins=False, preview_method="none"))


def saved_images(runtime: Runtime, prompt: dict) -> list[Image.Image]:
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    [images] = [ui["images"] for ui in result.ui.values()]
    out = []
    for image in images:
        with Image.open(runtime.folders.root("output") / image["subfolder"] / image["filename"]) as saved:
            out.append(saved.convert("RGB"))
    return out


def api_prompt(name: str) -> dict:
    return shortened(json.loads((WORKFLOWS / "api" / f"{name}.json").read_text()))


def assert_pictures(images: list[Image.Image], size: int) -> None:
    for image in images:
        assert image.size == (size, size) and any(low != high for low, high in image.getextrema())


@pytest.mark.parametrize("name", NAMES)
def test_workflow_runs(runtime: Runtime, name: str) -> None:
    assert_pictures(saved_images(runtime, api_prompt(name)), 192 if name == "controlnet_hires_fix" else 128)


def test_canny_controlnet_changes_the_image_and_reads_the_diffusers_layout(runtime: Runtime) -> None:
    prompt = api_prompt("controlnet_canny")
    controlled = saved_images(runtime, prompt)[0]
    prompt["13"]["inputs"]["strength"] = 0.0
    plain = saved_images(runtime, prompt)[0]
    prompt["13"]["inputs"]["strength"] = 1.0
    prompt["12"]["inputs"]["control_net_name"] = DIFFUSERS_CONTROLNET
    other = saved_images(runtime, prompt)[0]
    assert len({controlled.tobytes(), plain.tobytes(), other.tobytes()}) == 3


def test_comfyui_controlnet_example(runtime: Runtime) -> None:
    """ComfyUI's template (scribble ControlNet on Canny edges, its own VAE) with the demo files' names."""
    workflow = json.loads((COMFY_WORKFLOWS / "controlnet_example.json").read_text())
    prompt = convert_workflow(workflow, runtime.registry.specs(runtime.folders)).to_json()
    names = {"ckpt_name": "sdflow-tiny-sd15.safetensors", "vae_name": "sdflow-tiny-vae.safetensors",
             "control_net_name": "sdflow-tiny-controlnet-sd15.safetensors", "image": "example.png"}
    for node in prompt.values():
        node["inputs"].update({k: v for k, v in names.items() if isinstance(node["inputs"].get(k), str)})
    prompt = shortened(prompt)
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=128, height=128)
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    assert {node["class_type"] for node in prompt.values()} >= {"ControlNetLoader", "ControlNetApplyAdvanced", "Canny"}
    assert len(result.ui) == 2  # SaveImage of the picture, PreviewImage of the edges
