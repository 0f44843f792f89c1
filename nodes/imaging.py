"""Image helpers shared by the image and mask nodes: PIL ↔ tensor conversion, resizing, batch
shapes and saving batches as PNG files. No node classes here.

Layouts follow ComfyUI: IMAGE `[B, H, W, C]` and MASK `[B, H, W]`, float32 in 0..1; resizing
works on `[B, C, H, W]` samples as `torch.nn.functional.interpolate` does.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import random
import re
import string
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from engine import NodeContext, NodeInputError
from engine.paths import UnsafePathError, write_atomically

# ---- conversion ---------------------------------------------------------------------------


def to_pil(image: torch.Tensor) -> PILImage.Image:
    """One image `[H, W, C]` (C = 1, 3 or 4) in 0..1 → an 8-bit PIL image (values truncated, as ComfyUI)."""
    array = np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return PILImage.fromarray(array)


def from_pil(image: PILImage.Image) -> torch.Tensor:
    """An 8-bit PIL image → float32 tensor in 0..1: `[H, W, C]`, or `[H, W]` for one band."""
    return torch.from_numpy(np.array(image).astype(np.float32) / 255.0)


def as_mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """A mask `[H, W]` or `[B, H, W]` (or `[B, 1, H, W]`) as `[B, H, W]`."""
    return mask.reshape(-1, mask.shape[-2], mask.shape[-1])


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Repeat (or cut) a batch along dim 0 so that it holds exactly `batch_size` entries."""
    count = tensor.shape[0]
    if count == batch_size:
        return tensor
    repeats = math.ceil(batch_size / count)
    return tensor.repeat(repeats, *[1] * (tensor.dim() - 1))[:batch_size]


# ---- resizing -----------------------------------------------------------------------------


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize `[B, C, H, W]` samples with PIL's Lanczos filter (through 8-bit images, as ComfyUI)."""
    resized = []
    for sample in samples:
        image = to_pil(sample.movedim(0, -1)).resize((width, height), resample=PILImage.Resampling.LANCZOS)
        pixels = from_pil(image)
        resized.append((pixels if pixels.dim() == 3 else pixels[..., None]).movedim(-1, 0))
    return torch.stack(resized).to(samples.dtype)


