"""Conditioning nodes that combine conditionings or set options on them: areas, masks, strengths,
timestep ranges. Entries are `[cond [1, tokens, dim], options]`; every node builds new entries
and option dicts, leaving its inputs unchanged."""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from engine import MAX_RESOLUTION, Input, Mask, Node, NodeContext, Output, node
from nodes.sd_types import CONDITIONING, Conditioning

log = logging.getLogger(__name__)

STRENGTH = dict(min=0.0, max=10.0, step=0.01)
PERCENT = dict(min=0.0, max=1.0, step=0.01)


def set_values(conditioning: list[list[Any]], **values: Any) -> list[list[Any]]:
    """A copy of a conditioning with `values` set in every entry's options."""
    return [[cond, {**options, **values}] for cond, options in conditioning]


def _first_cond(conditioning_from: list[list[Any]], class_type: str) -> list[Any]:
    if len(conditioning_from) > 1:
        log.warning("%s: conditioning_from holds %d entries; only the first one is used", class_type, len(conditioning_from))
    return conditioning_from[0]


@node(display_name="Conditioning (Combine)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningCombine(Node):
    """Use both conditionings: the model's predictions for each are averaged while sampling."""

    conditioning_1: Conditioning
    conditioning_2: Conditioning

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        return [*self.conditioning_1, *self.conditioning_2]


@node(display_name="Conditioning (Average)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningAverage(Node):
    """Blend conditioning_to with the first entry of conditioning_from: to × strength + from ×
    (1 - strength), token by token (from is cut or zero-padded to the length of to)."""

    conditioning_to: Conditioning
    conditioning_from: Conditioning
    conditioning_to_strength: float = Input(1.0, min=0.0, max=1.0, step=0.01)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        cond_from, options_from = _first_cond(self.conditioning_from, ctx.class_type)
        pooled_from = options_from.get("pooled_output")
        strength = self.conditioning_to_strength
        out = []
        for cond_to, options_to in self.conditioning_to:
            tokens = cond_to.shape[1]
            other = cond_from[:, :tokens].to(cond_to)
            if other.shape[1] < tokens:
                padding = other.new_zeros(other.shape[0], tokens - other.shape[1], other.shape[2])
                other = torch.cat((other, padding), dim=1)
            options = dict(options_to)
            pooled_to = options.get("pooled_output")
            if pooled_from is not None and pooled_to is not None:
                options["pooled_output"] = pooled_to * strength + pooled_from * (1.0 - strength)
            elif pooled_from is not None:
                options["pooled_output"] = pooled_from
            out.append([cond_to * strength + other * (1.0 - strength), options])
        return out


@node(display_name="Conditioning (Concat)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningConcat(Node):
    """Append the tokens of conditioning_from's first entry to each entry of conditioning_to."""

    conditioning_to: Conditioning
    conditioning_from: Conditioning

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        cond_from = _first_cond(self.conditioning_from, ctx.class_type)[0]
        return [[torch.cat((cond, cond_from.to(cond)), dim=1), dict(options)] for cond, options in self.conditioning_to]


@node(display_name="Conditioning (Set Area)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningSetArea(Node):
    """Apply a conditioning to a rectangle of the image only (in pixels), with a strength."""

    conditioning: Conditioning
    width: int = Input(64, min=64, max=MAX_RESOLUTION, step=8)
    height: int = Input(64, min=64, max=MAX_RESOLUTION, step=8)
    x: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    y: int = Input(0, min=0, max=MAX_RESOLUTION, step=8)
    strength: float = Input(1.0, **STRENGTH)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        area = (self.height // 8, self.width // 8, self.y // 8, self.x // 8)
        return set_values(self.conditioning, area=area, strength=self.strength, set_area_to_bounds=False)


@node(display_name="Conditioning (Set Area with Percentage)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningSetAreaPercentage(Node):
    """Apply a conditioning to a rectangle given as fractions of the image size."""

    conditioning: Conditioning
    width: float = Input(1.0, **PERCENT)
    height: float = Input(1.0, **PERCENT)
    x: float = Input(0.0, **PERCENT)
    y: float = Input(0.0, **PERCENT)
    strength: float = Input(1.0, **STRENGTH)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        area = ("percentage", self.height, self.width, self.y, self.x)
        return set_values(self.conditioning, area=area, strength=self.strength, set_area_to_bounds=False)


@node(display_name="Conditioning (Set Area Strength)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningSetAreaStrength(Node):
    """Set how strongly a conditioning counts where conditionings are combined."""

    conditioning: Conditioning
    strength: float = Input(1.0, **STRENGTH)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        return set_values(self.conditioning, strength=self.strength)


@node(display_name="Conditioning (Set Mask)", category="conditioning", outputs=[Output(CONDITIONING)])
class ConditioningSetMask(Node):
    """Apply a conditioning where a mask is set; "mask bounds" samples the mask's bounding box
    at full resolution for this conditioning."""

    conditioning: Conditioning
    mask: Mask
    strength: float = Input(1.0, **STRENGTH)
    set_cond_area: Literal["default", "mask bounds"] = "default"

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        mask = self.mask if self.mask.dim() >= 3 else self.mask.unsqueeze(0)
        return set_values(self.conditioning, mask=mask, set_area_to_bounds=self.set_cond_area != "default", mask_strength=self.strength)


@node(display_name="Conditioning (Set Timestep Range)", category="advanced/conditioning", outputs=[Output(CONDITIONING)])
class ConditioningSetTimestepRange(Node):
    """Apply a conditioning only between two points of the sampling (0 = first step, 1 = end)."""

    conditioning: Conditioning
    start: float = Input(0.0, min=0.0, max=1.0, step=0.001)
    end: float = Input(1.0, min=0.0, max=1.0, step=0.001)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        return set_values(self.conditioning, start_percent=self.start, end_percent=self.end)
