"""Every workflow in workflows/ runs end to end and saves what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.workflow.convert import convert_workflow
from engine.workflow.ui import is_ui_workflow
from tests.conftest import REPO

WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_workflow_runs(path: Path, runtime) -> None:
    data = json.loads(path.read_text())
    prompt = convert_workflow(data, runtime.registry.specs(runtime.folders)).to_json() if is_ui_workflow(data) else data
    result = runtime.executor.execute(prompt, extra_data={"extra_pnginfo": {"workflow": data}})
    assert result.ok, result.failures
    images = [i for ui in result.ui.values() for i in ui.get("images", [])]
    assert images
    for image in images:
        with Image.open(runtime.folders.root(image["type"]) / image["subfolder"] / image["filename"]) as saved:
            assert saved.size[0] > 0


def near(pixel: tuple[int, ...], rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 1 for a, b in zip(pixel, rgb))


def test_demo_workflow_pixels(runtime) -> None:
    """The demo: yellow square feathered onto blue, padded by 32 px of grey; then its outpaint mask."""
    data = json.loads((REPO / "workflows" / "model_free_demo.json").read_text())
    result = runtime.executor.execute(convert_workflow(data, runtime.registry.specs(runtime.folders)).to_json())
    names = [i["filename"] for i in result.ui["9"]["images"]]
    with Image.open(runtime.folders.root("output") / names[0]) as picture:
        assert picture.size == (320, 320)
        assert near(picture.getpixel((5, 5)), (127, 127, 127))  # 0.5 grey, truncated to 8 bits as ComfyUI saves it
        assert near(picture.getpixel((60, 60)), (0x33, 0x66, 0xCC))
        assert near(picture.getpixel((160, 160)), (0xFF, 0xCC, 0x00))
    with Image.open(runtime.folders.root("output") / names[1]) as mask:
        assert mask.convert("L").getpixel((5, 5)) == 255 and mask.convert("L").getpixel((160, 160)) == 0
