"""NodeDefinition: what the registry and executor know about a node type, whatever its style.

Native nodes (`engine.native`) and ComfyUI V1 classes (`engine.comfy_v1`) both implement this
interface; nothing else in the engine looks at node classes directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from engine.context import NodeContext
from engine.folders import Folders
from engine.spec import NodeSpec


class ExecutionBlocker:
    """An output value that stops consumers from running (silently when `message` is None)."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"ExecutionBlocker({self.message!r})"


@dataclass
class NodeResult:
    """A node call's outcome: output values, UI data for the client, and an optional subgraph.

    `expand` (a ComfyUI API-format graph) is reserved for node expansion; `values` may then hold
    `Link`s into that graph.
    """

    values: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None
    expand: dict[str, Any] | None = field(default=None)


class NodeDefinition(ABC):
    """A registered node type."""

    class_type: str
    #: where it came from: "built-in", a plugin module name, an entry point
    source: str = "built-in"
    #: cache keys include the node id (a node whose output differs per instance)
    not_idempotent: bool = False
    #: inputs whose built-in checks (range, options) the node's own validation replaces
    validated_inputs: frozenset[str] = frozenset()
    #: the node's validation wants the types of linked inputs (skips link type checks)
    wants_input_types: bool = False

    @abstractmethod
    def spec(self, folders: Folders) -> NodeSpec:
        """The current spec (option lists that come from folders are read now)."""

    def fingerprint(self, inputs: dict[str, Any], ctx: NodeContext) -> Any:
        """A value folded into the cache key (ComfyUI's IS_CHANGED); None when not defined.

        `inputs` holds the inputs present in the prompt, linked ones as None (not computed yet).
        """
        return None

    @property
    def has_validation(self) -> bool:
        """Whether the node checks its own inputs (`validate` does more than return None)."""
        return False

    def validate(self, inputs: dict[str, Any], input_types: dict[str, Any], ctx: NodeContext) -> str | None:
        """An error message when the node rejects its inputs (as for `fingerprint`), else None."""
        return None

    def lazy_inputs_needed(self, inputs: dict[str, Any], ctx: NodeContext) -> list[str]:
        """Names of lazy inputs the node needs before it can run (unevaluated ones are None)."""
        return []

    @abstractmethod
    def call(self, inputs: dict[str, Any], ctx: NodeContext) -> NodeResult:
        """Run the node once. With list input, `inputs` values are lists."""
