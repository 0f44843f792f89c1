"""The prompt as a dependency graph (networkx): ancestors, cycles and a deterministic order."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import networkx as nx

from engine.workflow.api import ApiNode

_DIGITS = re.compile(r"\d+")


def natural_key(node_id: str) -> str:
    """Sort key that orders "2" before "10" and "12:3" before "12:10"."""
    return _DIGITS.sub(lambda m: m.group().zfill(20), node_id)


def dependency_graph(
    nodes: Mapping[str, ApiNode], lazy: Mapping[str, frozenset[str]] | None = None, graph: nx.DiGraph | None = None
) -> nx.DiGraph:
    """Edges run producer → consumer; edges into `lazy` inputs (names per node) get `lazy=True`.

    With `graph`, the nodes are added to it (nodes added while running). Links to nodes that
    are not in the graph are left out; validation reports them.
    """
    lazy = lazy or {}
    graph = graph if graph is not None else nx.DiGraph()
    graph.add_nodes_from(nodes)
    for node_id, node in nodes.items():
        lazy_inputs = lazy.get(node_id, frozenset())
        for name, link in node.links().items():
            if link.node_id not in graph:
                continue
            is_lazy = name in lazy_inputs
            if graph.has_edge(link.node_id, node_id):
                # a producer feeding both a lazy and a strong input is a strong dependency
                graph.edges[link.node_id, node_id]["lazy"] &= is_lazy
            else:
                graph.add_edge(link.node_id, node_id, lazy=is_lazy)
    return graph


def ancestors_of(graph: nx.DiGraph, targets: Iterable[str], strong_only: bool = False, stop: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """`targets` and everything they depend on; nodes in `stop` are included but not walked past."""
    seen: set[str] = set()
    stack = [t for t in targets if t in graph]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in stop:
            continue
        for producer, _, data in graph.in_edges(node, data=True):
            if producer not in seen and not (strong_only and data.get("lazy")):
                stack.append(producer)
    return seen


def _restricted(graph: nx.DiGraph, nodes: Iterable[str] | None) -> nx.DiGraph:
    """`graph` limited to `nodes`, as a real graph (networkx views are slow to walk)."""
    if nodes is None:
        return graph
    nodes = set(nodes)
    return graph if len(nodes) == len(graph) else graph.subgraph(nodes).copy()


def cycles(graph: nx.DiGraph, nodes: Iterable[str] | None = None) -> list[list[str]]:
    """Each dependency cycle among `nodes` as a list of node ids (strongly connected components)."""
    graph = _restricted(graph, nodes)
    if nx.is_directed_acyclic_graph(graph):
        return []
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1 or any(graph.has_edge(n, n) for n in component):
            found.append(sorted(component, key=natural_key))
    return found


def topological_order(graph: nx.DiGraph, nodes: Iterable[str] | None = None) -> list[str]:
    """Producers before consumers; ties broken by natural node-id order."""
    return list(nx.lexicographical_topological_sort(_restricted(graph, nodes), key=natural_key))
