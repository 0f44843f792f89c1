"""Adapter for ComfyUI's classic (V1) node classes.

A V1 class declares `INPUT_TYPES()`, `RETURN_TYPES`, `FUNCTION` and friends; this module reads
them into a NodeSpec and calls the class the way ComfyUI does (hidden inputs, IS_CHANGED,
VALIDATE_INPUTS, check_lazy_status, dict returns with `ui`/`result`/`expand`), so plugins
written for ComfyUI run unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

from engine.context import NodeContext
from engine.definition import ExecutionBlocker, NodeDefinition, NodeResult
from engine.folders import Folders
from engine.spec import InputSpec, NodeSpec, OutputSpec

#: hidden input kinds and where their values come from
_HIDDEN: dict[str, Callable[[NodeContext], Any]] = {
    "PROMPT": lambda ctx: ctx.prompt,
    "DYNPROMPT": lambda ctx: ctx.prompt,
    "EXTRA_PNGINFO": lambda ctx: ctx.extra_pnginfo,
    "UNIQUE_ID": lambda ctx: ctx.node_id,
    "AUTH_TOKEN_COMFY_ORG": lambda ctx: ctx.extra_data.get("auth_token_comfy_org"),
    "API_KEY_COMFY_ORG": lambda ctx: ctx.extra_data.get("api_key_comfy_org"),
}


def is_v1_class(obj: Any) -> bool:
    """True for classes following ComfyUI's V1 convention."""
    return isinstance(obj, type) and hasattr(obj, "INPUT_TYPES") and hasattr(obj, "RETURN_TYPES") and hasattr(obj, "FUNCTION")


