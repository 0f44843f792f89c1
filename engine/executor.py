"""The executor: runs a validated prompt over the DAG with an output cache that outlives prompts.

For one prompt it
1. computes every node's content key (class, version, constants, fingerprint, producers' keys)
   before running anything, so a cached node's whole upstream is skipped;
2. runs the nodes that are needed and not cached, in topological order with a deterministic
   tie-break, each as one call per list element (ComfyUI's list semantics);
3. isolates failures: a failing node fails its descendants only, independent outputs finish;
4. publishes ComfyUI's events on the bus, and checks for interruption between nodes and (through
   the context) inside long loops.

Lazy inputs, ExecutionBlocker outputs and node expansion (a node returning a subgraph) are
handled by the same ranked ready-queue: a node's rank is a tuple, so nodes added while running
(lazy producers, expanded subgraphs) slot in before their consumers.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

from engine import events as ev
from engine.cache import CacheEntry, OutputCache, cache_key, unique_key
from engine.context import Interrupted, NodeContext, Services
from engine.definition import ExecutionBlocker, NodeDefinition, NodeResult
from engine.errors import NodeInputError
from engine.events import EventBus, timestamp_ms
from engine.folders import Folders
from engine.plan import ancestors_of, cycles, dependency_graph, topological_order
from engine.registry import Registry
from engine.spec import NodeSpec
from engine.validation import ValidationResult, check_nodes, validate_prompt
from engine.workflow.api import ApiNode, ApiPrompt, Link, dump_input_value, known_before_run, parse_input_value

log = logging.getLogger(__name__)

Status = Literal["success", "error", "interrupted"]


class PromptInvalid(Exception):
    """The prompt failed validation; `validation` holds ComfyUI-shaped errors."""

    def __init__(self, validation: ValidationResult) -> None:
        super().__init__(validation.error["message"] if validation.error else "invalid prompt")
        self.validation = validation


@dataclass
class NodeFailure:
    """Why a node did not produce outputs."""

    node_id: str
    class_type: str
    message: str
    exception_type: str = ""
    traceback: list[str] = field(default_factory=list)
    #: set when the node never ran because a node it depends on failed
    caused_by: str | None = None


@dataclass
class ExecutionResult:
    """The outcome of one prompt."""

    prompt_id: str
    status: Status
    outputs: list[str]
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failures: dict[str, NodeFailure] = field(default_factory=dict)
    #: node id → UI data (images, text, ...) of every node that produced some, cached ones included
    ui: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the execution_* and node_warning events of this run as [event, data] pairs (history's status.messages)
    messages: list[list[Any]] = field(default_factory=list)
    #: outputs validation dropped, in ComfyUI's node_errors shape (the others ran)
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: nodes added by expansion → the node that expanded them
    parents: dict[str, str] = field(default_factory=dict)
    #: nodes added by expansion → the prompt's node the editor shows them as
    display: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def failed(self) -> dict[str, NodeFailure]:
        """Nodes that raised an error themselves (not those skipped because of them)."""
        return {n: f for n, f in self.failures.items() if f.caused_by is None}

    @property
    def failed_outputs(self) -> list[str]:
        return [o for o in self.outputs if o in self.failures]


class Executor:
    """Runs prompts one at a time; keeps the output cache between them."""

    def __init__(
        self,
        registry: Registry,
        folders: Folders,
        bus: EventBus | None = None,
        cache: OutputCache | None = None,
        services: Services | None = None,
    ) -> None:
        self.registry = registry
        self.folders = folders
        self.bus = bus or EventBus()
        self.cache = cache if cache is not None else OutputCache()
        self.services = services or Services()
        self._interrupt = threading.Event()

    def interrupt(self) -> None:
        """Ask the running prompt to stop at the next node or progress step."""
        self._interrupt.set()

    def validate(self, prompt: Any, targets: list[str] | None = None, extra_data: dict[str, Any] | None = None) -> ValidationResult:
        return validate_prompt(prompt, self.registry, self.folders, self.services, targets, extra_data)

    def execute(
        self,
        prompt: Any,
        prompt_id: str | None = None,
        extra_data: dict[str, Any] | None = None,
        targets: list[str] | None = None,
        on_complete: Callable[[ExecutionResult], None] | None = None,
    ) -> ExecutionResult:
        """Validate and run an API prompt (JSON data). Raises PromptInvalid if nothing can run.

        `on_complete` receives the finished result before the closing events
        (`execution_success`, `executing` with node None) are published: the queue writes
        history there, so a client that hears "done" always finds it.
        """
        validation = self.validate(prompt, targets, extra_data)
        if not validation.ok:
            raise PromptInvalid(validation)
        self._interrupt.clear()
        run = _PromptRun(self, validation, prompt, prompt_id or str(uuid.uuid4()), extra_data or {})
        with torch.inference_mode():
            return run.run(on_complete)


class _PromptRun:
    """The state of one prompt while it runs."""

    def __init__(self, executor: Executor, validation: ValidationResult, raw: Any, prompt_id: str, extra_data: dict[str, Any]) -> None:
        assert validation.prompt is not None
        self.x = executor
        self.raw = raw
        self.prompt_id = prompt_id
        self.extra_data = extra_data
        self.nodes: dict[str, ApiNode] = dict(validation.prompt.nodes)
        self.specs: dict[str, NodeSpec] = dict(validation.specs)
        self.outputs = validation.outputs
        self.graph = dependency_graph(self.nodes, self._lazy_map(self.nodes))
        self._current: str | None = None
        self.rank: dict[str, tuple[int, ...]] = {}
        self.keys: dict[str, str] = {}
        self.results: dict[str, tuple[list[Any], ...]] = {}
        self.from_cache: set[str] = set()
        self.requested_lazy: dict[str, set[str]] = {}
        #: expanded parents waiting for their subgraph: node id → (per-slot values with Links, ui)
        self.expanding: dict[str, tuple[tuple[list[Any], ...], dict[str, Any] | None]] = {}
        self.heap: list[tuple[tuple[int, ...], str]] = []
        self.queued: set[str] = set()
        #: progress_state entries of the nodes that started; each entry is replaced, never mutated
        self.states: dict[str, dict[str, Any]] = {}
        self.result = ExecutionResult(prompt_id, "success", list(self.outputs), node_errors=validation.node_errors)
        self.display = self.result.display

    # ---- set-up -------------------------------------------------------------------------

    def _lazy_map(self, nodes: dict[str, ApiNode]) -> dict[str, frozenset[str]]:
        # nodes whose spec failed are never run (validation kept them out of every output's subgraph)
        return {nid: frozenset(i.name for i in self.specs[n.class_type].inputs if i.lazy) for nid, n in nodes.items() if n.class_type in self.specs}

    def _definition(self, node_id: str) -> NodeDefinition:
        definition = self.x.registry.get(self.nodes[node_id].class_type)
        assert definition is not None  # validation guarantees it
        return definition

    def _context(self, node_id: str) -> NodeContext:
        return NodeContext(
            node_id=node_id,
            class_type=self.nodes[node_id].class_type,
            folders=self.x.folders,
            services=self.x.services,
            prompt_id=self.prompt_id,
            prompt=self.raw,
            extra_data=self.extra_data,
            interrupt_flag=self.x._interrupt,
            progress_hook=self._on_progress,
            warning_hook=self._on_warning,
        )

    def _compute_keys(self, order: list[str]) -> None:
        for nid in order:
            node = self.nodes[nid]
            definition = self._definition(nid)
            spec = self.specs[node.class_type]
            constants = {k: v for k, v in node.inputs.items() if not isinstance(v, Link)}
            links = {k: (self.keys[v.node_id], v.slot) for k, v in node.links().items() if v.node_id in self.keys}
            try:
                fingerprint = definition.fingerprint(known_before_run(node.inputs), self._context(nid))
            except Exception:
                log.warning("fingerprint of node %s (%s) failed; it will always run", nid, node.class_type, exc_info=True)
                self.keys[nid] = unique_key()
                continue
            node_id = nid if definition.not_idempotent else None
            self.keys[nid] = cache_key(node.class_type, spec.version, constants, links, fingerprint, node_id)

    def _enqueue(self, targets: list[str]) -> None:
        """Queue `targets` and the not-yet-available nodes they strongly depend on."""
        available = set(self.results) | set(self.result.failures)
        for nid in ancestors_of(self.graph, targets, strong_only=True, stop=available):
            if nid not in available and nid not in self.queued:
                self.queued.add(nid)
                heapq.heappush(self.heap, (self.rank[nid], nid))

    # ---- the run --------------------------------------------------------------------------

    def run(self, on_complete: Callable[[ExecutionResult], None] | None = None) -> ExecutionResult:
        started = time.perf_counter()
        candidates = ancestors_of(self.graph, self.outputs)
        order = topological_order(self.graph, candidates)
        self.rank = {nid: (i,) for i, nid in enumerate(order)}
        self._compute_keys(order)
        for nid in order:
            entry = self.x.cache.get(self.keys[nid])
            if entry is not None:
                self._adopt(nid, entry)
        needed = ancestors_of(self.graph, self.outputs, strong_only=True, stop=self.from_cache)
        self.result.cached = [n for n in order if n in needed and n in self.from_cache]
        self._publish(ev.EXECUTION_START, {"prompt_id": self.prompt_id, "timestamp": timestamp_ms()}, record=True)
        self._publish(ev.EXECUTION_CACHED, {"nodes": self.result.cached, "prompt_id": self.prompt_id, "timestamp": timestamp_ms()}, record=True)
        self._publish(ev.EXECUTION_PLAN, {"prompt_id": self.prompt_id, "nodes": [n for n in order if n in needed and n not in self.from_cache]})
        for nid in self.result.cached:
            if nid in self.result.ui:
                self._publish_executed(nid, self.result.ui[nid])
        self._enqueue(self.outputs)
        try:
            while self.heap:
                _, nid = heapq.heappop(self.heap)
                self.queued.discard(nid)
                if self.x._interrupt.is_set():
                    raise Interrupted()
                self._step(nid)
        except Interrupted:
            self.result.status = "interrupted"
            self._publish(
                ev.EXECUTION_INTERRUPTED,
                {"prompt_id": self.prompt_id, "node_id": self._current, "node_type": self._current_type(),
                 "executed": list(self.result.executed), "timestamp": timestamp_ms()},
                record=True,
            )
        closing: list[tuple[str, dict[str, Any]]] = []
        if self.result.status != "interrupted":
            if self.result.failed_outputs:
                self.result.status = "error"
            else:
                success = {"prompt_id": self.prompt_id, "timestamp": timestamp_ms()}
                self.result.messages.append([ev.EXECUTION_SUCCESS, success])
                closing.append((ev.EXECUTION_SUCCESS, success))
        closing.append((ev.EXECUTING, {"node": None, "display_node": None, "prompt_id": self.prompt_id}))
        self.result.seconds = time.perf_counter() - started
        try:
            if on_complete is not None:
                on_complete(self.result)
        finally:  # clients waiting for the end hear it even if the hook failed
            for type, data in closing:
                self.x.bus.publish(type, data)
        return self.result

    def _current_type(self) -> str | None:
        return self.nodes[self._current].class_type if self._current else None

    def _step(self, nid: str) -> None:
        """Run one node (or finish an expanded one) if its inputs allow."""
        self._current = nid
        broken = self._failed_producer(nid)
        if broken is not None:
            name, producer = broken
            root = self.result.failures[producer].caused_by or producer
            self._fail(nid, NodeFailure(nid, self.nodes[nid].class_type, f"input '{name}' comes from node {producer}, which failed", caused_by=root))
            return
        if nid in self.expanding:
            self._finish_expansion(nid)
            return
        if self._reuse_cached(nid):
            return
        try:
            waiting = self._wait_for_lazy(nid)
        except Interrupted:
            raise
        except Exception as exc:  # the node's check_lazy_status failed: the node fails, not the prompt
            self._fail(nid, self._describe(nid, exc), publish=True)
            return
        if waiting:
            return
        node = self.nodes[nid]
        self._publish(ev.EXECUTING, {"node": nid, "display_node": self.display.get(nid, nid), "prompt_id": self.prompt_id})
        self._set_state(nid, "running", 0, 1)
        try:
            outputs, ui, expansion = self._call(nid)
        except Interrupted:
            raise
        except _Blocked as blocked:
            self._fail(nid, NodeFailure(nid, node.class_type, blocked.message, "ExecutionBlocked"), publish=True)
            return
        except Exception as exc:
            self._fail(nid, self._describe(nid, exc), publish=True)
            return
        if expansion:
            self._expand(nid, outputs, ui, expansion)
            return
        self._complete(nid, outputs, ui)
        log.debug("node %s (%s) done", nid, node.class_type)

    def _reuse_cached(self, nid: str) -> bool:
        """Take the outputs an identical node (same content key) stored earlier in this prompt."""
        entry = self.x.cache.get(self.keys[nid])
        if entry is None:
            return False
        self._adopt(nid, entry)
        self.result.cached.append(nid)
        if entry.ui:
            self._publish_executed(nid, entry.ui)
        return True

    def _adopt(self, nid: str, entry: CacheEntry) -> None:
        """Use a cache entry as the node's result."""
        self.results[nid] = entry.outputs
        self.from_cache.add(nid)
        if entry.ui:
            self.result.ui[nid] = entry.ui

    def _failed_producer(self, nid: str) -> tuple[str, str] | None:
        for name, link in self.nodes[nid].links().items():
            if link.node_id in self.result.failures and self._is_used(nid, name):
                return name, link.node_id
        return None

    def _is_used(self, nid: str, name: str) -> bool:
        """Strong inputs are always used; lazy ones only once the node asked for them."""
        spec = self.specs[self.nodes[nid].class_type].input(name)
        return spec is None or not spec.lazy or name in self.requested_lazy.get(nid, set())

    def _wait_for_lazy(self, nid: str) -> bool:
        """Ask a node with lazy inputs what it needs; queue those producers and retry later."""
        node = self.nodes[nid]
        lazy = [i.name for i in self.specs[node.class_type].inputs if i.lazy and isinstance(node.inputs.get(i.name), Link)]
        if not lazy:
            return False
        inputs = self._gather(nid)
        first = {k: (v if self.specs[node.class_type].input_is_list else v[0]) for k, v in inputs.items() if v}
        asked = set(self._definition(nid).lazy_inputs_needed(first, self._context(nid)))
        requested = self.requested_lazy.setdefault(nid, set())
        new = [n for n in asked if n in lazy and n not in requested]
        if not new:
            return False
        requested.update(new)
        producers = [node.inputs[n].node_id for n in new]
        for producer in producers:
            self.graph.edges[producer, nid]["lazy"] = False
        self._enqueue(producers)
        self.queued.add(nid)
        heapq.heappush(self.heap, (self.rank[nid], nid))
        return True

    def _gather(self, nid: str) -> dict[str, list[Any]]:
        """Each input as a list: constants wrap as [value]; unevaluated lazy inputs are [None]."""
        node = self.nodes[nid]
        spec = self.specs[node.class_type]
        inputs: dict[str, list[Any]] = {}
        for name, value in node.inputs.items():
            if spec.input(name) is None:
                continue
            if isinstance(value, Link):
                produced = self.results.get(value.node_id)
                inputs[name] = list(produced[value.slot]) if produced is not None else [None]
            else:
                inputs[name] = [value]
        return inputs

    def _call(self, nid: str) -> tuple[tuple[list[Any], ...], dict[str, Any] | None, dict[str, Any]]:
        """Call the node once per list element and gather per-slot output lists.

        Subgraphs returned for expansion come back merged, their node ids made unique per call
        (`<node>.<id>`, or `<node>.<call>.<id>` when the node is called several times).
        """
        definition = self._definition(nid)
        spec = self.specs[self.nodes[nid].class_type]
        inputs = self._gather(nid)
        ctx = self._context(nid)
        if spec.input_is_list:
            calls = [inputs]
        elif any(len(v) == 0 for v in inputs.values()):
            calls = []
        else:
            count = max((len(v) for v in inputs.values()), default=1)
            calls = [{k: v[min(i, len(v) - 1)] for k, v in inputs.items()} for i in range(count)]
        outputs: tuple[list[Any], ...] = tuple([] for _ in spec.outputs)
        uis: list[dict[str, Any]] = []
        expansion: dict[str, Any] = {}
        for index, call_inputs in enumerate(calls):
            ctx.check_interrupt()
            blocker = None if spec.input_is_list else next((v for v in call_inputs.values() if isinstance(v, ExecutionBlocker)), None)
            if blocker is not None:
                if blocker.message is not None:
                    raise _Blocked(blocker.message)
                for slot in outputs:
                    slot.append(blocker)
                continue
            result: NodeResult = definition.call(call_inputs, ctx)
            values = result.values
            if result.expand:
                prefix = f"{nid}." if len(calls) == 1 else f"{nid}.{index}."
                rename = {old: prefix + old for old in result.expand}
                expansion.update({rename[old]: _renamed_node(data, rename) for old, data in result.expand.items()})
                values = tuple(_renamed(parse_input_value(v), rename) for v in values)
            if len(values) != len(spec.outputs):
                raise TypeError(f"returned {len(values)} values for {len(spec.outputs)} outputs")
            for slot, (out, value) in enumerate(zip(spec.outputs, values)):
                if out.is_list and not isinstance(value, Link):
                    outputs[slot].extend(value)
                else:
                    outputs[slot].append(value)
            if result.ui:
                uis.append(result.ui)
        return outputs, _merge_ui(uis), expansion

    def _complete(self, nid: str, outputs: tuple[list[Any], ...], ui: dict[str, Any] | None) -> None:
        self.results[nid] = outputs
        self.result.executed.append(nid)
        done = self.states.get(nid, {}).get("max", 1)
        self._set_state(nid, "finished", done, done)
        if ui:
            self.result.ui[nid] = ui
            self._publish_executed(nid, ui)
        self.x.cache.put(self.keys[nid], outputs, ui)

    # ---- node expansion -------------------------------------------------------------------

    def _expand(self, nid: str, values: tuple[list[Any], ...], ui: dict[str, Any] | None, graph: dict[str, Any]) -> None:
        """Add the subgraph a node returned; the node completes when its results exist."""
        try:
            added, problems = check_nodes(ApiPrompt.model_validate(graph).nodes, self.nodes, self.x.registry, self.x.folders, self.x.services)
            if not problems:
                problems = [f"nodes {' → '.join([*c, c[0]])} form a dependency cycle" for c in cycles(dependency_graph(added))]
            problems = problems or self._bad_result_links(values, added)
        except Exception as exc:
            self._fail(nid, self._describe(nid, exc), publish=True)
            return
        if problems:
            message = f"{self._where(nid)}: the subgraph it returned is invalid: " + "; ".join(problems)
            self._fail(nid, NodeFailure(nid, self.nodes[nid].class_type, message, "ExpansionError"), publish=True)
            return
        for new_id, node in added.items():
            self.nodes[new_id] = node
            self.specs.setdefault(node.class_type, self.x.registry.get(node.class_type).spec(self.x.folders))  # type: ignore[union-attr]
            self.display[new_id] = self.display.get(nid, nid)
            self.result.parents[new_id] = nid
        dependency_graph(added, self._lazy_map(added), graph=self.graph)
        new_order = topological_order(self.graph, added)
        for j, new_id in enumerate(new_order):
            self.rank[new_id] = self.rank[nid] + (j,)
        self._compute_keys(new_order)
        self.expanding[nid] = (values, ui)
        self.rank[nid] = self.rank[nid] + (len(new_order),)
        targets = [v.node_id for slot in self.expanding[nid][0] for v in slot if isinstance(v, Link)]
        for t in targets:
            self.graph.add_edge(t, nid, lazy=False)
        self._enqueue([*targets, nid])

    def _bad_result_links(self, values: tuple[list[Any], ...], added: dict[str, ApiNode]) -> list[str]:
        """Problems with the links an expanding node returns as its result (they must name real outputs)."""
        problems = []
        for link in (v for slot in values for v in slot if isinstance(v, Link)):
            if link.node_id in added:
                class_type = added[link.node_id].class_type
                count = len((self.specs.get(class_type) or self.x.registry.get(class_type).spec(self.x.folders)).outputs)  # type: ignore[union-attr]
            elif link.node_id in self.results:
                count = len(self.results[link.node_id])
            else:
                problems.append(f"its result links to node {link.node_id}, which is neither in the subgraph nor computed")
                continue
            if not 0 <= link.slot < count:
                problems.append(f"its result links to output {link.slot} of node {link.node_id}, which has {count} outputs")
        return problems

    def _finish_expansion(self, nid: str) -> None:
        values, ui = self.expanding.pop(nid)
        broken = next((v.node_id for slot in values for v in slot if isinstance(v, Link) and v.node_id in self.result.failures), None)
        if broken is not None:
            root = self.result.failures[broken].caused_by or broken
            self._fail(nid, NodeFailure(nid, self.nodes[nid].class_type, f"its subgraph node {broken} failed", caused_by=root))
            return
        outputs = tuple(
            [item for v in slot for item in (self.results[v.node_id][v.slot] if isinstance(v, Link) else [v])]
            for slot in values
        )
        self._complete(nid, outputs, ui)

    # ---- reporting ------------------------------------------------------------------------

    def _where(self, nid: str) -> str:
        return f"{self.specs[self.nodes[nid].class_type].display_name} (node {nid})"

    def _describe(self, nid: str, exc: BaseException) -> NodeFailure:
        reason = str(exc) if isinstance(exc, NodeInputError) else f"{type(exc).__name__}: {exc}"
        return NodeFailure(nid, self.nodes[nid].class_type, f"{self._where(nid)}: {reason}", type(exc).__name__, traceback.format_exception(exc))

    def _fail(self, nid: str, failure: NodeFailure, publish: bool = False) -> None:
        self.result.failures[nid] = failure
        if not publish:
            return
        self._set_state(nid, "error", self.states.get(nid, {}).get("value", 0), self.states.get(nid, {}).get("max", 1))
        data = {
            "prompt_id": self.prompt_id,
            "node_id": nid,
            "node_type": failure.class_type,
            "executed": list(self.result.executed),
            "exception_message": failure.message,
            "exception_type": failure.exception_type,
            "traceback": failure.traceback,
            "current_inputs": {k: [_format_value(v) for v in vs] for k, vs in self._gather(nid).items()},
            "current_outputs": list(self.results),
            "timestamp": timestamp_ms(),
        }
        self._publish(ev.EXECUTION_ERROR, data, record=True)

    def _publish_executed(self, nid: str, ui: dict[str, Any]) -> None:
        self._publish(ev.EXECUTED, {"node": nid, "display_node": self.display.get(nid, nid), "output": ui, "prompt_id": self.prompt_id})

    def _set_state(self, nid: str, state: str, value: float, total: float) -> None:
        """Record a node's progress_state entry and publish the states of every node that started."""
        self.states[nid] = {
            "value": value, "max": total, "state": state, "node_id": nid, "prompt_id": self.prompt_id,
            "display_node_id": self.display.get(nid, nid), "parent_node_id": self.result.parents.get(nid), "real_node_id": nid,
        }
        self.x.bus.publish(ev.PROGRESS_STATE, {"prompt_id": self.prompt_id, "nodes": dict(self.states)})

    def _on_progress(self, node_id: str, value: int, total: int, preview: Any) -> None:
        self._publish(ev.PROGRESS, {"value": value, "max": total, "prompt_id": self.prompt_id, "node": node_id})
        self._set_state(node_id, "running", value, total)
        if preview is not None:
            self._publish(ev.PREVIEW, {"prompt_id": self.prompt_id, "node": node_id, "image": preview})

    def _on_warning(self, node_id: str, message: str) -> None:
        data = {"prompt_id": self.prompt_id, "node": node_id, "display_node": self.display.get(node_id, node_id), "message": message}
        self._publish(ev.NODE_WARNING, data, record=True)

    def _publish(self, type: str, data: dict[str, Any], record: bool = False) -> None:
        if record:
            self.result.messages.append([type, data])
        self.x.bus.publish(type, data)


class _Blocked(Exception):
    """A node received an ExecutionBlocker that carries a message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _renamed_node(data: dict[str, Any], rename: dict[str, str]) -> dict[str, Any]:
    """A returned subgraph node with its links renamed, in JSON form (so list literals stay literals)."""
    inputs = {k: dump_input_value(_renamed(parse_input_value(v), rename)) for k, v in (data.get("inputs") or {}).items()}
    return {**data, "inputs": inputs}


def _renamed(value: Any, rename: dict[str, str]) -> Any:
    if isinstance(value, Link) and value.node_id in rename:
        return Link(rename[value.node_id], value.slot)
    return value


def _merge_ui(uis: list[dict[str, Any]]) -> dict[str, Any] | None:
    """UI data of several calls: list values are concatenated key by key."""
    if not uis:
        return None
    merged: dict[str, Any] = {}
    for ui in uis:
        for key, value in ui.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value
    return merged


def _format_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor{list(value.shape)} {value.dtype}"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
