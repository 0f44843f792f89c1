"""LoRA nodes: patch a MODEL (and CLIP) with a LoRA, LoCon, LoHa, LoKr or full-difference file."""

from __future__ import annotations

from typing import Any

from diffusion.lora import Applied, apply_lora, load_lora
from engine import Input, NodeContext, Output, node
from engine.models import ModelManager
from nodes.loaders import FileLoader, folder_options, loading, model_path
from nodes.sd_types import CLIP, MODEL, Clip, Model

STRENGTH = dict(min=-100.0, max=100.0, step=0.01)


def _apply(ctx: NodeContext, lora_name: str, model: Any, clip: Any, strength_model: float, strength_clip: float) -> Applied:
    """Read the node's LoRA file and apply it; what did not fit is reported as a warning."""
    path = model_path(ctx, "loras", "lora_name", lora_name)
    lora = loading("lora_name", lambda: load_lora(path, ctx.services.get(ModelManager)))
    applied = loading("lora_name", lambda: apply_lora(lora, model, clip, strength_model, strength_clip))
    for note in applied.notes:
        ctx.warn(f"{path.name}: {note}; those were not applied")
    return applied


@node(display_name="Load LoRA", category="loaders", outputs=[Output(MODEL), Output(CLIP)])
class LoraLoader(FileLoader):
    """Apply a LoRA to the diffusion model and the text encoder, each with its own strength.

    Several LoRAs stack when chained. A strength of 0 leaves that part unchanged; negative
    strengths push away from what the LoRA learned."""

    files = (("loras", "lora_name"),)
    model: Model = Input(tooltip="The diffusion model the LoRA will be applied to.")
    clip: Clip = Input(tooltip="The CLIP model the LoRA will be applied to.")
    lora_name: str = Input(options=folder_options("loras"), tooltip="The name of the LoRA.")
    strength_model: float = Input(1.0, **STRENGTH, tooltip="How strongly to modify the diffusion model. This value can be negative.")
    strength_clip: float = Input(1.0, **STRENGTH, tooltip="How strongly to modify the CLIP model. This value can be negative.")

    def execute(self, ctx: NodeContext) -> tuple[Any, Any]:
        if self.strength_model == 0 and self.strength_clip == 0:
            return self.model, self.clip
        applied = _apply(ctx, self.lora_name, self.model, self.clip, self.strength_model, self.strength_clip)
        return applied.model, applied.clip


@node(display_name="Load LoRA (Model Only)", category="loaders", outputs=[Output(MODEL)])
class LoraLoaderModelOnly(FileLoader):
    """Apply a LoRA to the diffusion model only (its text encoder layers, if any, are left out)."""

    files = (("loras", "lora_name"),)
    model: Model = Input(tooltip="The diffusion model the LoRA will be applied to.")
    lora_name: str = Input(options=folder_options("loras"), tooltip="The name of the LoRA.")
    strength_model: float = Input(1.0, **STRENGTH, tooltip="How strongly to modify the diffusion model. This value can be negative.")

    def execute(self, ctx: NodeContext) -> Any:
        if self.strength_model == 0:
            return self.model
        return _apply(ctx, self.lora_name, self.model, None, self.strength_model, 0.0).model
