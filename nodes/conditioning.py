"""Text conditioning nodes: prompts through CLIP, CLIP skip, SDXL's size and aesthetic conditions."""

from __future__ import annotations

from typing import Any

import torch

from diffusion.handles import ClipHandle
from engine import MAX_RESOLUTION, Input, Node, NodeContext, NodeInputError, Output, node
from engine.models import ModelManager
from nodes.sd_types import CLIP, CONDITIONING, Clip, Conditioning

PROMPT = dict(multiline=True, dynamicPrompts=True)


def encode(ctx: NodeContext, clip: ClipHandle, text: str | dict[str, str], **options: Any) -> list[list[Any]]:
    """One conditioning entry: [cond, {"pooled_output": pooled, **options}], as ComfyUI's."""
    embedding_dirs = ctx.folders.models.paths("embeddings")
    cond, pooled = clip.encode(text, ctx.services.get(ModelManager), embedding_dirs)
    return [[cond, {"pooled_output": pooled, **options}]]


@node(display_name="CLIP Text Encode (Prompt)", category="conditioning", outputs=[Output(CONDITIONING)])
class CLIPTextEncode(Node):
    """Encode a prompt with a CLIP model into conditioning that guides the diffusion model.

    `(words)` weighs words 1.1×, `(words:1.3)` sets a weight, `\\(` is a literal bracket and
    `embedding:name` inserts a textual-inversion embedding from the embeddings folder."""

    text: str = Input("", tooltip="The text to be encoded.", **PROMPT)
    clip: Clip = Input(tooltip="The CLIP model used for encoding the text.")

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        return encode(ctx, self.clip, self.text)


@node(display_name="CLIP Set Last Layer", category="conditioning", outputs=[Output(CLIP)])
class CLIPSetLastLayer(Node):
    """Stop CLIP at an earlier layer ("CLIP skip"): -1 is the last layer, -2 the one before."""

    clip: Clip
    stop_at_clip_layer: int = Input(-1, min=-24, max=-1, step=1)

    def execute(self, ctx: NodeContext) -> ClipHandle:
        return self.clip.with_layer(self.stop_at_clip_layer)


@node(display_name="CLIP Text Encode (SDXL)", category="advanced/conditioning", outputs=[Output(CONDITIONING)])
class CLIPTextEncodeSDXL(Node):
    """Encode SDXL prompts with separate texts for its two encoders and explicit size conditions."""

    clip: Clip
    width: int = Input(1024, min=0, max=MAX_RESOLUTION)
    height: int = Input(1024, min=0, max=MAX_RESOLUTION)
    crop_w: int = Input(0, min=0, max=MAX_RESOLUTION)
    crop_h: int = Input(0, min=0, max=MAX_RESOLUTION)
    target_width: int = Input(1024, min=0, max=MAX_RESOLUTION)
    target_height: int = Input(1024, min=0, max=MAX_RESOLUTION)
    text_g: str = Input("", **PROMPT)
    text_l: str = Input("", **PROMPT)

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        if self.clip.keys != ("clip_l", "clip_g"):
            raise NodeInputError("clip", f"needs SDXL's two text encoders (clip_l and clip_g), got {', '.join(self.clip.keys)}")
        sizes = dict(width=self.width, height=self.height, crop_w=self.crop_w, crop_h=self.crop_h,
                     target_width=self.target_width, target_height=self.target_height)
        return encode(ctx, self.clip, {"clip_g": self.text_g, "clip_l": self.text_l}, **sizes)


@node(display_name="CLIP Text Encode (SDXL Refiner)", category="advanced/conditioning", outputs=[Output(CONDITIONING)])
class CLIPTextEncodeSDXLRefiner(Node):
    """Encode a prompt for the SDXL refiner with its aesthetic score and size conditions."""

    ascore: float = Input(6.0, min=0.0, max=1000.0, step=0.01)
    width: int = Input(1024, min=0, max=MAX_RESOLUTION)
    height: int = Input(1024, min=0, max=MAX_RESOLUTION)
    text: str = Input("", **PROMPT)
    clip: Clip

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        return encode(ctx, self.clip, self.text, aesthetic_score=self.ascore, width=self.width, height=self.height)


@node(display_name="Conditioning Zero Out", category="advanced/conditioning", outputs=[Output(CONDITIONING)])
class ConditioningZeroOut(Node):
    """Replace conditioning (and its pooled output) with zeros of the same shape."""

    conditioning: Conditioning

    def execute(self, ctx: NodeContext) -> list[list[Any]]:
        zeroed = []
        for cond, options in self.conditioning:
            options = dict(options)
            if options.get("pooled_output") is not None:
                options["pooled_output"] = torch.zeros_like(options["pooled_output"])
            zeroed.append([torch.zeros_like(cond), options])
        return zeroed
