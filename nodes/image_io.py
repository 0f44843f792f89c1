"""Reading and writing image files: Load Image, Load Image (as Mask), Save Image, Preview Image
and Image Compare."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from PIL import Image as PILImage
from PIL import ImageOps, ImageSequence, UnidentifiedImageError

from engine import IMAGE, MASK, Image, Input, Node, NodeContext, NodeInputError, NodeResult, Output, Socket, node
from engine.folders import Folders
from engine.paths import UnsafePathError
from nodes.imaging import from_pil, prefix_folder, save_images, temp_prefix


def _input_images(folders: Folders) -> list[str]:
    return folders.list_images("input")


def _to_8bit(frame: PILImage.Image) -> PILImage.Image:
    """Scale 16/32-bit integer images by 1/255 before 8-bit conversion, as ComfyUI does."""
    return frame.point(lambda v: v * (1 / 255)) if frame.mode.startswith("I") else frame


def _alpha(frame: PILImage.Image) -> PILImage.Image | None:
    """The alpha band of a frame (palette transparency included), or None when it has none."""
    if "A" in frame.getbands():
        return frame.getchannel("A")
    if frame.mode == "P" and "transparency" in frame.info:
        return frame.convert("RGBA").getchannel("A")
    return None


class ImageFileNode(Node):
    """Base of the nodes that read one image file named by their `image` input.

    Names are relative to the input folder, or to another folder with a " [output]" or
    " [temp]" suffix, and may contain subfolders.
    """

    image: str = Input(options=_input_images, image_upload=True, validated_by_node=True)

    def file_path(self, ctx: NodeContext) -> Path:
        """The file the `image` input names; NodeInputError when it escapes its folder or is missing."""
        try:
            path = ctx.folders.resolve_annotated(self.image)
        except UnsafePathError as exc:
            raise NodeInputError("image", f"Invalid image file: {self.image} ({exc})") from None
        if not path.is_file():
            raise NodeInputError("image", f"Invalid image file: {self.image}")
        return path

    def open_image(self, ctx: NodeContext) -> PILImage.Image:
        """The named file opened with PIL; NodeInputError when it is not an image."""
        try:
            return PILImage.open(self.file_path(ctx))
        except (UnidentifiedImageError, OSError) as exc:
            raise NodeInputError("image", f"cannot read {self.image} as an image: {exc}") from None

    def check_inputs(self, ctx: NodeContext) -> str | None:
        if self.image is None:  # linked: nothing to check before it runs
            return None
        try:
            self.file_path(ctx)
        except NodeInputError as exc:
            return exc.reason
        return None

    def fingerprint(self, ctx: NodeContext) -> Any:
        """The file's sha256, so that replacing the file re-runs the node (NaN = always run when linked)."""
        if self.image is None:
            return float("nan")
        return hashlib.sha256(self.file_path(ctx).read_bytes()).hexdigest()


@node(display_name="Load Image", category="image", outputs=[Output(IMAGE), Output(MASK)])
class LoadImage(ImageFileNode):
    """Load an image file; every frame of an animation becomes one batch entry.

    The mask is 1 - alpha (zeros 64×64 when the file has no alpha). EXIF orientation is applied.
    """

    def execute(self, ctx: NodeContext) -> tuple[torch.Tensor, torch.Tensor]:
        images: list[torch.Tensor] = []
        alphas: list[PILImage.Image | None] = []
        with self.open_image(ctx) as file:
            # MPO files hold a second (stereo) view, not an animation: keep the first frame
            frames = itertools.islice(ImageSequence.Iterator(file), 1 if file.format == "MPO" else None)
            for frame in frames:
                frame = ImageOps.exif_transpose(frame)
                rgb = _to_8bit(frame).convert("RGB")
                if images and rgb.size != (images[0].shape[1], images[0].shape[0]):
                    continue
                images.append(from_pil(rgb))
                alphas.append(_alpha(frame))
        image = torch.stack(images)
        if all(a is None for a in alphas):
            return image, torch.zeros((len(images), 64, 64), dtype=torch.float32)
        opaque = torch.ones(image.shape[1:3], dtype=torch.float32)
        mask = torch.stack([opaque if a is None else from_pil(a) for a in alphas])
        return image, 1.0 - mask


@node(display_name="Load Image (as Mask)", category="mask", outputs=[Output(MASK)])
class LoadImageMask(ImageFileNode):
    """Load one channel of an image file as a mask (alpha is inverted: transparent = 1)."""

    channel: Literal["alpha", "red", "green", "blue"] = "alpha"

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        with self.open_image(ctx) as file:
            image = ImageOps.exif_transpose(file)
            if image.getbands() != ("R", "G", "B", "A"):
                image = _to_8bit(image).convert("RGBA")
            mask = from_pil(image.getchannel(self.channel[0].upper()))
        return (1.0 - mask if self.channel == "alpha" else mask).unsqueeze(0)


@node(display_name="Save Image", category="image", output_node=True, outputs=[])
class SaveImage(Node):
    """Save images as PNG files in the output folder, with the prompt and workflow embedded."""

    images: Image = Input(tooltip="The images to save.")
    filename_prefix: str = Input(
        "ComfyUI",
        tooltip="File name prefix; may include a subfolder and %width% %height% %year% %month% %day% "
        "%hour% %minute% %second% %date:yyyy-MM-dd% %batch_num%.",
    )

    def check_inputs(self, ctx: NodeContext) -> str | None:
        if self.filename_prefix is None:  # linked: checked when it runs
            return None
        try:
            prefix_folder(ctx, "output", self.filename_prefix)
        except NodeInputError as exc:
            return exc.reason
        return None

    def execute(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ui={"images": save_images(self.images, ctx, "output", self.filename_prefix, compress_level=4)})


@node(display_name="Preview Image", category="image", output_node=True, outputs=[])
class PreviewImage(Node):
    """Show images in the editor (saved as temporary files)."""

    images: Image

    def execute(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ui={"images": save_images(self.images, ctx, "temp", temp_prefix("ComfyUI"), compress_level=1)})


@node(display_name="Image Compare", category="image", output_node=True, outputs=[], experimental=True)
class ImageCompare(Node):
    """Compares two images side by side with a slider."""

    image_a: Image | None = None
    image_b: Image | None = None
    #: the editor's comparison widget; its value (the slider's state) is not used here
    compare_view: Annotated[Any, Socket("IMAGECOMPARE")] = Input(None, socketless=True)

    def execute(self, ctx: NodeContext) -> NodeResult:
        ui: dict[str, list[dict[str, Any]]] = {"a_images": [], "b_images": []}
        for key, images, prefix in (("a_images", self.image_a, "comfy.compare.a"), ("b_images", self.image_b, "comfy.compare.b")):
            if images is not None and len(images) > 0:
                ui[key] = save_images(images, ctx, "temp", temp_prefix(prefix), compress_level=1)
        return NodeResult(ui=ui)
