"""Small test nodes (native and ComfyUI V1) and helpers to run prompts on a bare registry.

Nothing here depends on sdflow's built-in nodes: every test registers exactly the node types it
uses into a fresh `Registry`. Every node appends `(class_type, node_id, inputs)` to `CALLS`, so
tests can assert how often and with what each node ran.
"""

from __future__ import annotations

import threading
import types
from typing import Any, Iterable, Literal

from engine.cache import OutputCache
from engine.context import NodeContext, Services
from engine.definition import ExecutionBlocker, NodeResult
from engine.events import Event, EventBus
from engine.executor import Executor
from engine.folders import Folders
from engine.native import Input, Node, Output, node
from engine.registry import Registry

#: every node call: (class_type, node_id, inputs)
CALLS: list[tuple[str, str, dict[str, Any]]] = []


def record(class_type: str, node_id: str, **inputs: Any) -> None:
    CALLS.append((class_type, node_id, inputs))


def calls(class_type: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    return [c for c in CALLS if class_type is None or c[0] == class_type]


def call_count(class_type: str) -> int:
    return len(calls(class_type))


def called_ids(class_type: str | None = None) -> list[str]:
    return [c[1] for c in calls(class_type)]


# ---- native nodes ------------------------------------------------------------------------------


@node(display_name="Constant", category="test", outputs=[Output("INT", "value")])
class Const(Node):
    """A constant integer."""

    value: int = Input(0, min=-1000, max=1000)

    def execute(self, ctx: NodeContext) -> int:
        record("Const", ctx.node_id, value=self.value)
        return self.value


@node(category="test", outputs=[Output("INT", "sum")])
class Add(Node):
    a: int = Input(0)
    b: int = Input(0)

    def execute(self, ctx: NodeContext) -> int:
        record("Add", ctx.node_id, a=self.a, b=self.b)
        return self.a + self.b


@node(category="test", output_node=True)
class Show(Node):
    """An output node that shows its value in the UI."""

    value: Any

    def execute(self, ctx: NodeContext) -> NodeResult:
        record("Show", ctx.node_id, value=self.value)
        return NodeResult(ui={"value": [self.value]})


@node(category="test", outputs=[Output("INT", "value")])
class Boom(Node):
    """Always fails."""

    value: Any = Input(None, optional=True)

    def execute(self, ctx: NodeContext) -> int:
        record("Boom", ctx.node_id, value=self.value)
        raise RuntimeError("boom!")


@node(category="test", outputs=[Output("INT", "steps")])
class Steps(Node):
    """Reports progress; with `interrupt_at` >= 0 it interrupts the executor at that step."""

    steps: int = Input(3)
    interrupt_at: int = Input(-1, optional=True)

    def execute(self, ctx: NodeContext) -> int:
        record("Steps", ctx.node_id, steps=self.steps)
        for i in range(self.steps):
            if i == self.interrupt_at:
                ctx.services.get(Executor).interrupt()
            ctx.progress(i + 1, self.steps)
        return self.steps


@node(category="test", outputs=[Output("INT", "value")])
class Warns(Node):
    """Passes its value on and warns about it."""

    value: int = Input(0)

    def execute(self, ctx: NodeContext) -> int:
        ctx.warn(f"value {self.value} is suspicious")
        return self.value


#: set by WaitForInterrupt once it runs; the test's other thread then interrupts
WAITING = threading.Event()


@node(category="test", outputs=[Output("INT", "value")])
class WaitForInterrupt(Node):
    """Loops on ctx.progress until interrupted from another thread (gives up after ~10 s)."""

    value: int = Input(0)

    def execute(self, ctx: NodeContext) -> int:
        record("WaitForInterrupt", ctx.node_id, value=self.value)
        WAITING.set()
        for i in range(1000):
            ctx.progress(i, 1000)
            threading.Event().wait(0.01)
        return self.value


@node(category="test", outputs=[Output("*", "value")])
class LazySwitch(Node):
    """Evaluates only the branch it picks."""

    select: bool = Input(True)
    on_true: Any = Input(None, lazy=True)
    on_false: Any = Input(None, lazy=True)

    def check_lazy(self, ctx: NodeContext) -> list[str]:
        record("LazySwitch.check", ctx.node_id, on_true=self.on_true, on_false=self.on_false)
        name = "on_true" if self.select else "on_false"
        return [name] if getattr(self, name) is None else []

    def execute(self, ctx: NodeContext) -> Any:
        record("LazySwitch", ctx.node_id, select=self.select, on_true=self.on_true, on_false=self.on_false)
        return self.on_true if self.select else self.on_false


@node(category="test", outputs=[Output("INT", "items", is_list=True)])
class Range(Node):
    """A list output: 0..count-1, fanned out downstream."""

    count: int = Input(3)
    start: int = Input(0, optional=True)

    def execute(self, ctx: NodeContext) -> list[int]:
        record("Range", ctx.node_id, count=self.count, start=self.start)
        return list(range(self.start, self.start + self.count))


@node(category="test", outputs=[Output("INT", "total")], input_is_list=True)
class SumList(Node):
    values: list[int]

    def execute(self, ctx: NodeContext) -> int:
        record("SumList", ctx.node_id, values=list(self.values))
        return sum(self.values)


@node(category="test", outputs=[Output("*", "value")])
class Block(Node):
    """Outputs an ExecutionBlocker (silent when message is empty)."""

    message: str = Input("")
    value: Any = Input(None, optional=True)

    def execute(self, ctx: NodeContext) -> Any:
        record("Block", ctx.node_id, message=self.message)
        return ExecutionBlocker(self.message or None)


@node(category="test", outputs=[Output("FOO", "foo")])
class MakeFoo(Node):
    value: int = Input(0)

    def execute(self, ctx: NodeContext) -> str:
        record("MakeFoo", ctx.node_id, value=self.value)
        return f"foo{self.value}"


@node(category="test", outputs=[Output("STRING", "text")])
class TakeBar(Node):
    bar: Any = Input(None, force_input=True)

    def execute(self, ctx: NodeContext) -> str:
        return str(self.bar)


@node(category="test", output_node=True)
class Mode(Node):
    """An output node with a combo input."""

    mode: Literal["fast", "slow"] = "fast"
    value: Any = Input(None, optional=True)

    def execute(self, ctx: NodeContext) -> NodeResult:
        record("Mode", ctx.node_id, mode=self.mode)
        return NodeResult(ui={"mode": [self.mode]})


NATIVE = [Const, Add, Show, Boom, Steps, Warns, WaitForInterrupt, LazySwitch, Range, SumList, Block, MakeFoo, TakeBar, Mode]


# ---- ComfyUI V1 nodes ---------------------------------------------------------------------------


class V1Const:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -1000, "max": 1000})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test/v1"

    def run(self, value):
        record("V1Const", "?", value=value)
        return (value,)


