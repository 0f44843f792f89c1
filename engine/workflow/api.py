"""ComfyUI's API prompt format: `{"<id>": {"class_type", "inputs", "_meta": {"title"}}}`.

An input value is a link when it is a two-element list `[node_id, slot]`; every other value is a
literal, and list literals travel wrapped as `{"__value__": [...]}`. Inside sdflow a link is a
`Link` and a literal is its plain Python value, so nothing downstream has to guess.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_serializer, field_validator

VALUE_WRAPPER = "__value__"


class Link(NamedTuple):
    """A connection to output `slot` of node `node_id`."""

    node_id: str
    slot: int

    def to_json(self) -> list[Any]:
        return [self.node_id, self.slot]


def is_link_json(value: Any) -> bool:
    """ComfyUI's rule: a two-element list `[str, int]` is a link (a slot of 2.0 counts as 2; 1.5,
    inf and nan do not, so validation reports them as bad links instead of guessing a slot)."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and _is_whole_number(value[1])


def _is_whole_number(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def parse_input_value(value: Any) -> Any:
    """JSON input value → `Link` or literal (`__value__` unwrapped)."""
    if isinstance(value, Link):
        return value
    if is_link_json(value):
        return Link(value[0], int(value[1]))
    if isinstance(value, dict) and set(value) == {VALUE_WRAPPER}:
        return value[VALUE_WRAPPER]
    return value


def dump_input_value(value: Any) -> Any:
    """Literal or `Link` → JSON, wrapping list literals so they never read as links."""
    if isinstance(value, Link):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return {VALUE_WRAPPER: list(value)}
    return value


def known_before_run(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as known before anything runs: constants as they are, linked inputs as None."""
    return {name: None if isinstance(value, Link) else value for name, value in inputs.items()}


class NodeMeta(BaseModel):
    """Frontend metadata; `title` is how clients address nodes."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None


class ApiNode(BaseModel):
    """One node of an API prompt."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    class_type: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    meta: NodeMeta | None = Field(default=None, alias="_meta")

    @field_validator("inputs", mode="before")
    @classmethod
    def _parse_inputs(cls, inputs: Any) -> Any:
        if not isinstance(inputs, dict):
            return inputs
        return {name: parse_input_value(value) for name, value in inputs.items()}

    @field_serializer("inputs")
    def _dump_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {name: dump_input_value(value) for name, value in inputs.items()}

    @property
    def title(self) -> str | None:
        return self.meta.title if self.meta else None

    def links(self) -> dict[str, Link]:
        """The linked inputs of this node by input name."""
        return {name: value for name, value in self.inputs.items() if isinstance(value, Link)}


class ApiPrompt(RootModel[dict[str, ApiNode]]):
    """A whole API prompt keyed by string node id."""

    @field_validator("root", mode="before")
    @classmethod
    def _string_ids(cls, nodes: Any) -> Any:
        if isinstance(nodes, dict):
            return {str(node_id): node for node_id, node in nodes.items()}
        return nodes

    @property
    def nodes(self) -> dict[str, ApiNode]:
        return self.root

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def find(self, ref: str) -> list[str]:
        """Node ids matching `ref`: an id, else a `_meta.title`, else a class_type."""
        if ref in self.root:
            return [ref]
        by_title = [nid for nid, node in self.root.items() if node.title == ref]
        return by_title or [nid for nid, node in self.root.items() if node.class_type == ref]
