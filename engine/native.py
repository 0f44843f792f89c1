"""sdflow's native node style: a node is a typed pydantic model whose fields are its inputs.

    @node(display_name="Invert Image", category="image", outputs=[Output(IMAGE)])
    class ImageInvert(Node):
        '''Invert the colours of an image.'''
        image: Image

        def execute(self, ctx: NodeContext) -> torch.Tensor:
            return 1.0 - self.image

Field types give the wire types: `int` INT, `float` FLOAT, `str` STRING, `bool` BOOLEAN,
`Literal[...]` COMBO, `Annotated[T, Socket("IMAGE")]` a socket, `Any` the wildcard `*`. A field
whose type admits None is optional. `Input(...)` adds the default, range, options (a list, or a
function of the folders for lists read from disk), tooltip and other editor hints. Hidden values
(prompt, extra_pnginfo, node id) come from the context, never from fields.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, ClassVar, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from engine.context import NodeContext
from engine.definition import NodeDefinition, NodeResult
from engine.folders import Folders
from engine.spec import InputSpec, NodeSpec, OutputSpec

OptionsProvider = Callable[[Folders], Sequence[Any]]

_SCALARS = {int: "INT", float: "FLOAT", str: "STRING", bool: "BOOLEAN"}
_META_KEY = "sdflow"


@dataclass(frozen=True)
class Socket:
    """Annotation marker naming the wire type of a socket input: `Annotated[Tensor, Socket("IMAGE")]`."""

    type: str


@dataclass(frozen=True)
class Output:
    """One output slot of a native node."""

    type: str
    name: str | None = None
    is_list: bool = False
    tooltip: str | None = None


def Input(
    default: Any = PydanticUndefined,
    *,
    min: float | None = None,
    max: float | None = None,
    step: float | None = None,
    round: float | bool | None = None,
    options: Sequence[Any] | OptionsProvider | None = None,
    optional: bool = False,
    multiline: bool = False,
    tooltip: str | None = None,
    force_input: bool = False,
    lazy: bool = False,
    validated_by_node: bool = False,
    **extra: Any,
) -> Any:
    """Describe an input field: its default and the hints the editor and validation use.

    `validated_by_node` turns off the generic range/option checks for this input; the node's
    `check_inputs` then decides. Unknown keywords (e.g. `control_after_generate=True`,
    `image_upload=True`, `dynamicPrompts=True`) are passed to the editor unchanged.
    """
    meta = dict(
        min=min, max=max, step=step, round=round, options=options, optional=optional, multiline=multiline,
        tooltip=tooltip, force_input=force_input, lazy=lazy, validated_by_node=validated_by_node, extra=extra,
    )
    return Field(default, description=tooltip, json_schema_extra={_META_KEY: meta})


class Node(BaseModel):
    """Base class of native nodes. Subclasses declare input fields and implement `execute`."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    #: set by the @node decorator
    definition: ClassVar["NativeDefinition"]

    def execute(self, ctx: NodeContext) -> Any:
        """Compute the outputs: one value, a tuple for several outputs, or a NodeResult."""
        raise NotImplementedError

    def fingerprint(self, ctx: NodeContext) -> Any:
        """Extra cache-key material (e.g. a file hash); linked inputs are None at this point."""
        return None

    def check_inputs(self, ctx: NodeContext) -> str | None:
        """Node-specific validation before anything runs (linked inputs are None); an error message or None."""
        return None

    def check_lazy(self, ctx: NodeContext) -> list[str]:
        """Names of lazy inputs still needed; unevaluated lazy inputs are None here."""
        return []


def node(
    *,
    display_name: str | None = None,
    category: str = "sdflow",
    outputs: Sequence[Output | str] = (),
    output_node: bool = False,
    input_is_list: bool = False,
    not_idempotent: bool = False,
    version: str = "1",
    class_type: str | None = None,
    description: str | None = None,
    deprecated: bool = False,
    experimental: bool = False,
) -> Callable[[type[Node]], type[Node]]:
    """Class decorator that turns a `Node` subclass into a registrable node type."""

    def decorate(cls: type[Node]) -> type[Node]:
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise TypeError(f"@node expects a subclass of Node, got {cls!r}")
        name = class_type or cls.__name__
        outs = tuple(o if isinstance(o, Output) else Output(o) for o in outputs)
        spec = NodeSpec(
            class_type=name,
            display_name=display_name or name,
            description=description or _first_paragraph(cls.__doc__),
            category=category,
            inputs=tuple(_input_spec(fname, finfo, input_is_list) for fname, finfo in cls.model_fields.items()),
            outputs=tuple(OutputSpec(name=o.name or o.type, type=o.type, is_list=o.is_list, tooltip=o.tooltip) for o in outs),
            output_node=output_node,
            input_is_list=input_is_list,
            version=version,
            python_module=cls.__module__,
            deprecated=deprecated,
            experimental=experimental,
        )
        cls.definition = NativeDefinition(cls, spec, not_idempotent=not_idempotent)
        return cls

    return decorate


