"""Upscale-model nodes: load an ESRGAN-family model file and upscale images with it."""

from __future__ import annotations

import torch

from diffusion.upscale import load_upscale_model, upscale
from engine import IMAGE, Image, Input, Node, NodeContext, NodeInputError, Output, node
from engine.models import ModelManager
from nodes.loaders import FileLoader, folder_options, loading, model_path
from nodes.sd_types import UPSCALE_MODEL, UpscaleModel


@node(display_name="Load Upscale Model", category="loaders", outputs=[Output(UPSCALE_MODEL)])
class UpscaleModelLoader(FileLoader):
    """Load an upscale model (ESRGAN, RealESRGAN, SwinIR, … any single-image model spandrel reads)."""

    files = (("upscale_models", "model_name"),)
    model_name: str = Input(options=folder_options("upscale_models"), tooltip="The upscale model file to load.")

    def execute(self, ctx: NodeContext) -> UpscaleModel:
        path = model_path(ctx, "upscale_models", "model_name", self.model_name)
        return loading("model_name", lambda: load_upscale_model(path, ctx.services.get(ModelManager)))


@node(display_name="Upscale Image (using Model)", category="image/upscaling", outputs=[Output(IMAGE)])
class ImageUpscaleWithModel(Node):
    """Upscale images by the model's factor, in overlapping tiles (smaller ones when GPU memory runs out)."""

    upscale_model: UpscaleModel
    image: Image

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        channels, needed = self.image.shape[-1], self.upscale_model.input_channels
        if channels < needed:
            raise NodeInputError("image", f"has {channels} channels but the upscale model takes {needed}")
        return upscale(self.upscale_model, self.image, ctx.services.get(ModelManager), progress=ctx.progress)
