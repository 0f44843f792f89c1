"""Prompt validation before anything runs, reporting errors in ComfyUI's shapes.

Only the outputs (or the requested targets) and their ancestors are checked. Widget values are
coerced (`"20"` → 20 for an INT); ranges and option lists are enforced, not clamped. Outputs
whose subgraph has an error are dropped; the prompt fails as a whole only when no output is
left. A node downstream of a broken one is invalid without an error of its own, so every
reported error names the node, the input and the reason where the fault really is.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.context import NodeContext, Services
from engine.definition import NodeDefinition
from engine.folders import Folders
from engine.plan import ancestors_of, cycles, dependency_graph, natural_key, topological_order
from engine.registry import Registry
from engine.spec import InputSpec, NodeSpec, OutputSpec
from engine.workflow.api import ApiNode, ApiPrompt, Link, known_before_run


def error(type: str, message: str, details: str = "", **extra_info: Any) -> dict[str, Any]:
    """One error in ComfyUI's `{type, message, details, extra_info}` shape."""
    return {"type": type, "message": message, "details": details, "extra_info": extra_info}


@dataclass
class ValidationResult:
    """The outcome: a coerced prompt and the outputs to run, or a top-level error."""

    prompt: ApiPrompt | None
    outputs: list[str]
    error: dict[str, Any] | None = None
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    specs: dict[str, NodeSpec] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The body ComfyUI returns for a rejected prompt."""
        return {"error": self.error, "node_errors": self.node_errors}


def types_match(received: str | tuple[str, ...], expected: str) -> bool:
    """Link type check: `*` matches all, `A,B` unions match on overlap, option lists feed COMBOs."""
    if isinstance(received, tuple):
        return expected in ("COMBO", "*")
    if "*" in (received, expected):
        return True
    return bool(set(received.split(",")) & set(expected.split(",")))


def _coerce(spec: InputSpec, value: Any) -> Any:
    if spec.type == "INT":
        return int(value)
    if spec.type == "FLOAT":
        number = float(value)
        if math.isnan(number):
            raise ValueError(f"{value!r} is not a number")
        return number
    if spec.type == "STRING":
        return str(value)
    if spec.type == "BOOLEAN":
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if isinstance(value, (bool, int, float)):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    return value


class _Validator:
    def __init__(self, prompt: ApiPrompt, registry: Registry, folders: Folders, services: Services, raw: dict, extra_data: dict) -> None:
        self.prompt = prompt
        self.registry = registry
        self.folders = folders
        self.services = services
        self.raw = raw
        self.extra_data = extra_data
        self.specs: dict[str, NodeSpec] = {}
        self.spec_errors: dict[str, str] = {}

    def spec_of(self, class_type: str) -> NodeSpec | None:
        if class_type not in self.specs and class_type not in self.spec_errors:
            try:
                self.specs[class_type] = self.registry.get(class_type).spec(self.folders)  # type: ignore[union-attr]
            except Exception as exc:
                self.spec_errors[class_type] = f"{type(exc).__name__}: {exc}"
        return self.specs.get(class_type)

    def check_node(self, node_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Errors of one node's own inputs, and its inputs with widget values coerced."""
        node = self.prompt.nodes[node_id]
        spec = self.spec_of(node.class_type)
        if spec is None:
            return [error("exception_during_validation", "Node definition failed", self.spec_errors[node.class_type])], {}
        definition = self.registry.get(node.class_type)
        assert definition is not None
        errors: list[dict[str, Any]] = []
        values = dict(node.inputs)
        input_types: dict[str, Any] = {}
        for inp in spec.inputs:
            if inp.section == "hidden":
                continue
            if inp.name not in node.inputs:
                if inp.section == "required":
                    errors.append(error("required_input_missing", "Required input is missing", inp.name, input_name=inp.name))
                continue
            value = node.inputs[inp.name]
            if isinstance(value, Link):
                problem, received = self._check_link(inp, value, definition)
                if problem:
                    errors.append(problem)
                else:
                    input_types[inp.name] = received
                continue
            problem, coerced = self._check_constant(inp, value, definition)
            if problem:
                errors.append(problem)
            else:
                values[inp.name] = coerced
        if not errors:
            errors += self._custom_validation(node_id, node.class_type, definition, values, input_types)
        return errors, values

    def _check_link(self, inp: InputSpec, link: Link, definition: NodeDefinition) -> tuple[dict[str, Any] | None, Any]:
        source = self.prompt.nodes.get(link.node_id)

        def info() -> dict[str, Any]:
            return dict(input_name=inp.name, input_config=inp.to_object_info(), linked_node=link.to_json())

        if source is None:
            return error("bad_linked_input", "Linked node does not exist", f"{inp.name}: node '{link.node_id}' is not in the prompt", **info()), None
        source_spec = self.spec_of(source.class_type)
        if source_spec is None:
            return None, "*"  # the source node reports its own error
        if not 0 <= link.slot < len(source_spec.outputs):
            return error(
                "bad_linked_input",
                "Linked output does not exist",
                f"{inp.name}: {source.class_type} (node '{link.node_id}') has {len(source_spec.outputs)} outputs, not slot {link.slot}",
                **info(),
            ), None
        output: OutputSpec = source_spec.outputs[link.slot]
        if not definition.wants_input_types and not types_match(output.type, inp.type):
            received = "COMBO" if isinstance(output.type, tuple) else output.type
            return error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                f"{inp.name}, received_type({received}) mismatch input_type({inp.type})",
                received_type=received,
                **info(),
            ), None
        return None, output.type

    def _check_constant(self, inp: InputSpec, value: Any, definition: NodeDefinition) -> tuple[dict[str, Any] | None, Any]:
        def info() -> dict[str, Any]:
            return dict(input_name=inp.name, input_config=inp.to_object_info(), received_value=value)

        if not inp.is_widget and inp.type not in ("*",) and _looks_like_link(value):
            return error("bad_linked_input", *_bad_link(inp.name, value), **info()), None
        try:
            value = _coerce(inp, value)
        except (TypeError, ValueError, OverflowError) as exc:
            return error(
                "invalid_input_type",
                f"Failed to convert an input value to a {inp.type} value",
                f"{inp.name}, {value!r}, {exc}",
                exception_message=str(exc),
                **info(),
            ), None
        if inp.name in definition.validated_inputs:
            return None, value
        if inp.type in ("INT", "FLOAT"):
            if inp.min is not None and value < inp.min:
                return error("value_smaller_than_min", f"Value {value} smaller than min of {_num(inp.min)}", inp.name, **info()), None
            if inp.max is not None and value > inp.max:
                return error("value_bigger_than_max", f"Value {value} bigger than max of {_num(inp.max)}", inp.name, **info()), None
        if inp.type == "COMBO" and inp.options is not None and value not in inp.options:
            shown = list(inp.options) if len(inp.options) <= 20 else f"(list of length {len(inp.options)})"
            return error("value_not_in_list", "Value not in list", f"{inp.name}: '{value}' not in {shown}", **info()), None
        return None, value

    def _custom_validation(
        self, node_id: str, class_type: str, definition: NodeDefinition, values: dict[str, Any], input_types: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not definition.has_validation:
            return []
        inputs = known_before_run(values)
        ctx = NodeContext(node_id, class_type, self.folders, self.services, prompt=self.raw, extra_data=self.extra_data)
        try:
            message = definition.validate(inputs, input_types, ctx)
        except Exception as exc:
            return [error("exception_during_validation", "Exception when validating node", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())]
        if message is None:
            return []
        names = sorted(definition.validated_inputs) or sorted(k for k, v in values.items() if not isinstance(v, Link))
        return [error("custom_validation_failed", "Custom validation failed for node", f"{', '.join(names)} - {message}", input_name=", ".join(names))]


def _declared_inputs_only(prompt: ApiPrompt, checker: _Validator) -> ApiPrompt:
    """Drop inputs a node does not declare (ComfyUI ignores them too), so they cannot pull in work."""
    nodes = {}
    for nid, node in prompt.nodes.items():
        spec = checker.spec_of(node.class_type)
        if spec is not None and any(spec.input(name) is None for name in node.inputs):
            node = _with_inputs(node, {k: v for k, v in node.inputs.items() if spec.input(k) is not None})
        nodes[nid] = node
    return ApiPrompt.model_construct(root=nodes)


def _coerced(node: ApiNode, inputs: dict[str, Any]) -> ApiNode:
    """The node with its coerced inputs (the node itself when coercion changed nothing; 1 and 1.0
    differ here, as the node must receive the type its input declares)."""
    unchanged = inputs.keys() == node.inputs.keys() and all(
        value is old or (type(value) is type(old) and value == old) for value, old in zip(inputs.values(), (node.inputs[k] for k in inputs))
    )
    return node if unchanged else _with_inputs(node, inputs)


def _with_inputs(node: ApiNode, inputs: dict[str, Any]) -> ApiNode:
    """A copy of an (already validated) node with other inputs, without re-validating."""
    return ApiNode.model_construct(class_type=node.class_type, inputs=inputs, meta=node.meta, **(node.model_extra or {}))


def check_nodes(
    added: dict[str, ApiNode], existing: dict[str, ApiNode], registry: Registry, folders: Folders, services: Services
) -> tuple[dict[str, ApiNode], list[str]]:
    """Validate nodes added while running (node expansion): coerced nodes and readable problems."""
    unknown = [f"node {nid}: unknown node type {n.class_type!r}" for nid, n in added.items() if n.class_type not in registry]
    if unknown:
        return {}, unknown
    prompt = ApiPrompt.model_validate({**existing, **added})
    checker = _Validator(prompt, registry, folders, services, {}, {})
    checker.prompt = _declared_inputs_only(prompt, checker)
    coerced, problems = {}, []
    for nid in added:
        errors, values = checker.check_node(nid)
        problems += [f"node {nid} ({added[nid].class_type}): {e['message']} ({e['details']})" for e in errors]
        coerced[nid] = _with_inputs(checker.prompt.nodes[nid], values)
    return coerced, problems


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _looks_like_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def _bad_link(name: str, value: list[Any]) -> tuple[str, str]:
    """Message and details for a two-element list that a socket-only input got but that is no link."""
    node_id, slot = value
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "Bad linked input, node ids in links must be strings", f'{name}: {value!r} (write ["{node_id}", {slot}])'
    return "Bad linked input, a link is [node id, output slot]", f"{name}: {value!r} needs a string node id and a whole-number output slot"


def _structure_error(raw: Any, registry: Registry) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return error("invalid_prompt", "Cannot execute because the prompt is not an object of nodes", f"got {type(raw).__name__}")
    for node_id, node in raw.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return error("invalid_prompt", "Cannot execute because a node is missing the class_type property.", f"Node ID '#{node_id}'")
        if not isinstance(node["class_type"], str):
            return error("invalid_prompt", "Cannot execute because a node's class_type is not a string.", f"Node ID '#{node_id}'")
        if node["class_type"] not in registry:
            return error("invalid_prompt", f"Cannot execute because node {node['class_type']} does not exist.", f"Node ID '#{node_id}'")
        if not isinstance(node.get("inputs", {}), dict):
            return error("invalid_prompt", "Cannot execute because a node's inputs are not an object.", f"Node ID '#{node_id}'")
    return None


def validate_prompt(
    raw: Any,
    registry: Registry,
    folders: Folders,
    services: Services | None = None,
    targets: list[str] | None = None,
    extra_data: dict[str, Any] | None = None,
) -> ValidationResult:
    """Validate an API prompt (JSON data) against the registry."""
    problem = _structure_error(raw, registry)
    if problem:
        return ValidationResult(None, [], problem)
    try:
        prompt = ApiPrompt.model_validate(raw)
    except ValidationError as exc:
        return ValidationResult(None, [], error("invalid_prompt", "Cannot execute because the prompt is malformed", str(exc)))
    checker = _Validator(prompt, registry, folders, services or Services(), raw, extra_data or {})
    prompt = checker.prompt = _declared_inputs_only(prompt, checker)

    if targets:
        missing = [t for t in targets if str(t) not in prompt.nodes]
        if missing:
            return ValidationResult(None, [], error("invalid_prompt", "Partial execution target does not exist", ", ".join(map(str, missing))))
        outputs = [str(t) for t in targets]
    else:
        outputs = [nid for nid, node in prompt.nodes.items() if (s := checker.spec_of(node.class_type)) is not None and s.output_node]
    if not outputs:
        return ValidationResult(None, [], error("prompt_no_outputs", "Prompt has no outputs", "add an output node such as Save Image"))
    outputs.sort(key=natural_key)

    lazy = {
        nid: frozenset(i.name for i in spec.inputs if i.lazy)
        for nid, node in prompt.nodes.items()
        if (spec := checker.spec_of(node.class_type)) is not None
    }
    graph = dependency_graph(prompt.nodes, lazy)
    relevant = ancestors_of(graph, outputs)
    own_errors: dict[str, list[dict[str, Any]]] = {}
    coerced: dict[str, dict[str, Any]] = {}
    for cycle in cycles(graph, relevant):
        path = " → ".join([*cycle, cycle[0]])
        for nid in cycle:
            own_errors[nid] = [error("dependency_cycle", "Dependency cycle detected", f"nodes {path} depend on each other")]
    in_cycle = set(own_errors)
    for nid in relevant - in_cycle:
        errors, coerced[nid] = checker.check_node(nid)
        if errors:
            own_errors[nid] = errors

    valid: dict[str, bool] = {}
    for nid in topological_order(graph, relevant - in_cycle):
        valid[nid] = nid not in own_errors and all(valid.get(p, False) for p in graph.predecessors(nid))

    node_errors: dict[str, dict[str, Any]] = {}
    good_outputs = []
    for out in outputs:
        if valid.get(out, False):
            good_outputs.append(out)
            continue
        for nid in sorted(ancestors_of(graph, [out]) & own_errors.keys(), key=natural_key):
            entry = node_errors.setdefault(nid, {"errors": own_errors[nid], "dependent_outputs": [], "class_type": prompt.nodes[nid].class_type})
            entry["dependent_outputs"].append(out)

    checked = ApiPrompt.model_construct(root={nid: _coerced(node, coerced.get(nid, node.inputs)) for nid, node in prompt.nodes.items()})
    if not good_outputs:
        lines = [f"{e['message']}: {e['details']}" for entry in node_errors.values() for e in entry["errors"]]
        top = error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "\n".join(lines))
        return ValidationResult(None, [], top, node_errors, checker.specs)
    return ValidationResult(checked, good_outputs, None, node_errors, checker.specs)


def describe_errors(node_errors: dict[str, dict[str, Any]], error: dict[str, Any] | None = None) -> list[str]:
    """Readable lines naming node, input and reason, for the CLI and logs."""
    lines = []
    if error and error["type"] != "prompt_outputs_failed_validation":
        lines.append(f"{error['message']} {error['details']}".strip())
    for nid, entry in node_errors.items():
        for e in entry["errors"]:
            where = f"node {nid} ({entry['class_type']})"
            name = e["extra_info"].get("input_name")
            if name:
                detail = f" ({e['details']})" if e["details"] and e["details"] != name else ""
                lines.append(f"{where}, input '{name}': {e['message']}{detail}")
            else:
                lines.append(f"{where}: {e['message']}: {e['details']}")
    return lines