class NativeDefinition(NodeDefinition):
    """NodeDefinition for a `@node`-decorated class."""

    def __init__(self, cls: type[Node], spec: NodeSpec, not_idempotent: bool) -> None:
        self.cls = cls
        self.class_type = spec.class_type
        self.source = cls.__module__
        self.not_idempotent = not_idempotent
        self._spec = spec
        self._providers = {
            name: meta["options"]
            for name, meta in ((n, _meta(f)) for n, f in cls.model_fields.items())
            if callable(meta.get("options"))
        }
        self.validated_inputs = frozenset(n for n, f in cls.model_fields.items() if _meta(f).get("validated_by_node"))

    def spec(self, folders: Folders) -> NodeSpec:
        if not self._providers:
            return self._spec
        inputs = tuple(
            i.model_copy(update={"options": tuple(self._providers[i.name](folders))}) if i.name in self._providers else i
            for i in self._spec.inputs
        )
        return self._spec.model_copy(update={"inputs": inputs})

    def fingerprint(self, inputs: dict[str, Any], ctx: NodeContext) -> Any:
        if self.cls.fingerprint is Node.fingerprint:
            return None
        return self.cls.model_construct(**inputs).fingerprint(ctx)

    @property
    def has_validation(self) -> bool:
        return self.cls.check_inputs is not Node.check_inputs

    def validate(self, inputs: dict[str, Any], input_types: dict[str, Any], ctx: NodeContext) -> str | None:
        if not self.has_validation:
            return None
        return self.cls.model_construct(**inputs).check_inputs(ctx)

    def lazy_inputs_needed(self, inputs: dict[str, Any], ctx: NodeContext) -> list[str]:
        return list(self.cls.model_construct(**inputs).check_lazy(ctx))

    def call(self, inputs: dict[str, Any], ctx: NodeContext) -> NodeResult:
        result = self.cls.model_construct(**inputs).execute(ctx)
        if isinstance(result, NodeResult):
            return result
        n_out = len(self._spec.outputs)
        if n_out == 0:
            if result is not None:
                raise TypeError(f"{self.class_type} has no outputs but execute() returned {type(result).__name__}")
            return NodeResult()
        if n_out == 1:
            return NodeResult(values=(result,))
        if not isinstance(result, tuple) or len(result) != n_out:
            raise TypeError(f"{self.class_type}.execute() must return a tuple of {n_out} values")
        return NodeResult(values=result)


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _meta(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra.get(_META_KEY, {}) if isinstance(extra, dict) else {}


def _input_spec(name: str, field: FieldInfo, input_is_list: bool) -> InputSpec:
    """Map one pydantic field onto an InputSpec."""
    meta = _meta(field)
    annotation, admits_none = _strip_optional(field.annotation)
    # pydantic moves the metadata of a top-level Annotated[...] into `field.metadata`
    socket = next((m for m in field.metadata if isinstance(m, Socket)), None)
    if socket is not None:
        annotation = Annotated[annotation, socket]
    if input_is_list:
        annotation = _list_item(annotation, name)
    type_, options = _wire_type(annotation, name)
    provided = meta.get("options")
    if provided is not None:
        type_, options = "COMBO", None if callable(provided) else tuple(provided)
    default = None if field.default is PydanticUndefined else field.default
    return InputSpec(
        name=name,
        type=type_,
        section="optional" if (admits_none or meta.get("optional")) else "required",
        default=default,
        options=options,
        **{k: meta[k] for k in ("min", "max", "step", "round", "tooltip") if meta.get(k) is not None},
        multiline=bool(meta.get("multiline")),
        force_input=bool(meta.get("force_input")),
        lazy=bool(meta.get("lazy")),
        extra=meta.get("extra", {}),
    )


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True
    return annotation, False


def _list_item(annotation: Any, name: str) -> Any:
    if typing.get_origin(annotation) is not list:
        raise TypeError(f"input '{name}': nodes with input_is_list take list[...] fields")
    (item,) = typing.get_args(annotation) or (Any,)
    return item


def _wire_type(annotation: Any, name: str) -> tuple[str, tuple[Any, ...] | None]:
    """Python annotation → (wire type, combo options)."""
    if typing.get_origin(annotation) is Annotated:
        for marker in annotation.__metadata__:
            if isinstance(marker, Socket):
                return marker.type, None
        annotation = typing.get_args(annotation)[0]
    if annotation is Any:
        return "*", None
    if typing.get_origin(annotation) is Literal:
        return "COMBO", typing.get_args(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation], None
    raise TypeError(f"input '{name}': cannot map type {annotation!r} to a wire type; use Annotated[..., Socket('TYPE')]")
