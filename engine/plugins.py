"""Loading node packs: built-in packages, `custom_nodes` folders and pip-installed entry points.

Every entry of a plugin folder that is a `.py` file or a package (a folder with `__init__.py`)
is imported as `custom_nodes.<name>`, in sorted order; `*.disabled`, hidden and `__pycache__`
entries are skipped. Any failure (import error, bad spec, name clash) is recorded in the
registry with its traceback and never stops start-up.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Iterable

from engine.folders import Folders
from engine.registry import LoadError, Registry

ENTRY_POINT_GROUP = "sdflow.nodes"
#: start-up hooks of the server: callables `(folders) -> str | None` (a message for the console)
SETUP_GROUP = "sdflow.setup"


def load_builtin_packages(registry: Registry, packages: Iterable[str]) -> None:
    """Import sdflow's own node packages by module name and register them as built-ins."""
    for name in packages:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            registry.record(LoadError(name, f"import failed: {exc}", traceback=traceback.format_exc()))
            continue
        registry.add_module(module, source=name, builtin=True)


def plugin_entries(directory: Path) -> list[Path]:
    """The importable entries of one plugin folder, sorted by name."""
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith((".", "_")) or path.name.endswith(".disabled"):
            continue
        if (path.is_file() and path.suffix == ".py") or (path / "__init__.py").is_file():
            entries.append(path)
    return entries


def load_plugin_directories(registry: Registry, directories: Iterable[Path]) -> None:
    """Import and register every plugin in the given folders."""
    for directory in directories:
        for path in plugin_entries(Path(directory)):
            module_name = _module_name(path)
            try:
                module = _import_path(module_name, path)
            except BaseException as exc:  # a plugin may even call sys.exit(); start-up goes on
                if isinstance(exc, KeyboardInterrupt):
                    raise
                sys.modules.pop(module_name, None)
                registry.record(LoadError(str(path), f"import failed: {exc!r}", traceback=traceback.format_exc()))
                continue
            registry.add_module(module, source=module_name)


def load_entry_points(registry: Registry, group: str = ENTRY_POINT_GROUP) -> None:
    """Register node packs that pip-installed distributions declare under `group`.

    An entry point names a module (read like a plugin) or a callable returning one.
    """
    for entry_point in importlib.metadata.entry_points(group=group):
        source = f"entry point {entry_point.name} ({entry_point.value})"
        try:
            target = entry_point.load()
            module = target if isinstance(target, ModuleType) else target()
        except Exception as exc:
            registry.record(LoadError(source, f"import failed: {exc!r}", traceback=traceback.format_exc()))
            continue
        registry.add_module(module, source=source)


def _module_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    name = "custom_nodes." + re.sub(r"\W", "_", stem)
    # two folders may hold plugins of the same name: keep both importable
    suffix = 2
    unique = name
    while unique in sys.modules and Path(getattr(sys.modules[unique], "__file__", "") or "").resolve() not in (
        path.resolve(),
        (path / "__init__.py").resolve(),
    ):
        unique = f"{name}_{suffix}"
        suffix += 1
    return unique


def _import_path(module_name: str, path: Path) -> ModuleType:
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(module_name, path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_setup_hooks(folders: Folders, group: str = SETUP_GROUP) -> list[str]:
    """Run the start-up hooks installed packages declare (e.g. writing demo models on a fresh
    installation); returns their messages. A failing hook is reported, never fatal."""
    messages = []
    for entry_point in importlib.metadata.entry_points(group=group):
        try:
            message = entry_point.load()(folders)
        except Exception as exc:
            message = f"warning: start-up step {entry_point.name} failed: {exc!r}"
        if message:
            messages.append(message)
    return messages
