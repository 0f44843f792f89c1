"""A test node that keeps whatever it receives, and helpers to run prompts that use it."""

from __future__ import annotations

import types
from typing import Any

from engine import Node, NodeContext, node
from engine.runtime import Runtime

CAPTURED: dict[str, Any] = {}


@node(output_node=True, outputs=[], category="test")
class Capture(Node):
    """Keeps whatever it receives, for the test to look at."""

    value: Any

    def execute(self, ctx: NodeContext) -> None:
        CAPTURED[ctx.node_id] = self.value


def with_capture(runtime: Runtime) -> Runtime:
    """Register Capture in `runtime` and forget earlier captures."""
    pack = types.ModuleType("capture")
    pack.NODES = [Capture]
    runtime.registry.add_module(pack, source="test")
    CAPTURED.clear()
    return runtime


def run_captured(runtime: Runtime, prompt: dict) -> dict[str, Any]:
    """Run `prompt` (it must succeed); returns what its Capture nodes received, by node id."""
    CAPTURED.clear()
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    return dict(CAPTURED)
