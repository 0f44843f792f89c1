"""API prompt → UI workflow (schema 0.4), so that prompts written or saved as API JSON open in the
editor. Converting the result back with `convert_workflow` gives the same prompt.

Nodes are laid out in columns by their depth in the graph. Widgets hold the prompt's values in the
editor's order, with "fixed" for every control_after_generate widget (so the seed is kept) and the
upload button's value after the required widgets of upload nodes.
"""

from __future__ import annotations

from typing import Any, Mapping

import networkx as nx

from engine.plan import dependency_graph, natural_key
from engine.spec import NodeSpec
from engine.workflow.api import ApiPrompt, Link
from engine.workflow.convert import ConversionError, widget_layout

COLUMN_WIDTH, ROW_HEIGHT, NODE_WIDTH = 380, 40, 320


def prompt_to_workflow(prompt: ApiPrompt, specs: Mapping[str, NodeSpec]) -> dict[str, Any]:
    """The UI workflow of an API prompt whose node ids are integers."""
    missing = sorted({n.class_type for n in prompt.nodes.values() if n.class_type not in specs})
    if missing:
        raise ConversionError(f"the prompt uses node types that are not installed: {', '.join(missing)}")
    if not all(node_id.isdigit() for node_id in prompt.nodes):
        raise ConversionError("only prompts with integer node ids can become UI workflows")
    graph = dependency_graph(prompt.nodes)
    order = list(nx.lexicographical_topological_sort(graph, key=natural_key))
    depth: dict[str, int] = {}
    for node_id in order:
        depth[node_id] = max((depth[p] + 1 for p in graph.predecessors(node_id)), default=0)
    links: list[list[Any]] = []
    nodes = {node_id: _node(node_id, prompt, specs[prompt.nodes[node_id].class_type], order.index(node_id)) for node_id in order}
    for node_id in order:
        node = nodes[node_id]
        for slot in node["inputs"]:
            link = prompt.nodes[node_id].inputs.get(slot["name"])
            if isinstance(link, Link):
                output = specs[prompt.nodes[link.node_id].class_type].outputs[link.slot]
                link_id = len(links) + 1
                links.append([link_id, int(link.node_id), link.slot, int(node_id), node["inputs"].index(slot), output.type])
                slot["link"] = link_id
                nodes[link.node_id]["outputs"][link.slot]["links"].append(link_id)
    _place(nodes, depth)
    return {
        "last_node_id": max(int(n) for n in nodes),
        "last_link_id": len(links),
        "nodes": list(nodes.values()),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
        "version": 0.4,
    }


def _node(node_id: str, prompt: ApiPrompt, spec: NodeSpec, order: int) -> dict[str, Any]:
    api = prompt.nodes[node_id]
    inputs = []
    for inp in spec.inputs:
        linked = isinstance(api.inputs.get(inp.name), Link)
        if inp.section != "hidden" and (not inp.is_widget or linked):
            slot: dict[str, Any] = {"name": inp.name, "type": inp.type, "link": None}
            if inp.is_widget:
                slot["widget"] = {"name": inp.name}
            inputs.append(slot)
    values = []
    for widget in widget_layout(spec):
        if widget is None:
            values.append("image")
            continue
        value = api.inputs.get(widget.name, widget.default)
        values.append(widget.default if isinstance(value, Link) else value)
        if widget.frontend_only_values:
            values += ["fixed", ""][: widget.frontend_only_values]
    node: dict[str, Any] = {
        "id": int(node_id),
        "type": api.class_type,
        "pos": [0, 0],
        "size": [NODE_WIDTH, 0],
        "flags": {},
        "order": order,
        "mode": 0,
        "inputs": inputs,
        "outputs": [{"name": o.name, "type": o.type, "links": [], "slot_index": i} for i, o in enumerate(spec.outputs)],
        "properties": {"Node name for S&R": api.class_type},
        "widgets_values": values,
    }
    if api.title and api.title != spec.display_name:
        node["title"] = api.title
    return node


def _place(nodes: dict[str, dict[str, Any]], depth: dict[str, int]) -> None:
    """Columns by depth; each node as tall as its slots and widgets need."""
    heights: dict[int, int] = {}
    for node_id in sorted(nodes, key=lambda n: (depth[n], natural_key(n))):
        node = nodes[node_id]
        rows = max(len(node["inputs"]), len(node["outputs"])) + len(node["widgets_values"])
        height = 60 + ROW_HEIGHT * rows
        column = depth[node_id]
        node["pos"] = [column * COLUMN_WIDTH, heights.get(column, 0)]
        node["size"] = [NODE_WIDTH, height]
        heights[column] = heights.get(column, 0) + height + ROW_HEIGHT
