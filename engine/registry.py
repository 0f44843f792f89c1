"""The node registry: every node type, built-in or plugin, and every problem met while loading."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from engine.comfy_v1 import ComfyV1Definition, is_v1_class
from engine.definition import NodeDefinition
from engine.folders import Folders
from engine.native import Node
from engine.spec import NodeSpec


@dataclass(frozen=True)
class LoadError:
    """A plugin or node that could not be loaded, with the reason and traceback."""

    source: str
    message: str
    node: str | None = None
    traceback: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "node": self.node, "message": self.message, "traceback": self.traceback}


class Registry:
    """Node types by class_type. Built-in nodes are never replaced; clashes are reported."""

    def __init__(self) -> None:
        self._definitions: dict[str, NodeDefinition] = {}
        self._builtin: set[str] = set()
        self.errors: list[LoadError] = []
        #: pack name (its module's last name part) → folder of editor extensions (ComfyUI's WEB_DIRECTORY)
        self.web_directories: dict[str, Path] = {}

    def __contains__(self, class_type: object) -> bool:
        return class_type in self._definitions

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def get(self, class_type: str) -> NodeDefinition | None:
        return self._definitions.get(class_type)

    def record(self, error: LoadError) -> None:
        """Remember a loading problem once (shown by `sdflow nodes --errors` and the server)."""
        if error not in self.errors:
            self.errors.append(error)

    def add(self, definition: NodeDefinition, builtin: bool = False) -> bool:
        """Register a definition; returns False (and records why) when the name is taken."""
        name = definition.class_type
        existing = self._definitions.get(name)
        if existing is not None:
            owner = "a built-in node" if name in self._builtin else f"a node from {existing.source}"
            self.record(LoadError(definition.source, f"node {name!r} clashes with {owner}; kept the first", node=name))
            return False
        self._definitions[name] = definition
        if builtin:
            self._builtin.add(name)
        return True

    def add_module(self, module: ModuleType, source: str, builtin: bool = False) -> list[str]:
        """Register the nodes a module exports; a bad node is recorded and skipped.

        Native packs export `NODES = [NodeClass, ...]`; ComfyUI packs export
        `NODE_CLASS_MAPPINGS` (plus `NODE_DISPLAY_NAME_MAPPINGS` and `WEB_DIRECTORY`).
        """
        web = getattr(module, "WEB_DIRECTORY", None)
        if web and getattr(module, "__file__", None):  # recorded first: editor-only packs have no nodes
            self.web_directories[module.__name__.rsplit(".", 1)[-1]] = (Path(module.__file__).parent / web).resolve()
        candidates: list[tuple[str | None, Any]] = [(None, cls) for cls in getattr(module, "NODES", [])]
        candidates += list((getattr(module, "NODE_CLASS_MAPPINGS", None) or {}).items())
        if not candidates:
            self.record(LoadError(source, "module exports no nodes (NODES or NODE_CLASS_MAPPINGS)"))
            return []
        display_names = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
        added = []
        for class_type, cls in candidates:
            try:
                definition = to_definition(cls, class_type, display_names.get(class_type), source)
            except Exception as exc:
                self.record(LoadError(source, f"invalid node: {exc}", node=class_type, traceback=traceback.format_exc()))
                continue
            if self.add(definition, builtin=builtin):
                added.append(definition.class_type)
        return added

    def specs(self, folders: Folders) -> dict[str, NodeSpec]:
        """Current specs of all nodes; a node whose spec fails is skipped and reported."""
        specs = {}
        for name, definition in self._definitions.items():
            try:
                specs[name] = definition.spec(folders)
            except Exception as exc:
                self.record(LoadError(definition.source, f"spec failed: {exc}", node=name, traceback=traceback.format_exc()))
        return specs

    def object_info(self, folders: Folders) -> dict[str, Any]:
        """ComfyUI's `/object_info` for every node."""
        return {name: spec.to_object_info() for name, spec in self.specs(folders).items()}


def to_definition(cls: Any, class_type: str | None = None, display_name: str | None = None, source: str = "built-in") -> NodeDefinition:
    """A NodeDefinition for a native `@node` class or a ComfyUI V1 class."""
    if isinstance(cls, type) and issubclass(cls, Node):
        definition = cls.__dict__.get("definition")
        if definition is None:
            raise TypeError(f"{cls.__name__} is a Node but lacks the @node decorator")
        if class_type not in (None, definition.class_type):
            raise TypeError(f"mapping key {class_type!r} differs from the node's class_type {definition.class_type!r}")
        return definition
    if is_v1_class(cls):
        if class_type is None:
            raise TypeError(f"{cls.__name__}: ComfyUI classes are registered through NODE_CLASS_MAPPINGS")
        return ComfyV1Definition(class_type, cls, display_name, source)
    raise TypeError(f"{cls!r} is neither an @node class nor a ComfyUI node class")
