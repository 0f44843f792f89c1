"""ControlNet nodes: load ControlNets and T2I-Adapters, and apply them to conditioning."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from diffusion.control import APPLY_TO_UNCOND, Control
from diffusion.controlnet import ControlModel, control_model, diff_control_model
from engine import Image, Input, Node, NodeContext, Output, node
from engine.models import ModelManager
from nodes.imaging import common_upscale
from nodes.loaders import FileLoader, folder_options, loading, model_path
from nodes.sd_types import CONDITIONING, CONTROL_NET, Conditioning, ControlNet, Model, Vae

#: how a hint is fitted to the image being generated, as in ComfyUI
RESIZE_HINT = partial(common_upscale, method="nearest-exact", crop="center")
STRENGTH = dict(min=0.0, max=10.0, step=0.01)
PERCENT = dict(min=0.0, max=1.0, step=0.001)
NAME_TOOLTIP = ("A ControlNet (SD1.x, SD2.x or SDXL; original single file or diffusers weights) or a "
                "T2I-Adapter from the controlnet folder.")
VAE_TOOLTIP = ("Not used by the control models sdflow loads. In ComfyUI it encodes the hint for ControlNets "
               "that take it as a latent (SD3, Flux and similar); the SD1.x, SD2.x and SDXL ControlNets and "
               "T2I-Adapters sdflow supports take the hint as pixels, so a connected VAE changes nothing.")


@node(display_name="Load ControlNet Model", category="loaders", outputs=[Output(CONTROL_NET)])
class ControlNetLoader(FileLoader):
    """Load a ControlNet or T2I-Adapter."""

    files = (("controlnet", "control_net_name"),)
    control_net_name: str = Input(options=folder_options("controlnet"), tooltip=NAME_TOOLTIP)

    def execute(self, ctx: NodeContext) -> ControlModel:
        path = model_path(ctx, "controlnet", "control_net_name", self.control_net_name)
        return loading("control_net_name", lambda: control_model(path, ctx.services.get(ModelManager)))


@node(display_name="Load ControlNet Model (diff)", category="loaders", outputs=[Output(CONTROL_NET)])
class DiffControlNetLoader(FileLoader):
    """Load a ControlNet stored as differences to a model's weights, adding that model's UNet
    weights back (any other ControlNet loads as it is)."""

    files = (("controlnet", "control_net_name"),)
    model: Model = Input(tooltip="The model the ControlNet's differences were taken from.")
    control_net_name: str = Input(options=folder_options("controlnet"), tooltip=NAME_TOOLTIP)

    def execute(self, ctx: NodeContext) -> ControlModel:
        path = model_path(ctx, "controlnet", "control_net_name", self.control_net_name)
        return loading("control_net_name", lambda: diff_control_model(path, self.model, ctx.services.get(ModelManager)))


@node(display_name="Apply ControlNet (OLD)", category="conditioning/controlnet", deprecated=True, outputs=[Output(CONDITIONING)])
class ControlNetApply(Node):
    """Guide a conditioning with a ControlNet over the whole sampling; as in ComfyUI, the control
    also applies to the negative side when that has none of its own."""

    conditioning: Conditioning
    control_net: ControlNet
    image: Image
    strength: float = Input(1.0, **STRENGTH)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        if self.strength == 0:
            return self.conditioning
        (out,) = applied(ctx, [self.conditioning], self.control_net, self.image, self.strength, (0.0, 1.0), to_uncond=True)
        return out


@node(display_name="Apply ControlNet", category="conditioning/controlnet",
      outputs=[Output(CONDITIONING, "positive"), Output(CONDITIONING, "negative")])
class ControlNetApplyAdvanced(Node):
    """Guide sampling with a ControlNet or T2I-Adapter and a hint image (edges, depth, pose, ...).
    Applied again over its output, the controls add up."""

    positive: Conditioning
    negative: Conditioning
    control_net: ControlNet
    image: Image = Input(tooltip="The hint; it is resized (nearest, centre-cropped) to the image being generated.")
    strength: float = Input(1.0, **STRENGTH, tooltip="How strongly the control steers the image (0 turns it off).")
    start_percent: float = Input(0.0, **PERCENT, tooltip="When the control starts: 0 = the first step, 1 = the end.")
    end_percent: float = Input(1.0, **PERCENT, tooltip="When the control stops: 0 = the first step, 1 = the end.")
    vae: Vae | None = Input(None, tooltip=VAE_TOOLTIP)

    def execute(self, ctx: NodeContext) -> tuple[list[list[Any]], list[list[Any]]]:
        if self.strength == 0:
            return self.positive, self.negative
        window = (self.start_percent, self.end_percent)
        positive, negative = applied(ctx, [self.positive, self.negative], self.control_net, self.image, self.strength, window)
        return positive, negative


def applied(ctx: NodeContext, conditionings: list[list[list[Any]]], model: ControlModel, image: torch.Tensor, strength: float,
            window: tuple[float, float], to_uncond: bool = False) -> list[list[list[Any]]]:
    """Conditionings whose entries carry a new control over their current one; entries sharing a
    current control share the new one too (so that their UNet calls stay batched)."""
    place = ctx.services.get(ModelManager).use
    hint = image.movedim(-1, 1)
    made: dict[int, Control] = {}
    out = []
    for conditioning in conditionings:
        entries = []
        for cond, options in conditioning:
            previous = options.get("control")
            if id(previous) not in made:
                made[id(previous)] = Control(model, hint, strength, *window, place=place, resize=RESIZE_HINT, previous=previous)
            entries.append([cond, {**options, "control": made[id(previous)], APPLY_TO_UNCOND: to_uncond}])
        out.append(entries)
    return out
