"""Primitive value nodes: a widget whose value feeds other nodes' inputs (ComfyUI's `Primitive*`)."""

from __future__ import annotations

import sys

from engine import Input, Node, NodeContext, Output, node

CATEGORY = "utils/primitive"


@node(display_name="Int", category=CATEGORY, outputs=[Output("INT")])
class PrimitiveInt(Node):
    """An integer value."""

    value: int = Input(0, min=-sys.maxsize, max=sys.maxsize, control_after_generate=True)

    def execute(self, ctx: NodeContext) -> int:
        return self.value


@node(display_name="Float", category=CATEGORY, outputs=[Output("FLOAT")])
class PrimitiveFloat(Node):
    """A floating-point value."""

    value: float = Input(0.0, min=-sys.maxsize, max=sys.maxsize)

    def execute(self, ctx: NodeContext) -> float:
        return self.value


@node(display_name="String", category=CATEGORY, outputs=[Output("STRING")])
class PrimitiveString(Node):
    """A single-line text value."""

    value: str = ""

    def execute(self, ctx: NodeContext) -> str:
        return self.value


@node(display_name="String (Multiline)", category=CATEGORY, outputs=[Output("STRING")])
class PrimitiveStringMultiline(Node):
    """A multi-line text value."""

    value: str = Input("", multiline=True)

    def execute(self, ctx: NodeContext) -> str:
        return self.value


@node(display_name="Boolean", category=CATEGORY, outputs=[Output("BOOLEAN")])
class PrimitiveBoolean(Node):
    """A true/false value."""

    value: bool = False

    def execute(self, ctx: NodeContext) -> bool:
        return self.value
