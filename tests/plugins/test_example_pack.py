"""The example plugin in custom_nodes/ loads in both styles and its nodes run."""

from __future__ import annotations

import pytest
from PIL import Image

from engine.runtime import Runtime, Settings
from tests.conftest import REPO


@pytest.fixture
def with_example(tmp_path) -> Runtime:
    return Runtime(Settings(base_dir=tmp_path, plugin_dirs=[REPO / "custom_nodes"]))


def test_example_pack_registers_both_styles(with_example: Runtime) -> None:
    registry = with_example.registry
    assert not registry.errors, registry.errors
    specs = registry.specs(with_example.folders)
    assert specs["ImageBrightnessContrast"].display_name == "Brightness / Contrast"
    assert specs["ImageBrightnessContrast"].python_module == "custom_nodes.example_pack"
    assert [i.name for i in specs["ImageGrid"].inputs] == ["images", "columns"]


def test_example_nodes_run(with_example: Runtime) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 3, "color": 0x808080}},
        "2": {"class_type": "ImageBrightnessContrast", "inputs": {"image": ["1", 0], "brightness": 0.25, "contrast": 2.0}},
        "3": {"class_type": "ImageGrid", "inputs": {"images": ["2", 0], "columns": 2}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    result = with_example.executor.execute(prompt)
    assert result.ok, result.failures
    (preview,) = result.ui["4"]["images"]
    with Image.open(with_example.folders.root("temp") / preview["subfolder"] / preview["filename"]) as grid:
        assert grid.size == (8, 4)  # 2 columns x 2 rows of 4x2 images
        expected = round(255 * ((128 / 255 - 0.5) * 2.0 + 0.5 + 0.25))
        assert abs(grid.getpixel((0, 0))[0] - expected) <= 1
        assert grid.getpixel((6, 3))[:3] == (0, 0, 0)  # the empty fourth cell
