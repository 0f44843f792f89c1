"""File routes: `GET /view`, `POST /upload/image`, `POST /upload/mask`.

Every name goes through the engine's one resolver (`Folders.resolve`). `/view` never serves
active content inline: HTML, SVG, XML, JavaScript and CSS come as `application/octet-stream`
attachments, and every file carries `X-Content-Type-Options: nosniff`. Uploads must be images.
"""

from __future__ import annotations

import asyncio
import io
import json
import mimetypes
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from engine.folders import IO_KINDS, split_annotation
from engine.paths import UnsafePathError, write_atomically
from http_api.security import error_response
from http_api.state import state

routes = web.RouteTableDef()

#: content types a browser would run or render as a document
ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xml", "application/javascript",
    "text/javascript", "text/css", "application/x-javascript",
})
PREVIEW_FORMATS = {"webp": ("WEBP", "image/webp"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg")}
CHANNELS = ("rgba", "rgb", "a")


class FileRequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        return error_response(self.status, "bad_file_request" if self.status == 400 else "not_found", str(self))


def _kind(value: str) -> str:
    if value not in IO_KINDS:
        raise FileRequestError(400, f"type must be one of {', '.join(IO_KINDS)}, not {value[:50]!r}")
    return value


def _resolve(request: web.Request, kind: str, subfolder: str, filename: str) -> Path:
    folders = state(request).runtime.folders
    if not filename:
        raise FileRequestError(400, "a file name is required")
    try:
        folders.resolve(kind, subfolder or ".")
        return folders.resolve(kind, f"{subfolder}/{filename}" if subfolder else filename)
    except UnsafePathError as exc:
        raise FileRequestError(400, f"refused file name: {exc}") from None


@routes.get("/view")
async def view(request: web.Request) -> web.StreamResponse:
    """A file from input/output/temp; `preview=webp;90` re-encodes, `channel=rgb|a|rgba` picks channels."""
    query = request.query
    try:
        filename, kind = split_annotation(query.get("filename", ""), query.get("type", "output"))
        path = _resolve(request, _kind(kind), query.get("subfolder", ""), filename)
        if not path.is_file():
            raise FileRequestError(404, f"no file {filename!r} in {kind}")
        channel = query.get("channel", "rgba")
        if channel not in CHANNELS:
            raise FileRequestError(400, f"channel must be one of {', '.join(CHANNELS)}")
        preview = query.get("preview")
        if preview is None and channel == "rgba":
            return _file_response(path)
        data, content_type = await asyncio.to_thread(_converted, path, channel, preview)
    except FileRequestError as exc:
        return exc.response()
    return web.Response(body=data, content_type=content_type, headers=_inline_headers(path.with_suffix(_extension(content_type)).name))


def _file_response(path: Path) -> web.FileResponse:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if _is_active(content_type):
        headers = {"Content-Type": "application/octet-stream", "Content-Disposition": f'attachment; filename="{_quoted(path.name)}"'}
    else:
        headers = {"Content-Type": content_type, **_inline_headers(path.name)}
    headers["X-Content-Type-Options"] = "nosniff"
    return web.FileResponse(path, headers=headers)


def _is_active(content_type: str) -> bool:
    """True for types a browser runs or renders as a document; every `+xml` type may carry script."""
    return content_type in ACTIVE_TYPES or content_type.endswith("+xml")


def _inline_headers(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="{_quoted(name)}"', "X-Content-Type-Options": "nosniff"}


def _quoted(name: str) -> str:
    return name.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")


def _extension(content_type: str) -> str:
    return {"image/webp": ".webp", "image/jpeg": ".jpg"}.get(content_type, ".png")


def _converted(path: Path, channel: str, preview: str | None) -> tuple[bytes, str]:
    """The image re-encoded for `preview` (`format;quality`) with the channels `channel` asks for."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGBA")
    except (UnidentifiedImageError, OSError):
        raise FileRequestError(400, f"{path.name} is not an image, so it has no channels or previews") from None
    if channel == "rgb":
        image = image.convert("RGB")
    elif channel == "a":
        alpha = image.getchannel("A")
        image = Image.new("RGBA", image.size, (0, 0, 0, 0))
        image.putalpha(alpha)
    output = io.BytesIO()
    if preview is None:
        image.save(output, format="PNG")
        return output.getvalue(), "image/png"
    name, _, quality_text = preview.partition(";")
    if name.lower() not in PREVIEW_FORMATS:
        raise FileRequestError(400, f"preview format must be one of {', '.join(PREVIEW_FORMATS)}, e.g. preview=webp;90")
    try:
        quality = int(quality_text) if quality_text else 90
    except ValueError:
        raise FileRequestError(400, f"preview quality must be a whole number, got {quality_text[:20]!r}") from None
    pil_format, content_type = PREVIEW_FORMATS[name.lower()]
    if pil_format == "JPEG":
        image = image.convert("RGB")
    image.save(output, format=pil_format, quality=max(1, min(quality, 100)))
    return output.getvalue(), content_type


# ---- uploads ------------------------------------------------------------------------------------


async def _upload_fields(request: web.Request) -> tuple[dict[str, Any], bytes, str]:
    """(form fields, image bytes, file name) of a multipart upload."""
    if not request.content_type.startswith("multipart/"):
        raise FileRequestError(400, "uploads are multipart/form-data with an 'image' file field")
    form = await request.post()
    image = form.get("image")
    if image is None or not hasattr(image, "file"):
        raise FileRequestError(400, "the upload has no 'image' file field")
    name = PurePosixPath(str(image.filename or "")).name if "/" not in str(image.filename or "") else ""
    if not name:
        raise FileRequestError(400, f"the uploaded file name {str(image.filename)[:100]!r} is not a plain file name")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return fields, image.file.read(), name


def _check_image(data: bytes, name: str) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:
        raise FileRequestError(400, f"{name} is not an image sdflow can read") from None


def _target(request: web.Request, fields: dict[str, Any], name: str) -> tuple[str, str, Path]:
    kind = _kind(fields.get("type") or "input")
    subfolder = fields.get("subfolder", "")
    path = _resolve(request, kind, subfolder, name)
    return kind, subfolder, path


def _free_name(path: Path, data: bytes, overwrite: bool) -> Path:
    """`path`, or `stem (n).ext` when another file already has that name (same bytes: reused)."""
    if overwrite or not path.exists():
        return path
    candidate, n = path, 0
    while candidate.exists():
        if candidate.is_file() and candidate.read_bytes() == data:
            return candidate
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def _save(path: Path, data: bytes, overwrite: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    final = _free_name(path, data, overwrite)
    write_atomically(final, data)
    return final


@routes.post("/upload/image")
async def upload_image(request: web.Request) -> web.Response:
    """Multipart `image`, `type` (input/temp/output), `subfolder`, `overwrite` → `{name, subfolder, type}`."""
    try:
        fields, data, name = await _upload_fields(request)
        _check_image(data, name)
        kind, subfolder, path = _target(request, fields, name)
        final = await asyncio.to_thread(_save, path, data, fields.get("overwrite", "").lower() in ("true", "1"))
    except FileRequestError as exc:
        return exc.response()
    return web.json_response({"name": final.name, "subfolder": subfolder, "type": kind})


@routes.post("/upload/mask")
async def upload_mask(request: web.Request) -> web.Response:
    """As /upload/image, plus `original_ref` (JSON `{filename, subfolder, type}`): the uploaded
    image's alpha is put onto the original, saved as a new PNG that keeps the original's text chunks."""
    try:
        fields, data, name = await _upload_fields(request)
        _check_image(data, name)
        reference = _original_ref(fields.get("original_ref"))
        original = _resolve(request, _kind(reference.get("type") or "input"), reference.get("subfolder") or "", reference.get("filename") or "")
        if not original.is_file():
            raise FileRequestError(404, f"the original image {reference.get('filename')!r} does not exist")
        combined = await asyncio.to_thread(_apply_alpha, original, data)
        kind, subfolder, path = _target(request, fields, name)
        final = await asyncio.to_thread(_save, path, combined, fields.get("overwrite", "").lower() in ("true", "1"))
    except FileRequestError as exc:
        return exc.response()
    return web.json_response({"name": final.name, "subfolder": subfolder, "type": kind})


def _original_ref(text: Any) -> dict[str, Any]:
    try:
        reference = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        reference = None
    if not isinstance(reference, dict) or not all(isinstance(reference.get(key) or "", str) for key in ("filename", "subfolder", "type")):
        raise FileRequestError(400, "original_ref must be JSON like {\"filename\": ..., \"subfolder\": ..., \"type\": ...}")
    return reference


def _apply_alpha(original_path: Path, mask_data: bytes) -> bytes:
    try:
        with Image.open(original_path) as original:
            texts = {k: v for k, v in original.info.items() if isinstance(k, str) and isinstance(v, str)}
            image = original.convert("RGBA")
    except (UnidentifiedImageError, OSError):
        raise FileRequestError(400, f"the original {original_path.name} is not an image") from None
    with Image.open(io.BytesIO(mask_data)) as mask:
        alpha = mask.convert("RGBA").getchannel("A")
    if alpha.size != image.size:
        alpha = alpha.resize(image.size, Image.Resampling.BILINEAR)
    image.putalpha(alpha)
    metadata = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        metadata.add_text(key, value)
    output = io.BytesIO()
    image.save(output, format="PNG", pnginfo=metadata)
    return output.getvalue()
