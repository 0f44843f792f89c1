"""UpscaleModelLoader and ImageUpscaleWithModel run through the engine, as ComfyUI describes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from diffusion.upscale import load_upscale_model
from engine import NodeInputError
from engine.runtime import Runtime
from nodes.upscale import ImageUpscaleWithModel
from tests.capture import CAPTURED, with_capture
from tests.conftest import REPO
from tests.upscale.conftest import DEMO_NAME


@pytest.fixture
def upscaling(runtime: Runtime, upscaler_file: Path) -> Runtime:
    """A fresh runtime with the Capture node and the tiny upscaler in its upscale_models folder."""
    folder = runtime.folders.models.root / "upscale_models"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(upscaler_file, folder / DEMO_NAME)
    return with_capture(runtime)


def upscale_prompt(model_name: str = DEMO_NAME, width: int = 40, height: int = 24) -> dict:
    return {
        "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model_name}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": 2, "color": 0x3366CC}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
        "4": {"class_type": "Capture", "inputs": {"value": ["3", 0]}},
    }


def test_object_info_is_comfyuis(upscaling) -> None:
    comfy = json.loads((REPO / "tests" / "data" / "comfyui_sd_object_info.json").read_text())
    info = upscaling.registry.object_info(upscaling.folders)
    for name in ("UpscaleModelLoader", "ImageUpscaleWithModel"):
        ours, expected = ({k: v for k, v in entry[name].items() if k not in ("description", "python_module")} for entry in (info, comfy))
        if name == "UpscaleModelLoader":
            expected["input"]["required"]["model_name"] = [[DEMO_NAME], {"tooltip": "The upscale model file to load."}]
        assert ours == expected


def test_upscale_nodes_run_with_progress(upscaling) -> None:
    events = []
    upscaling.executor.bus.subscribe(events.append)
    result = upscaling.executor.execute(upscale_prompt())
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    upscaled = CAPTURED["4"]
    assert upscaled.shape == (2, 48, 80, 3)
    colour = torch.tensor([0x33, 0x66, 0xCC]) / 255
    assert (upscaled.mean(dim=(0, 1, 2)) - colour).abs().max() < 0.1  # roughly the same picture, twice the size
    progress = [e.data for e in events if e.type == "progress" and e.data["node"] == "3"]
    assert [(p["value"], p["max"]) for p in progress] == [(1, 2), (2, 2)]  # one tile per image


def test_a_file_that_is_no_upscale_model_names_the_input(upscaling) -> None:
    (upscaling.folders.models.root / "upscale_models" / "notes.safetensors").write_bytes(b"not a model")
    failure = upscaling.executor.execute(upscale_prompt("notes.safetensors")).failures["1"]
    assert "input 'model_name': notes.safetensors: not a readable safetensors file" in failure.message


def test_too_few_image_channels_name_the_input(upscaler_file, manager, make_context) -> None:
    ctx = make_context()
    ctx.services.provide(manager)
    model = load_upscale_model(upscaler_file, manager)
    with pytest.raises(NodeInputError) as error:
        ImageUpscaleWithModel(upscale_model=model, image=torch.rand(1, 8, 8, 1)).execute(ctx)
    assert error.value.input_name == "image" and "has 1 channels but the upscale model takes 3" in str(error.value)