class ComfyV1Definition(NodeDefinition):
    """NodeDefinition for a ComfyUI V1 class."""

    def __init__(self, class_type: str, cls: type, display_name: str | None = None, source: str = "custom_nodes") -> None:
        if not is_v1_class(cls):
            raise TypeError(f"{class_type}: not a ComfyUI node class (needs INPUT_TYPES, RETURN_TYPES and FUNCTION)")
        if not callable(getattr(cls, cls.FUNCTION, None)):
            raise TypeError(f"{class_type}: FUNCTION names {cls.FUNCTION!r}, which the class does not define")
        self.cls = cls
        self.class_type = class_type
        self.source = source
        self.display_name = display_name or getattr(cls, "DISPLAY_NAME", None) or class_type
        self.not_idempotent = bool(getattr(cls, "NOT_IDEMPOTENT", False))
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        params = _parameters(validate) if validate else set()
        self.wants_input_types = "input_types" in params
        self.validated_inputs = frozenset(params - {"input_types"})
        spec = self.spec(Folders(base="."))  # a malformed class fails at registration, not at first use
        self._hidden_kinds = {i.name: i.type for i in spec.inputs if i.section == "hidden"}
        self._visible_inputs = [i.name for i in spec.inputs if i.section != "hidden"]
        self._input_is_list = spec.input_is_list
        if validate and _takes_kwargs(validate):
            # ComfyUI: a `**kwargs` VALIDATE_INPUTS gets every input and replaces all built-in checks
            self.validated_inputs = frozenset(self._visible_inputs)
        # ComfyUI keys nodes that read their own id (UNIQUE_ID) by node id, like NOT_IDEMPOTENT ones
        self.not_idempotent = self.not_idempotent or "UNIQUE_ID" in self._hidden_kinds.values()

    def spec(self, folders: Folders) -> NodeSpec:
        cls = self.cls
        declared = cls.INPUT_TYPES()
        if not isinstance(declared, dict):
            raise TypeError(f"{self.class_type}.INPUT_TYPES() must return a dict")
        inputs = [
            InputSpec.from_object_info(name, section, raw)
            for section in ("required", "optional", "hidden")
            for name, raw in (declared.get(section) or {}).items()
        ]
        types = tuple(cls.RETURN_TYPES)
        names = tuple(getattr(cls, "RETURN_NAMES", None) or types)
        is_list = tuple(getattr(cls, "OUTPUT_IS_LIST", None) or (False,) * len(types))
        tooltips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(types))
        if not (len(names) == len(is_list) == len(types)):
            raise TypeError(f"{self.class_type}: RETURN_NAMES/OUTPUT_IS_LIST do not match RETURN_TYPES in length")
        outputs = tuple(
            OutputSpec(
                name=n if isinstance(n, str) else "COMBO",
                type=tuple(t) if isinstance(t, (list, tuple)) else t,
                is_list=bool(l),
                tooltip=tt,
            )
            for t, n, l, tt in zip(types, names, is_list, tooltips)
        )
        return NodeSpec(
            class_type=self.class_type,
            display_name=self.display_name,
            description=getattr(cls, "DESCRIPTION", "") or "",
            category=getattr(cls, "CATEGORY", "sd"),
            inputs=tuple(inputs),
            outputs=outputs,
            output_node=bool(getattr(cls, "OUTPUT_NODE", False)),
            input_is_list=bool(getattr(cls, "INPUT_IS_LIST", False)),
            python_module=self.source,
            deprecated=bool(getattr(cls, "DEPRECATED", False)),
            experimental=bool(getattr(cls, "EXPERIMENTAL", False)),
        )

    def fingerprint(self, inputs: dict[str, Any], ctx: NodeContext) -> Any:
        is_changed = getattr(self.cls, "IS_CHANGED", None)
        if is_changed is None:
            return None
        return _run(_call_with_accepted(is_changed, {**inputs, **self._hidden(ctx)}))

    @property
    def has_validation(self) -> bool:
        return getattr(self.cls, "VALIDATE_INPUTS", None) is not None

    def validate(self, inputs: dict[str, Any], input_types: dict[str, Any], ctx: NodeContext) -> str | None:
        validate = getattr(self.cls, "VALIDATE_INPUTS", None)
        if validate is None:
            return None
        # absent optional inputs are not passed, so the function's own defaults apply
        args = {name: inputs[name] for name in self.validated_inputs if name in inputs}
        if self.wants_input_types:
            args["input_types"] = input_types
        result = _run(_call_with_accepted(validate, args))
        return None if result is True else str(result)

    def lazy_inputs_needed(self, inputs: dict[str, Any], ctx: NodeContext) -> list[str]:
        check = getattr(self.cls, "check_lazy_status", None)
        if check is None:
            return []
        needed = _run(_call_with_accepted(getattr(self.cls(), "check_lazy_status"), {**inputs, **self._hidden(ctx)}))
        return list(needed or [])

    def call(self, inputs: dict[str, Any], ctx: NodeContext) -> NodeResult:
        function = getattr(self.cls(), self.cls.FUNCTION)
        result = _run(function(**inputs, **self._hidden(ctx)))
        if isinstance(result, ExecutionBlocker):  # ComfyUI blocks every output with it
            return NodeResult(values=(result,) * len(self.cls.RETURN_TYPES))
        if isinstance(result, dict):
            values = result.get("result", ())
            return NodeResult(values=tuple(values), ui=result.get("ui"), expand=result.get("expand"))
        if result is None:
            return NodeResult()
        if not isinstance(result, (tuple, list)):
            raise TypeError(f"{self.class_type}.{self.cls.FUNCTION}() must return a tuple or a dict, got {type(result).__name__}")
        return NodeResult(values=tuple(result))

    def _hidden(self, ctx: NodeContext) -> dict[str, Any]:
        values = {name: _HIDDEN[kind](ctx) for name, kind in self._hidden_kinds.items() if kind in _HIDDEN}
        return {name: [value] for name, value in values.items()} if self._input_is_list else values


def _parameters(function: Callable[..., Any]) -> set[str]:
    return {p.name for p in inspect.signature(function).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _takes_kwargs(function: Callable[..., Any]) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


def _call_with_accepted(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call with the keyword arguments the function accepts (all of them if it takes **kwargs)."""
    params = inspect.signature(function).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        names = {p.name for p in params}
        kwargs = {k: v for k, v in kwargs.items() if k in names}
    return function(**kwargs)


def _run(value: Any) -> Any:
    """Await coroutines returned by `async def` node functions."""
    return asyncio.run(value) if inspect.iscoroutine(value) else value
