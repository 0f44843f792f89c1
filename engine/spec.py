"""NodeSpec: the one description of a node type.

Validation, the UI→API converter, `/object_info`, the editor's widgets and `sdflow nodes` are
all generated from it. Native nodes and ComfyUI V1 classes both end up as a NodeSpec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Input types the editor shows as widgets (a value typed in place, not a socket).
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
#: Largest width/height any image node accepts, as in ComfyUI.
MAX_RESOLUTION = 16384

Section = Literal["required", "optional", "hidden"]

# Option names that map onto InputSpec fields; everything else is kept in `extra` verbatim.
_FIELD_OPTIONS = {
    "default": "default",
    "min": "min",
    "max": "max",
    "step": "step",
    "round": "round",
    "multiline": "multiline",
    "tooltip": "tooltip",
    "forceInput": "force_input",
    "lazy": "lazy",
}


class InputSpec(BaseModel):
    """One input of a node: a socket (linked value) or a widget (typed-in value)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    section: Section = "required"
    default: Any = None
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    round: int | float | bool | None = None
    options: tuple[Any, ...] | None = None
    multiline: bool = False
    tooltip: str | None = None
    force_input: bool = False
    lazy: bool = False
    #: further ComfyUI options passed through to object_info unchanged
    #: (control_after_generate, image_upload, dynamicPrompts, display, placeholder, ...)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_widget(self) -> bool:
        """True when the editor shows this input as a widget rather than only a socket."""
        if self.section == "hidden" or self.force_input:
            return False
        return self.type in WIDGET_TYPES or bool(self.extra.get("socketless"))

    @property
    def frontend_only_values(self) -> int:
        """How many extra frontend-only widget values follow this widget in `widgets_values`."""
        if not self.is_widget or not self.extra.get("control_after_generate"):
            return 0
        # a COMBO with the flag also gets a filter-list text widget
        return 2 if self.type == "COMBO" else 1

    def to_object_info(self) -> list[Any] | str:
        """The `[type, options]` entry ComfyUI's `/object_info` shows for this input."""
        if self.section == "hidden":
            return self.type
        opts: dict[str, Any] = {}
        for option, field in _FIELD_OPTIONS.items():
            value = getattr(self, field)
            # flags show only when set; `round: false` (no rounding) and `default: false` are kept
            if value is not None and (value is not False or option in ("round", "default")):
                opts[option] = value
        opts.update(self.extra)
        first: Any = list(self.options) if self.type == "COMBO" else self.type
        return [first, opts] if opts else [first]

    @classmethod
    def from_object_info(cls, name: str, section: Section, raw: Any) -> "InputSpec":
        """Parse one ComfyUI input entry: `("INT", {...})`, `(["a", "b"], {...})`, `"PROMPT"`."""
        if section == "hidden":
            return cls(name=name, type=str(raw[0] if isinstance(raw, (list, tuple)) else raw), section=section)
        if not isinstance(raw, (list, tuple)) or not raw:
            raise ValueError(f"input '{name}': expected a (type, options) tuple, got {raw!r}")
        type_, opts = raw[0], dict(raw[1]) if len(raw) > 1 and isinstance(raw[1], dict) else {}
        options = None
        if isinstance(type_, (list, tuple)):
            options, type_ = tuple(type_), "COMBO"
        elif type_ == "COMBO":
            options = tuple(opts.pop("options", ()))
        elif not isinstance(type_, str):
            raise ValueError(f"input '{name}': type must be a string or an option list, got {type_!r}")
        fields: dict[str, Any] = {}
        for option, field in _FIELD_OPTIONS.items():
            if option in opts:
                fields[field] = opts.pop(option)
        return cls(name=name, type=type_, section=section, options=options, extra=opts, **fields)


class OutputSpec(BaseModel):
    """One output slot."""

    model_config = ConfigDict(frozen=True)

    name: str
    #: wire type; a list means a COMBO output carrying one of these options
    type: str | tuple[str, ...]
    is_list: bool = False
    tooltip: str | None = None


class NodeSpec(BaseModel):
    """Everything the engine, the converter and the editor need to know about a node type."""

    model_config = ConfigDict(frozen=True)

    class_type: str
    display_name: str
    description: str = ""
    category: str = "sdflow"
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    output_node: bool = False
    input_is_list: bool = False
    version: str = "1"
    python_module: str = "nodes"
    deprecated: bool = False
    experimental: bool = False

    def input(self, name: str) -> InputSpec | None:
        """The input called `name`, or None."""
        return next((i for i in self.inputs if i.name == name), None)

    def section(self, section: Section) -> list[InputSpec]:
        return [i for i in self.inputs if i.section == section]

    def to_object_info(self) -> dict[str, Any]:
        """The ComfyUI-shaped `/object_info` entry for this node."""
        sections: dict[str, dict[str, Any]] = {}
        for spec in self.inputs:
            sections.setdefault(spec.section, {})[spec.name] = spec.to_object_info()
        outputs = [list(o.type) if isinstance(o.type, tuple) else o.type for o in self.outputs]
        info: dict[str, Any] = {
            "input": {"required": sections.get("required", {}), **{k: v for k, v in sections.items() if k != "required"}},
            "input_order": {s: list(names) for s, names in sections.items()},
            "output": outputs,
            "output_is_list": [o.is_list for o in self.outputs],
            "output_name": [o.name for o in self.outputs],
            "name": self.class_type,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        tooltips = [o.tooltip for o in self.outputs]
        if any(tooltips):
            info["output_tooltips"] = tooltips
        if self.deprecated:
            info["deprecated"] = True
        if self.experimental:
            info["experimental"] = True
        return info

    @classmethod
    def from_object_info(cls, class_type: str, info: dict[str, Any]) -> "NodeSpec":
        """Build a spec from a ComfyUI `/object_info` entry (used for nodes known only as data)."""
        inputs = []
        for section in ("required", "optional", "hidden"):
            for name, raw in (info.get("input", {}).get(section) or {}).items():
                inputs.append(InputSpec.from_object_info(name, section, raw))
        types = info.get("output", [])
        names = info.get("output_name") or types
        is_list = info.get("output_is_list") or [False] * len(types)
        tooltips = info.get("output_tooltips") or [None] * len(types)
        outputs = [
            OutputSpec(name=n if isinstance(n, str) else "COMBO", type=tuple(t) if isinstance(t, list) else t, is_list=bool(l), tooltip=tt)
            for t, n, l, tt in zip(types, names, is_list, tooltips)
        ]
        return cls(
            class_type=class_type,
            display_name=info.get("display_name") or class_type,
            description=info.get("description", ""),
            category=info.get("category", "sdflow"),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            output_node=bool(info.get("output_node")),
            python_module=info.get("python_module", "nodes"),
            deprecated=bool(info.get("deprecated")),
            experimental=bool(info.get("experimental")),
        )
