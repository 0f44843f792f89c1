"""UI workflow → API prompt, producing what ComfyUI's frontend sends for the same workflow.

The rules (reference §3.3):
- Notes, Reroutes and PrimitiveNodes are not emitted; muted (mode 2) and bypassed (mode 4)
  nodes are not emitted either.
- A link is followed upstream through Reroutes, through bypassed nodes (to the bypassed
  node's input of the same type, trying the same slot index first) and through subgraph
  boundaries; a link that ends at a muted or missing node is dropped.
- Positional `widgets_values` map onto the node's widget inputs in spec order (required, then
  optional), skipping the frontend-only values: `control_after_generate` after a seed-like INT
  and the upload button's value after the required widgets of upload nodes.
- A widget input fed by a link takes the link; fed by a PrimitiveNode, the primitive's value.
- Subgraph instances are flattened; inner nodes get ids `"<instance>:<inner>"` (nested:
  `"a:b:c"`); widgets promoted onto the instance override the inner values.
- `_meta.title` is the node's title, or its type's display name when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.spec import InputSpec, NodeSpec
from engine.validation import types_match
from engine.workflow.api import ApiPrompt, Link
from engine.workflow.ui import (
    MODE_BYPASS,
    MODE_NEVER,
    SUBGRAPH_INPUT_ID,
    UiGraph,
    UiLink,
    UiNode,
    UiSubgraph,
    UiWorkflow,
)

NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")


class ConversionError(ValueError):
    """The workflow cannot be converted (e.g. it uses node types nobody registered)."""


@dataclass(frozen=True)
class _Constant:
    """A value that replaces a link (a PrimitiveNode's, or a widget promoted onto a subgraph)."""

    value: Any


@dataclass
class _Level:
    """One graph level: the workflow, or one instance of a subgraph inside its parent."""

    graph: UiGraph
    prefix: str = ""
    parent: "_Level | None" = None
    instance: UiNode | None = None
    nodes: dict[str, UiNode] = field(default_factory=dict)
    links: dict[int, UiLink] = field(default_factory=dict)
    #: (inner node id, widget name) → value promoted onto the instance
    promoted: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: subgraph input slot → value of the instance's widget for that input
    input_values: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = {str(n.id): n for n in self.graph.nodes}
        self.links = {link.id: link for link in self.graph.links}

    def api_id(self, node: UiNode) -> str:
        return f"{self.prefix}{node.id}"


def convert_workflow(workflow: dict[str, Any] | UiWorkflow, specs: Mapping[str, NodeSpec]) -> ApiPrompt:
    """Convert a UI workflow to an API prompt using the node specs (registry and/or supplied)."""
    parsed = workflow if isinstance(workflow, UiWorkflow) else UiWorkflow.model_validate(workflow)
    return _Converter(parsed, specs).convert()


class _Converter:
    def __init__(self, workflow: UiWorkflow, specs: Mapping[str, NodeSpec]) -> None:
        self.workflow = workflow
        self.specs = specs
        self.subgraphs = workflow.subgraphs()
        self.out: dict[str, dict[str, Any]] = {}
        self.unknown: dict[str, list[str]] = {}

    def convert(self) -> ApiPrompt:
        self._emit(_Level(self.workflow))
        if self.unknown:
            listed = "; ".join(f"{t} (node {', '.join(ids)})" for t, ids in sorted(self.unknown.items()))
            raise ConversionError(f"the workflow uses node types that are not installed: {listed}")
        return ApiPrompt.model_validate(self.out)

    # ---- emitting nodes -------------------------------------------------------------------

    def _emit(self, level: _Level) -> None:
        for node in sorted(level.graph.nodes, key=lambda n: (n.order, str(n.id))):
            if node.type in NOTE_TYPES or node.type in ("PrimitiveNode", "Reroute") or node.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            if node.type in self.subgraphs:
                self._emit(self._child(level, node))
                continue
            spec = self.specs.get(node.type)
            if spec is None:
                self.unknown.setdefault(node.type, []).append(level.api_id(node))
                continue
            self.out[level.api_id(node)] = {
                "class_type": node.type,
                "inputs": self._inputs(level, node, spec),
                "_meta": {"title": node.title or spec.display_name},
            }

    def _inputs(self, level: _Level, node: UiNode, spec: NodeSpec) -> dict[str, Any]:
        inputs = widget_values(node, spec)
        for (inner_id, name), value in level.promoted.items():
            if inner_id == str(node.id) and spec.input(name) is not None:
                inputs[name] = value
        for slot in node.inputs:
            if slot.link is None:
                continue
            name = slot.widget_name or slot.name
            source = self._resolve(level, slot.link)
            if isinstance(source, _Constant):
                inputs[name] = source.value
            elif isinstance(source, Link):
                inputs[name] = source
        return inputs

    # ---- following links ------------------------------------------------------------------

    def _resolve(self, level: _Level, link_id: int) -> Link | _Constant | None:
        link = level.links.get(link_id)
        if link is None:
            return None
        if link.origin_id == SUBGRAPH_INPUT_ID and level.instance is not None:
            return self._resolve_subgraph_input(level, link.origin_slot)
        origin = level.nodes.get(str(link.origin_id))
        return None if origin is None else self._resolve_output(level, origin, link.origin_slot, link.type)

    def _resolve_output(self, level: _Level, node: UiNode, slot: int, link_type: Any) -> Link | _Constant | None:
        if node.type == "Reroute":
            feed = node.inputs[0].link if node.inputs else None
            return None if feed is None else self._resolve(level, feed)
        if node.type == "PrimitiveNode":
            values = node.widgets_values
            return _Constant(values[0]) if isinstance(values, list) and values else None
        if node.type in NOTE_TYPES or node.mode == MODE_NEVER:
            return None
        if node.mode == MODE_BYPASS:
            wanted = node.outputs[slot].type if slot < len(node.outputs) else link_type
            feed = _bypass_input(node, slot, wanted)
            return None if feed is None else self._resolve(level, feed)
        if node.type in self.subgraphs:
            child = self._child(level, node)
            outputs = self.subgraphs[node.type].outputs
            link_ids = outputs[slot].linkIds if slot < len(outputs) else None
            return self._resolve(child, link_ids[0]) if link_ids else None
        return Link(level.api_id(node), slot)

    def _resolve_subgraph_input(self, level: _Level, slot: int) -> Link | _Constant | None:
        assert level.instance is not None and level.parent is not None
        inputs = level.instance.inputs
        if slot < len(inputs) and inputs[slot].link is not None:
            return self._resolve(level.parent, inputs[slot].link)
        return _Constant(level.input_values[slot]) if slot in level.input_values else None

    def _child(self, parent: _Level, instance: UiNode) -> _Level:
        subgraph: UiSubgraph = self.subgraphs[instance.type]
        level = _Level(subgraph, prefix=f"{parent.prefix}{instance.id}:", parent=parent, instance=instance)
        values = instance.widgets_values if isinstance(instance.widgets_values, list) else []
        proxies = instance.properties.get("proxyWidgets")
        if isinstance(proxies, list):
            slots_by_name = {s.name: i for i, s in enumerate(subgraph.inputs)}
            for (inner_id, name), value in zip((p for p in proxies if isinstance(p, list) and len(p) >= 2), values):
                if str(inner_id) == "-1":
                    if name in slots_by_name:
                        level.input_values[slots_by_name[name]] = value
                else:
                    level.promoted[(str(inner_id), name)] = value
        else:
            widget_slots = [i for i, s in enumerate(instance.inputs) if s.widget is not None]
            level.input_values = dict(zip(widget_slots, values))
        return level


def _bypass_input(node: UiNode, slot: int, wanted: Any) -> int | None:
    """The link id a bypassed node passes through to its output `slot` of type `wanted`."""
    candidates = ([slot] if slot < len(node.inputs) else []) + list(range(len(node.inputs)))
    for index in candidates:
        feed = node.inputs[index]
        if feed.link is not None and types_match(str(feed.type), str(wanted)):
            return feed.link
    return None


def widget_layout(spec: NodeSpec) -> list[InputSpec | None]:
    """The editor's widget order for a node type; None marks the upload button's slot."""
    required = [i for i in spec.section("required") if i.is_widget]
    optional = [i for i in spec.section("optional") if i.is_widget]
    upload: list[InputSpec | None] = [None] if any(i.extra.get(f) for i in spec.inputs for f in UPLOAD_FLAGS) else []
    return [*required, *upload, *optional]


def widget_values(node: UiNode, spec: NodeSpec) -> dict[str, Any]:
    """Map a node's saved `widgets_values` (list or dict) onto its widget input names."""
    saved = node.widgets_values
    layout = widget_layout(spec)
    out: dict[str, Any] = {}
    if isinstance(saved, dict):
        out = {i.name: saved[i.name] for i in layout if i is not None and i.name in saved}
    else:
        values, pos = list(saved or []), 0
        for widget in layout:
            if pos >= len(values):
                break
            pos += 1
            if widget is None:  # the upload button's stored value
                continue
            out[widget.name] = values[pos - 1]
            if widget.frontend_only_values and pos < len(values) and values[pos] in CONTROL_VALUES:
                pos += widget.frontend_only_values
    for widget in layout:
        if widget is not None and widget.name not in out and (default := _default(widget)) is not None:
            out[widget.name] = default
    return out


def _default(widget: InputSpec) -> Any:
    """The value the editor gives a widget the saved workflow has no value for."""
    if widget.default is not None:
        return widget.default
    if widget.type == "COMBO":
        return widget.options[0] if widget.options else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(widget.type)
