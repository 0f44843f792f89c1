"""Every workflow in workflows/ runs end to end on the demo models, in both formats.

workflows/NAME.json is the editor's (UI) format and workflows/api/NAME.json the API prompt the
editor sends for it; the test helper shortens sampling (steps, latent size) so the suite stays
fast, and runs the example inputs from workflows/inputs/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.runtime import Runtime, Settings
from engine.workflow.convert import convert_workflow
from engine.workflow.ui import is_ui_workflow
from tests.conftest import REPO

WORKFLOWS = REPO / "workflows"
INPUTS = WORKFLOWS / "inputs"
PAIRED = sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json"))
SHORT_STEPS = 3


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Runtime:
    base = tmp_path_factory.mktemp("workflows")
    shutil.copytree(models_dir, base / "models")
    return Runtime(Settings(base_dir=base, input_dir=INPUTS, load_plugins=False, preview_method="none"))


def shortened(prompt: dict) -> dict:
    """The same workflow with few steps and small empty latents and image scales (the graph is unchanged)."""
    prompt = json.loads(json.dumps(prompt))
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] in ("KSampler", "KSamplerAdvanced"):
            scale = SHORT_STEPS / inputs["steps"]
            inputs["steps"] = SHORT_STEPS
            for window in ("start_at_step", "end_at_step"):
                if window in inputs and inputs[window] < 10000:
                    inputs[window] = round(inputs[window] * scale)
        if node["class_type"] in ("EmptyLatentImage", "ImageScale"):
            inputs["width"], inputs["height"] = inputs["width"] // 4, inputs["height"] // 4
    return prompt


@pytest.mark.parametrize("name", PAIRED)
def test_ui_format_converts_to_the_api_format(runtime: Runtime, name: str) -> None:
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    assert is_ui_workflow(ui) and not is_ui_workflow(api)
    assert convert_workflow(ui, runtime.registry.specs(runtime.folders)).to_json() == api


@pytest.mark.parametrize("name", PAIRED)
def test_workflow_runs_on_the_demo_models(runtime: Runtime, name: str) -> None:
    prompt = shortened(json.loads((WORKFLOWS / "api" / f"{name}.json").read_text()))
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    [images] = [ui["images"] for ui in result.ui.values()]
    for image in images:
        with Image.open(runtime.folders.root("output") / image["subfolder"] / image["filename"]) as saved:
            pixels = saved.convert("RGB").getextrema()
            assert saved.size[0] >= 64 and any(low != high for low, high in pixels)  # a real picture, not a flat fill


def test_model_free_demo(runtime: Runtime) -> None:
    """The demo needs no model: a yellow square feathered onto blue, padded with grey, and its mask."""
    data = json.loads((WORKFLOWS / "model_free_demo.json").read_text())
    result = runtime.executor.execute(convert_workflow(data, runtime.registry.specs(runtime.folders)).to_json())
    names = [i["filename"] for i in result.ui["9"]["images"]]
    with Image.open(runtime.folders.root("output") / names[0]) as picture:
        assert picture.size == (320, 320)
        assert near(picture.getpixel((5, 5)), (127, 127, 127))  # 0.5 grey, truncated to 8 bits as ComfyUI saves it
        assert near(picture.getpixel((60, 60)), (0x33, 0x66, 0xCC))
        assert near(picture.getpixel((160, 160)), (0xFF, 0xCC, 0x00))
    with Image.open(runtime.folders.root("output") / names[1]) as mask:
        assert mask.convert("L").getpixel((5, 5)) == 255 and mask.convert("L").getpixel((160, 160)) == 0


def near(pixel: tuple[int, ...], rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 1 for a, b in zip(pixel, rgb))


def test_sdflow_run_txt2img_after_demo_models(tmp_path: Path, capsys) -> None:
    """The documented first run: demo models into models/checkpoints, then the txt2img workflow."""
    assert main(["demo-models", str(tmp_path / "models" / "checkpoints")]) == 0
    code = main(["run", str(WORKFLOWS / "txt2img.json"), "--base-dir", str(tmp_path), "--no-plugins", "--preview-method", "none",
                 "--set", f"KSampler.steps={SHORT_STEPS}", "--set", "4.width=128", "--set", "4.height=128"])
    out = capsys.readouterr().out
    assert code == 0, out
    with Image.open(tmp_path / "output" / "txt2img_00001_.png") as image:
        assert image.size == (128, 128)