def center_crop(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Narrow `[..., H, W]` samples around their centre to the aspect ratio of `width × height`."""
    old_height, old_width = samples.shape[-2:]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    return samples[..., y : old_height - y, x : old_width - x]


def common_upscale(samples: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """Resize `[B, C, H, W]` samples to `width × height` (ComfyUI's `common_upscale`).

    `crop="center"` first narrows to the target aspect ratio; `method` is "lanczos" or an
    `interpolate` mode (nearest-exact, bilinear, area, bicubic, ...).
    """
    if crop == "center":
        samples = center_crop(samples, width, height)
    if method == "lanczos":
        return lanczos(samples, width, height)
    return F.interpolate(samples, size=(height, width), mode=method)


def scale_image(image: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """`common_upscale` for an IMAGE batch `[B, H, W, C]`."""
    return common_upscale(image.movedim(-1, 1), width, height, method, crop).movedim(1, -1)


# ---- saving -------------------------------------------------------------------------------

_DATE_TOKEN = re.compile(r"%date:([^%]*)%")
# the frontend's date format: yyyy/yy years; M, d, h, m, s (doubled = zero-padded)
_DATE_PART = re.compile(r"yyy?y?|MM?|dd?|hh?|mm?|ss?")
_BATCH_NUM = "%batch_num%"


def _date_part(token: str, now: datetime) -> str:
    if token == "yyyy":
        return f"{now.year:04}"
    if token == "yy":
        return f"{now.year % 100:02}"
    if token == "yyy":
        return token
    value = {"M": now.month, "d": now.day, "h": now.hour, "m": now.minute, "s": now.second}[token[0]]
    return str(value).zfill(len(token))


def expand_prefix(prefix: str, width: int, height: int, now: datetime) -> str:
    """Replace the filename-prefix tokens: %width% %height% %year% %month% %day% %hour% %minute%
    %second% and %date:FORMAT% (yyyy yy MM dd hh mm ss). %batch_num% is left for `save_images`."""
    text = _DATE_TOKEN.sub(lambda m: _DATE_PART.sub(lambda p: _date_part(p.group(), now), m.group(1)), prefix)
    values = {
        "width": str(width),
        "height": str(height),
        "year": str(now.year),
        "month": f"{now.month:02}",
        "day": f"{now.day:02}",
        "hour": f"{now.hour:02}",
        "minute": f"{now.minute:02}",
        "second": f"{now.second:02}",
    }
    for name, value in values.items():
        text = text.replace(f"%{name}%", value)
    return text


def next_counter(folder: Path, name: str) -> int:
    """1 + the highest counter among files named `<name>_<counter>_...` in `folder` (1 if none).

    A `%batch_num%` in `name` matches any batch index, so batches never overwrite earlier files.
    """
    stem = r"\d+".join(re.escape(part) for part in name.split(_BATCH_NUM))
    pattern = re.compile(stem + r"_(\d+)(?:_|$)")
    counters = [int(m.group(1)) for entry in folder.iterdir() if (m := pattern.match(entry.name))]
    return max(counters, default=0) + 1


def png_metadata(ctx: NodeContext) -> PngInfo | None:
    """tEXt chunks ComfyUI embeds: `prompt` and one per `extra_pnginfo` key (JSON); None if both are empty."""
    if not ctx.prompt and not ctx.extra_pnginfo:
        return None
    info = PngInfo()
    if ctx.prompt:
        info.add_text("prompt", json.dumps(ctx.prompt))
    for key, value in ctx.extra_pnginfo.items():
        info.add_text(key, json.dumps(value))
    return info


def temp_prefix(base: str) -> str:
    """A preview prefix with a random suffix, as ComfyUI's PreviewImage: `<base>_temp_abcde`."""
    return f"{base}_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))


def prefix_folder(ctx: NodeContext, kind: str, filename_prefix: str, width: int = 0, height: int = 0) -> tuple[Path, str]:
    """(folder, file name stem) a prefix like "a/b/name" names inside the `kind` folder.

    Raises NodeInputError for a prefix that leaves the folder."""
    prefix = posixpath.normpath(expand_prefix(filename_prefix, width, height, datetime.now()).replace("\\", "/"))
    subfolder, name = posixpath.split(prefix)
    try:
        return ctx.folders.resolve(kind, subfolder), name
    except UnsafePathError as exc:
        raise NodeInputError("filename_prefix", str(exc)) from None


def save_images(images: torch.Tensor, ctx: NodeContext, kind: str, filename_prefix: str, compress_level: int) -> list[dict[str, Any]]:
    """Save an IMAGE batch as PNGs in the `kind` folder (output or temp); returns the UI entries.

    Files are `<prefix>_<counter:05>_.png`; the prefix may name a subfolder ("a/b/name") and
    carry the tokens of `expand_prefix`. Escaping the folder raises NodeInputError.
    """
    height, width = images.shape[1], images.shape[2]
    folder, name = prefix_folder(ctx, kind, filename_prefix, width, height)
    folder.mkdir(parents=True, exist_ok=True)
    relative = folder.relative_to(ctx.folders.root(kind))
    shown_subfolder = "" if relative == Path(".") else relative.as_posix()
    metadata = png_metadata(ctx)
    counter = next_counter(folder, name)
    results = []
    for batch_number, image in enumerate(images):
        filename = f"{name.replace(_BATCH_NUM, str(batch_number))}_{counter:05}_.png"
        buffer = io.BytesIO()
        to_pil(image).save(buffer, format="PNG", pnginfo=metadata, compress_level=compress_level)
        write_atomically(folder / filename, buffer.getvalue())
        results.append({"filename": filename, "subfolder": shown_subfolder, "type": kind})
        counter += 1
    return results
