"""Shared fixtures: an isolated runtime per test (its own base folder, no plugins) and node contexts."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # tests must pass with no hub at all

import pytest

from engine.context import NodeContext, Services
from engine.folders import Folders
from engine.runtime import Runtime, Settings

REPO = Path(__file__).resolve().parent.parent
COMFY_WORKFLOWS = REPO / "tests" / "data" / "comfyui-workflows"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    """A runtime with the built-in nodes only, rooted in a fresh temporary folder."""
    return Runtime(Settings(base_dir=tmp_path, load_plugins=False))


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path)


@pytest.fixture
def make_context(folders: Folders):
    """Build a NodeContext for calling a node's execute() directly."""

    def make(node_id: str = "1", class_type: str = "Test", **kwargs) -> NodeContext:
        return NodeContext(node_id=node_id, class_type=class_type, folders=folders, services=Services(), **kwargs)

    return make


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI-style models folder holding the demo models (`sdflow demo-models`)."""
    from diffusion.demo_models import write_demo_model_folders

    folder = tmp_path_factory.mktemp("demo") / "models"
    write_demo_model_folders(folder)
    return folder
