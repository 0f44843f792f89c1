"""Runtime: one sdflow process's registry, folders, cache, event bus and executor, built from Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from engine.cache import DEFAULT_CACHE_BYTES, OutputCache
from engine.context import Services
from engine.devices import DevicePolicy, VramMode
from engine.events import EventBus
from engine.executor import Executor
from engine.folders import Folders
from engine.model_folders import ModelFolders
from engine.models import ModelManager
from engine.plugins import load_builtin_packages, load_entry_points, load_plugin_directories
from engine.registry import Registry


class Settings(BaseModel):
    """Start-up settings shared by the CLI and the server."""

    base_dir: Path = Field(default_factory=Path.cwd)
    input_dir: Path | None = None
    output_dir: Path | None = None
    temp_dir: Path | None = None
    #: where the server keeps its queue and history (default: BASE/user)
    user_dir: Path | None = None
    #: the models folder (default: BASE/models) and extra_model_paths.yaml files adding more folders
    models_dir: Path | None = None
    extra_model_paths: list[Path] = Field(default_factory=list)
    #: plugin folders; `<base_dir>/custom_nodes` is always searched first
    plugin_dirs: list[Path] = Field(default_factory=list)
    load_plugins: bool = True
    builtin_packages: tuple[str, ...] = ("nodes",)
    cache_bytes: int = DEFAULT_CACHE_BYTES
    #: memory mode (--highvram/--normalvram/--lowvram/--novram/--cpu); None picks normal VRAM or the CPU
    vram_mode: VramMode | None = None
    #: step previews while sampling: none, auto (TAESD when installed, else latent2rgb), latent2rgb, taesd
    preview_method: Literal["none", "auto", "latent2rgb", "taesd"] = "auto"


class Runtime:
    """Everything needed to validate and run prompts."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings = settings or Settings()
        models = ModelFolders((settings.models_dir or settings.base_dir / "models").resolve())
        yaml_plugin_dirs = [d for path in settings.extra_model_paths for d in models.read_yaml(path)]
        self.folders = Folders(settings.base_dir, settings.input_dir, settings.output_dir, settings.temp_dir, models)
        self.registry = Registry()
        load_builtin_packages(self.registry, settings.builtin_packages)
        if settings.load_plugins:
            load_plugin_directories(self.registry, [settings.base_dir / "custom_nodes", *settings.plugin_dirs, *yaml_plugin_dirs])
            load_entry_points(self.registry)
        self.bus = EventBus()
        self.services = Services()
        self.services.provide(settings)
        self.models = ModelManager(DevicePolicy.detect(settings.vram_mode))
        self.services.provide(self.models)
        self.executor = Executor(self.registry, self.folders, self.bus, OutputCache(settings.cache_bytes), self.services)

    @property
    def user_dir(self) -> Path:
        return (self.settings.user_dir or self.settings.base_dir / "user").resolve()

    def free(self, unload_models: bool = True, free_memory: bool = False) -> None:
        """Move models off the GPU; with `free_memory` also drop loaded models and cached outputs.

        Call it only while no prompt runs (the worker does so between prompts)."""
        if free_memory:
            self.executor.cache.clear()
        if unload_models or free_memory:
            self.models.free(unload=free_memory)