class V1Show:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*",)}, "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True
    CATEGORY = "test/v1"

    def show(self, value, unique_id=None):
        record("V1Show", unique_id, value=value)
        return {"ui": {"text": [repr(value)]}}


# ---- running prompts ----------------------------------------------------------------------------


class Recorder:
    """Collects every event published on a bus."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(self.events.append)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type == type_]

    def clear(self) -> None:
        self.events.clear()


def make_registry(native: Iterable[type] = (), v1: dict[str, type] | None = None, display: dict[str, str] | None = None) -> Registry:
    registry = Registry()
    module = types.ModuleType("enginetest_pack")
    module.NODES = list(native)  # type: ignore[attr-defined]
    module.NODE_CLASS_MAPPINGS = dict(v1 or {})  # type: ignore[attr-defined]
    module.NODE_DISPLAY_NAME_MAPPINGS = dict(display or {})  # type: ignore[attr-defined]
    registry.add_module(module, source="enginetest_pack", builtin=True)
    assert registry.errors == [], registry.errors
    return registry


def make_executor(
    base, native: Iterable[type] = NATIVE, v1: dict[str, type] | None = None, cache: OutputCache | None = None
) -> tuple[Executor, Recorder]:
    """An Executor over the given test nodes; the executor is available to nodes as a service."""
    registry = make_registry(native, v1)
    bus = EventBus()
    recorder = Recorder(bus)
    services = Services()
    executor = Executor(registry, Folders(base), bus, cache, services)
    services.provide(executor)
    return executor, recorder
