"""Loader nodes: checkpoints, diffusion models, VAEs and text encoders from the model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from diffusion.families import ModelFormatError, config_prediction
from diffusion.handles import ClipHandle, ModelHandle, VaeHandle
from diffusion.model_files import checkpoint_handles, clip_handle, unet_handle, vae_handle
from engine import ExecutionBlocker, Input, Node, NodeContext, NodeInputError, Output, node
from engine.folders import Folders
from engine.models import ModelManager, file_key
from nodes.sd_types import CLIP, MODEL, VAE

ClipDevice = Literal["default", "cpu"]


def folder_options(key: str) -> Callable[[Folders], list[str]]:
    """Options provider: the files of a model folder key."""
    return lambda folders: folders.models.list(key)


def model_path(ctx: NodeContext, key: str, input_name: str, name: str) -> Path:
    """The file a loader input names; NodeInputError when it does not exist."""
    try:
        return ctx.folders.models.find(key, name)
    except FileNotFoundError as exc:
        raise NodeInputError(input_name, str(exc)) from None


def loading(input_name: str, load: Callable[[], Any]) -> Any:
    """Run a load; a file that is not a usable model becomes a clear input error."""
    try:
        return load()
    except ModelFormatError as exc:
        raise NodeInputError(input_name, str(exc)) from None


def missing(part: str, name: str) -> ExecutionBlocker:
    """The output for a part the checkpoint lacks: nodes using it fail with this reason."""
    return ExecutionBlocker(f"{name} contains no {part}; load one separately")


class FileLoader(Node):
    """Base of loaders: their cache key includes each file's identity (path, size, modification
    time), so replacing a file under the same name loads it again."""

    #: (model folder key, input name) of every file the loader reads
    files: ClassVar[tuple[tuple[str, str], ...]] = ()

    def fingerprint(self, ctx: NodeContext) -> Any:
        return tuple(_identity(ctx, key, getattr(self, name)) for key, name in self.files)


def _identity(ctx: NodeContext, key: str, name: str | None) -> Any:
    try:
        path = ctx.folders.models.find(key, name or "")
    except FileNotFoundError:
        return None  # validation reports it
    return file_key(path / "model_index.json" if path.is_dir() else path)


@node(display_name="Load Checkpoint", category="loaders", outputs=[Output(MODEL), Output(CLIP), Output(VAE)])
class CheckpointLoaderSimple(FileLoader):
    """Load a Stable Diffusion checkpoint (single file or diffusers folder): its model, text
    encoders and VAE. SD1.x, SD2.x (eps and v) and SDXL base and refiner are recognised."""

    files = (("checkpoints", "ckpt_name"),)
    ckpt_name: str = Input(options=folder_options("checkpoints"), tooltip="The name of the checkpoint (model) to load.")

    def execute(self, ctx: NodeContext) -> tuple[Any, Any, Any]:
        path = model_path(ctx, "checkpoints", "ckpt_name", self.ckpt_name)
        model, clip, vae = loading("ckpt_name", lambda: checkpoint_handles(path, ctx.services.get(ModelManager)))
        return model, clip or missing("text encoder", path.name), vae or missing("VAE", path.name)


@node(display_name="Load Checkpoint With Config (DEPRECATED)", category="advanced/loaders", deprecated=True,
      outputs=[Output(MODEL), Output(CLIP), Output(VAE)])
class CheckpointLoader(FileLoader):
    """Load a checkpoint with an original-format model config (.yaml) that sets its prediction type."""

    files = (("configs", "config_name"), ("checkpoints", "ckpt_name"))
    config_name: str = Input(options=folder_options("configs"))
    ckpt_name: str = Input(options=folder_options("checkpoints"))

    def execute(self, ctx: NodeContext) -> tuple[Any, Any, Any]:
        config = model_path(ctx, "configs", "config_name", self.config_name)
        path = model_path(ctx, "checkpoints", "ckpt_name", self.ckpt_name)
        prediction = loading("config_name", lambda: config_prediction(config))
        model, clip, vae = loading("ckpt_name", lambda: checkpoint_handles(path, ctx.services.get(ModelManager), prediction))
        return model, clip or missing("text encoder", path.name), vae or missing("VAE", path.name)


@node(display_name="Diffusers Loader", category="advanced/loaders/deprecated", deprecated=True,
      outputs=[Output(MODEL), Output(CLIP), Output(VAE)])
class DiffusersLoader(FileLoader):
    """Load a diffusers-format model folder from the diffusers models folder."""

    files = (("diffusers", "model_path"),)
    model_path: str = Input(options=folder_options("diffusers"))

    def execute(self, ctx: NodeContext) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
        path = model_path(ctx, "diffusers", "model_path", self.model_path)
        model, clip, vae = loading("model_path", lambda: checkpoint_handles(path, ctx.services.get(ModelManager)))
        return model, clip or missing("text encoder", path.name), vae or missing("VAE", path.name)


@node(display_name="Load Diffusion Model", category="advanced/loaders", outputs=[Output(MODEL)])
class UNETLoader(FileLoader):
    """Load a diffusion model (UNet) file on its own, optionally stored in 8-bit floats."""

    files = (("diffusion_models", "unet_name"),)
    unet_name: str = Input(options=folder_options("diffusion_models"))
    weight_dtype: Literal["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"] = "default"

    def execute(self, ctx: NodeContext) -> ModelHandle:
        path = model_path(ctx, "diffusion_models", "unet_name", self.unet_name)
        return loading("unet_name", lambda: unet_handle(path, ctx.services.get(ModelManager), self.weight_dtype))


@node(display_name="Load VAE", category="loaders", outputs=[Output(VAE)])
class VAELoader(FileLoader):
    """Load a VAE file (original or diffusers names)."""

    files = (("vae", "vae_name"),)
    vae_name: str = Input(options=folder_options("vae"))

    def execute(self, ctx: NodeContext) -> VaeHandle:
        path = model_path(ctx, "vae", "vae_name", self.vae_name)
        return loading("vae_name", lambda: vae_handle(path, ctx.services.get(ModelManager)))


@node(display_name="Load CLIP", category="advanced/loaders", outputs=[Output(CLIP)])
class CLIPLoader(FileLoader):
    """Load a text encoder file: OpenAI CLIP-L for SD1.x or OpenCLIP-H for SD2.x."""

    files = (("text_encoders", "clip_name"),)
    clip_name: str = Input(options=folder_options("text_encoders"))
    type: Literal["stable_diffusion"] = "stable_diffusion"
    device: ClipDevice | None = Input("default", tooltip="cpu keeps the text encoder on the CPU")

    def execute(self, ctx: NodeContext) -> ClipHandle:
        path = model_path(ctx, "text_encoders", "clip_name", self.clip_name)
        manager = ctx.services.get(ModelManager)
        return loading("clip_name", lambda: clip_handle([path], manager, sdxl=False, device=self.device or "default"))


@node(display_name="Load Dual CLIP", category="advanced/loaders", outputs=[Output(CLIP)])
class DualCLIPLoader(FileLoader):
    """Load SDXL's two text encoders (CLIP-L and OpenCLIP-G, in either order)."""

    files = (("text_encoders", "clip_name1"), ("text_encoders", "clip_name2"))
    clip_name1: str = Input(options=folder_options("text_encoders"))
    clip_name2: str = Input(options=folder_options("text_encoders"))
    type: Literal["sdxl"] = "sdxl"
    device: ClipDevice | None = Input("default", tooltip="cpu keeps the text encoders on the CPU")

    def execute(self, ctx: NodeContext) -> ClipHandle:
        paths = [model_path(ctx, "text_encoders", name, getattr(self, name)) for name in ("clip_name1", "clip_name2")]
        manager = ctx.services.get(ModelManager)
        return loading("clip_name1", lambda: clip_handle(paths, manager, sdxl=True, device=self.device or "default"))

