"""A tiny SD1 VAE, a CPU model manager and node contexts that can reach it."""

from __future__ import annotations

import pytest

from diffusion.demo_models import build_tiny
from diffusion.handles import VaeHandle
from engine.context import NodeContext, Services
from engine.devices import DevicePolicy, VramMode
from engine.folders import Folders
from engine.models import ModelManager


@pytest.fixture(scope="session")
def tiny_vae() -> VaeHandle:
    return VaeHandle(build_tiny("sd15").vae)


@pytest.fixture
def manager() -> ModelManager:
    return ModelManager(DevicePolicy.detect(VramMode.CPU))


@pytest.fixture
def ctx(folders: Folders, manager: ModelManager) -> NodeContext:
    """A context whose services hold the model manager (what VAE nodes need)."""
    services = Services()
    services.provide(manager)
    return NodeContext(node_id="1", class_type="Test", folders=folders, services=services)
