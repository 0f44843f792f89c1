"""ComfyUI's UI ("workflow") format, as the editor saves it: schema 0.4 and schema 1.

Only what conversion needs is modelled; everything else is accepted and ignored. Links come as
0.4 lists `[id, origin_id, origin_slot, target_id, target_slot, type]` or as v1 objects; both
become `UiLink`. Subgraph definitions (`definitions.subgraphs`) are graphs of the same shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ids of a subgraph's own input and output nodes inside its definition
SUBGRAPH_INPUT_ID = -10
SUBGRAPH_OUTPUT_ID = -20

MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class UiLink(_Lenient):
    id: int
    origin_id: int | str
    origin_slot: int
    target_id: int | str
    target_slot: int
    type: Any = "*"

    @classmethod
    def parse(cls, raw: Any) -> "UiLink":
        if isinstance(raw, (list, tuple)):
            keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
            return cls(**dict(zip(keys, raw)))
        return cls.model_validate(raw)


class UiInput(_Lenient):
    name: str
    type: Any = "*"
    link: int | None = None
    widget: dict[str, Any] | None = None

    @property
    def widget_name(self) -> str | None:
        return self.widget.get("name") if self.widget else None


class UiOutput(_Lenient):
    name: str = ""
    type: Any = "*"
    links: list[int] | None = None


class UiNode(_Lenient):
    id: int | str
    type: str
    mode: int = MODE_ALWAYS
    order: int = 0
    title: str | None = None
    inputs: list[UiInput] = Field(default_factory=list)
    outputs: list[UiOutput] = Field(default_factory=list)
    widgets_values: list[Any] | dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("inputs", "outputs", "properties", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return {} if info.field_name == "properties" else []
        return value


class UiGraph(_Lenient):
    """A graph level: the workflow itself or one subgraph definition."""

    nodes: list[UiNode] = Field(default_factory=list)
    links: list[UiLink] = Field(default_factory=list)

    @field_validator("links", mode="before")
    @classmethod
    def _parse_links(cls, links: Any) -> Any:
        return [UiLink.parse(raw) for raw in links or [] if raw is not None]


class UiSubgraphIO(_Lenient):
    name: str = ""
    type: Any = "*"
    linkIds: list[int] | None = None


class UiSubgraph(UiGraph):
    id: str
    name: str = ""
    inputs: list[UiSubgraphIO] = Field(default_factory=list)
    outputs: list[UiSubgraphIO] = Field(default_factory=list)


class UiDefinitions(_Lenient):
    subgraphs: list[UiSubgraph] = Field(default_factory=list)


class UiWorkflow(UiGraph):
    version: float | int | None = None
    definitions: UiDefinitions | None = None

    def subgraphs(self) -> dict[str, UiSubgraph]:
        """Every subgraph definition by id, nested definitions included."""
        found: dict[str, UiSubgraph] = {}
        pending = list(self.definitions.subgraphs if self.definitions else [])
        while pending:
            sub = pending.pop()
            found[sub.id] = sub
            nested = getattr(sub, "definitions", None)
            if isinstance(nested, dict):
                pending += [UiSubgraph.model_validate(s) for s in nested.get("subgraphs", [])]
        return found


def is_ui_workflow(data: Any) -> bool:
    """True for the editor's format (a `nodes` list), False for an API prompt."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)
