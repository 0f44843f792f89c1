"""File routes over real HTTP: `/upload/image`, `/upload/mask`, `/view` (previews, channels, active
content), and the path-traversal suite that every route taking a file name must pass: `/view`,
both uploads, `/extensions/<pack>/<path>`, the editor's static files and LoadImage via `/prompt`.

The traversal tests run a server whose base folder sits two levels below the test's folder, with
a secret image at every level above input/output/temp (and symlinks inside them pointing out), so
a route that escapes would serve the secret or change a file outside; both are checked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from PIL import Image, PngImagePlugin

from engine.runtime import Runtime, Settings
from http_api.state import ServerOptions
from tests.server.helpers import wait_for

SECRET = b"sdflow-secret-marker-7f3a"
BOUNDARY = "sdflow-test-boundary-91c2"


# ---- helpers ------------------------------------------------------------------------------------------


def png(color: tuple[int, ...] = (200, 30, 40, 255), size: tuple[int, int] = (8, 6), text: dict[str, str] | None = None) -> bytes:
    """A PNG of one colour (RGBA when `color` has four values) with optional text chunks."""
    image = Image.new("RGBA" if len(color) == 4 else "RGB", size, color)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def colors(image: Image.Image) -> set[Any]:
    """The distinct pixel values of an image."""
    return {color for _, color in image.getcolors(image.width * image.height)}


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def multipart(fields: dict[str, str], filename: str | None = "a.png", data: bytes = b"", field: str = "image") -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body. The file name travels as RFC 5987 `filename*` when it holds
    characters a quoted string would change (backslash, quote, controls), so the server sees it exactly."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        for key, value in fields.items()
    ]
    if filename is not None:
        plain = filename.isprintable() and not any(c in filename for c in '\\"')
        disposition = f'filename="{filename}"' if plain else f"filename*=UTF-8''{quote(filename, safe='')}"
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; {disposition}\r\nContent-Type: image/png\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def upload(server, data: bytes, filename: str | None = "a.png", route: str = "/upload/image", **fields: str):
    body, headers = multipart(fields, filename, data)
    return server.call("POST", route, raw=body, headers=headers)


def view(server, **query: str):
    return server.get(f"/view?{urlencode(query)}")


def assert_json_error(reply, status: int | tuple[int, ...]) -> dict[str, Any]:
    expected = status if isinstance(status, tuple) else (status,)
    assert reply.status in expected, (reply.status, reply.body[:300])
    error = reply.json()["error"]
    assert error["type"] and error["message"]
    return error


def load_and_preview(image: str) -> dict[str, Any]:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def run_prompt(server, prompt: dict[str, Any]) -> dict[str, Any]:
    """Queue `prompt`, wait for its history entry and return it."""
    reply = server.post("/prompt", {"prompt": prompt})
    assert reply.status == 200, reply.body
    prompt_id = reply.json()["prompt_id"]
    return wait_for(lambda: server.get(f"/history/{prompt_id}").json().get(prompt_id))


# ---- /upload/image ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["input", "temp", "output", None])
def test_upload_lands_in_its_folder(server, server_runtime, kind) -> None:
    data = png()
    fields = {"type": kind} if kind else {}
    reply = upload(server, data, "pic.png", **fields)
    assert reply.status == 200
    assert reply.json() == {"name": "pic.png", "subfolder": "", "type": kind or "input"}
    assert (server_runtime.folders.root(kind or "input") / "pic.png").read_bytes() == data


def test_upload_names_collisions_and_overwrite(server, server_runtime) -> None:
    folder = server_runtime.folders.root("input")
    first, second, third = png((1, 2, 3)), png((4, 5, 6)), png((7, 8, 9))
    assert upload(server, first, "same.png").json()["name"] == "same.png"
    assert upload(server, second, "same.png").json()["name"] == "same (1).png"
    assert upload(server, first, "same.png").json()["name"] == "same.png"  # identical bytes: reused
    assert upload(server, second, "same.png").json()["name"] == "same (1).png"
    assert upload(server, third, "same.png").json()["name"] == "same (2).png"
    assert (folder / "same.png").read_bytes() == first and (folder / "same (1).png").read_bytes() == second
    assert upload(server, third, "same.png", overwrite="true").json()["name"] == "same.png"
    assert (folder / "same.png").read_bytes() == third
    assert upload(server, first, "same.png", overwrite="1").json()["name"] == "same.png"
    assert (folder / "same.png").read_bytes() == first
    assert sorted(p.name for p in folder.iterdir()) == ["same (1).png", "same (2).png", "same.png"]


def test_upload_refuses_what_is_not_an_image_upload(server, server_runtime) -> None:
    error = assert_json_error(upload(server, b"<html><script>alert(1)</script></html>", "evil.png"), 400)
    assert "not an image" in error["message"]
    assert_json_error(upload(server, png()[:40], "truncated.png"), 400)
    body, headers = multipart({"type": "input"}, None)
    assert "'image'" in assert_json_error(server.call("POST", "/upload/image", raw=body, headers=headers), 400)["message"]
    body, headers = multipart({}, "a.png", png(), field="file")
    assert_json_error(server.call("POST", "/upload/image", raw=body, headers=headers), 400)
    assert_json_error(server.post("/upload/image", {"image": "a.png"}), 400)  # JSON, not multipart
    assert_json_error(upload(server, png(), "", type="input"), 400)
    assert_json_error(upload(server, png(), "a.png", type="models"), 400)
    assert list(server_runtime.folders.root("input").iterdir()) == []


def test_upload_into_a_subfolder_then_load_it_in_a_prompt(server, server_runtime) -> None:
    data = png((10, 200, 30, 255), size=(12, 10))
    reply = upload(server, data, "in.png", subfolder="clips/today")
    assert reply.json() == {"name": "in.png", "subfolder": "clips/today", "type": "input"}
    assert (server_runtime.folders.root("input") / "clips" / "today" / "in.png").read_bytes() == data
    entry = run_prompt(server, load_and_preview("clips/today/in.png"))
    assert entry["status"]["status_str"] == "success", entry["status"]
    (shown,) = entry["outputs"]["2"]["images"]
    assert shown["type"] == "temp"
    preview = view(server, filename=shown["filename"], subfolder=shown["subfolder"], type="temp")
    assert preview.status == 200 and preview.headers.get_content_type() == "image/png"
    image = open_png(preview.body)
    assert image.size == (12, 10) and image.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


# ---- /upload/mask -------------------------------------------------------------------------------------


def test_mask_upload_puts_the_new_alpha_on_the_original(server, server_runtime) -> None:
    original = png((10, 20, 30, 255), size=(6, 4), text={"parameters": "a cat", "workflow": '{"nodes": []}'})
    folder = server_runtime.folders.root("input") / "orig"
    folder.mkdir()
    (folder / "photo.png").write_bytes(original)
    mask = png((250, 250, 250, 77), size=(3, 2))  # other colour, other size: only its alpha counts
    reference = '{"filename": "photo.png", "subfolder": "orig", "type": "input"}'
    reply = upload(server, mask, "clipspace-mask.png", route="/upload/mask", original_ref=reference, subfolder="clipspace")
    assert reply.status == 200
    assert reply.json() == {"name": "clipspace-mask.png", "subfolder": "clipspace", "type": "input"}
    result = open_png((server_runtime.folders.root("input") / "clipspace" / "clipspace-mask.png").read_bytes())
    assert result.mode == "RGBA" and result.size == (6, 4)
    assert colors(result) == {(10, 20, 30, 77)}
    assert result.text == {"parameters": "a cat", "workflow": '{"nodes": []}'}
    assert (folder / "photo.png").read_bytes() == original


@pytest.mark.parametrize("reference", [
    None, "", "{", "[]", '"photo.png"', "{}", '{"filename": 5}', '{"filename": null}',
    '{"filename": "photo.png", "subfolder": 5}', '{"filename": "photo.png", "type": 5}',
    '{"filename": "photo.png", "type": {"a": 1}}', '{"filename": "photo.png", "type": "models"}', '{"filename": ""}',
], ids=lambda r: repr(r))
def test_mask_upload_refuses_a_bad_original_ref(server, server_runtime, reference) -> None:
    (server_runtime.folders.root("input") / "photo.png").write_bytes(png())
    fields = {} if reference is None else {"original_ref": reference}
    assert_json_error(upload(server, png(), "mask.png", route="/upload/mask", **fields), 400)
    assert sorted(p.name for p in server_runtime.folders.root("input").iterdir()) == ["photo.png"]


def test_mask_upload_of_a_missing_original_is_404(server, server_runtime) -> None:
    reply = upload(server, png(), "mask.png", route="/upload/mask", original_ref='{"filename": "gone.png", "type": "input"}')
    assert "gone.png" in assert_json_error(reply, 404)["message"]
    assert not (server_runtime.folders.root("input") / "mask.png").exists()


def test_mask_upload_refuses_a_non_image_original_and_mask(server, server_runtime) -> None:
    (server_runtime.folders.root("input") / "notes.png").write_bytes(b"just text")
    (server_runtime.folders.root("input") / "photo.png").write_bytes(png())
    assert_json_error(upload(server, png(), "m.png", route="/upload/mask", original_ref='{"filename": "notes.png"}'), 400)
    assert_json_error(upload(server, b"GIF89a nope", "m.png", route="/upload/mask", original_ref='{"filename": "photo.png"}'), 400)


# ---- /view ------------------------------------------------------------------------------------------


@pytest.fixture
def picture(server_runtime) -> bytes:
    """output/pics/p.png: RGB (10, 20, 30) with alpha 100, 8×6; also input/in.png."""
    data = png((10, 20, 30, 100))
    (server_runtime.folders.root("output") / "pics").mkdir()
    (server_runtime.folders.root("output") / "pics" / "p.png").write_bytes(data)
    (server_runtime.folders.root("input") / "in.png").write_bytes(data)
    return data


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_view_serves_an_image_inline(server, picture, prefix) -> None:
    reply = server.get(f"{prefix}/view?filename=p.png&subfolder=pics&type=output")
    assert reply.status == 200 and reply.body == picture
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.headers["Content-Disposition"] == 'inline; filename="p.png"'
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert view(server, filename="p.png", subfolder="pics").body == picture  # type defaults to output


def test_view_annotated_names_pick_the_folder(server, picture) -> None:
    assert view(server, filename="in.png [input]").body == picture
    assert view(server, filename="in.png [input]", type="output").body == picture
    assert view(server, filename="in.png", type="input").body == picture
    assert_json_error(view(server, filename="in.png"), 404)  # output has no in.png
    assert_json_error(view(server, filename="p.png [temp]", subfolder="pics"), 404)


def test_view_channels(server, picture) -> None:
    rgb = view(server, filename="p.png", subfolder="pics", channel="rgb")
    assert rgb.status == 200 and rgb.headers.get_content_type() == "image/png"
    assert rgb.headers["X-Content-Type-Options"] == "nosniff"
    image = open_png(rgb.body)
    assert image.mode == "RGB" and colors(image) == {(10, 20, 30)}
    alpha = view(server, filename="p.png", subfolder="pics", channel="a")
    image = open_png(alpha.body)
    assert image.mode == "RGBA" and colors(image.getchannel("A")) == {100} and image.size == (8, 6)
    assert colors(image.convert("RGB")) == {(0, 0, 0)}
    assert view(server, filename="p.png", subfolder="pics", channel="rgba").body == picture


@pytest.mark.parametrize(("preview", "content_type", "pil_format", "suffix"), [
    ("jpeg;80", "image/jpeg", "JPEG", ".jpg"), ("webp;90", "image/webp", "WEBP", ".webp"), ("jpeg", "image/jpeg", "JPEG", ".jpg"),
])
def test_view_previews(server, picture, preview, content_type, pil_format, suffix) -> None:
    reply = view(server, filename="p.png", subfolder="pics", preview=preview)
    assert reply.status == 200 and reply.headers.get_content_type() == content_type
    assert reply.headers["Content-Disposition"] == f'inline; filename="p{suffix}"'
    image = Image.open(io.BytesIO(reply.body))
    assert image.format == pil_format and image.size == (8, 6)
    red, green, blue = image.convert("RGB").getpixel((4, 3))[:3]
    assert abs(red - 10) < 12 and abs(green - 20) < 12 and abs(blue - 30) < 12


def test_view_quality_changes_the_preview(server, server_runtime) -> None:
    noise = Image.frombytes("RGB", (64, 64), hashlib.shake_256(b"noise").digest(64 * 64 * 3))
    noise.save(server_runtime.folders.root("output") / "noise.png")
    low = view(server, filename="noise.png", preview="jpeg;5").body
    high = view(server, filename="noise.png", preview="jpeg;95").body
    assert len(low) < len(high)


@pytest.mark.parametrize("query", [
    {"preview": "gif;50"}, {"preview": "jpeg;abc"}, {"preview": ";90"}, {"channel": "x"}, {"channel": "RGB"}, {"type": "models"}, {"type": ""},
], ids=lambda q: urlencode(q))
def test_view_refuses_bad_parameters(server, picture, query) -> None:
    assert_json_error(view(server, filename="p.png", subfolder="pics", **query), 400)


def test_view_missing_files(server, picture, server_runtime) -> None:
    assert_json_error(view(server, filename="nope.png"), 404)
    assert_json_error(view(server, filename="pics"), 404)  # a folder is not a file
    assert_json_error(view(server, filename="p.png", subfolder="other"), 404)
    assert_json_error(server.get("/view"), 400)
    (server_runtime.folders.root("output") / "notes.txt").write_text("hello")
    assert_json_error(view(server, filename="notes.txt", preview="webp;90"), 400)
    assert_json_error(view(server, filename="notes.txt", channel="rgb"), 400)


ACTIVE_FILES = {
    "page.html": b"<html><script>alert(1)</script></html>",
    "page.htm": b"<script>alert(1)</script>",
    "page.xhtml": b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
    "pic.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "app.js": b"alert(1)",
    "app.mjs": b"alert(1)",
    "style.css": b"body { background: red }",
    "data.xml": b'<a xmlns:h="http://www.w3.org/1999/xhtml"><h:script>alert(1)</h:script></a>',
    "sheet.xsl": b'<h:script xmlns:h="http://www.w3.org/1999/xhtml">alert(1)</h:script>',
    "feed.rss": b'<h:script xmlns:h="http://www.w3.org/1999/xhtml">alert(1)</h:script>',
}


@pytest.mark.parametrize("name", sorted(ACTIVE_FILES))
def test_view_never_serves_active_content_inline(server, server_runtime, name) -> None:
    (server_runtime.folders.root("output") / name).write_bytes(ACTIVE_FILES[name])
    reply = view(server, filename=name)
    assert reply.status == 200 and reply.body == ACTIVE_FILES[name]
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_an_uploaded_image_named_like_a_page_is_still_an_attachment(server) -> None:
    assert upload(server, png(), "page.html").json()["name"] == "page.html"
    reply = view(server, filename="page.html", type="input")
    assert reply.headers["Content-Type"] == "application/octet-stream" and reply.headers["Content-Disposition"].startswith("attachment")


# ---- path traversal -------------------------------------------------------------------------------------


class Site:
    """A server whose base folder is `tmp/top/base`, with secrets and escaping symlinks around it."""

    def __init__(self, tmp: Path, live) -> None:
        self.tmp = tmp
        self.top = tmp / "top"
        self.base = self.top / "base"
        self.web = self.base / "web"
        self.ext = self.base / "plugin" / "js"
        for folder in (self.tmp, self.top, self.base, self.base / "plugin"):
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("secret.png", "x", "x.png"):
                (folder / name).write_bytes(png((1, 2, 3, 255), text={"secret": SECRET.decode()}))
        self.runtime = Runtime(Settings(base_dir=self.base, load_plugins=False, preview_method="none"))
        self.runtime.registry.web_directories["pack"] = self.ext
        self.web.mkdir()
        self.ext.mkdir()
        (self.web / "index.html").write_text("<html>editor</html>")
        (self.ext / "main.js").write_text("// plugin\n")
        for root in (*(self.runtime.folders.root(kind) for kind in ("input", "output", "temp")), self.web, self.ext):
            (root / "sub").mkdir()
            (root / "plain.png").write_bytes(png())
            os.symlink(self.base / "secret.png", root / "link.png")
            os.symlink(self.top, root / "linkdir")
        self.server = live(self.runtime, ServerOptions(web_root=self.web))

    def snapshot(self) -> dict[str, str]:
        """Every file and link below the test folder (but the queue database) with its content hash."""
        found = {}
        for folder, dirs, files in os.walk(self.tmp):
            dirs[:] = [d for d in dirs if Path(folder, d) != self.base / "user"]
            for name in files + [d for d in dirs if Path(folder, d).is_symlink()]:
                path = Path(folder, name)
                found[str(path)] = f"link:{os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
        return found


@pytest.fixture
def site(tmp_path, live) -> Site:
    return Site(tmp_path, live)


#: file names that try to leave their folder; ABS becomes an absolute path to a secret
NAMES = [
    "../x", "../secret.png", "../../secret.png", "../../../secret.png", "../../etc/passwd", "sub/../../x", "sub/../../secret.png",
    "/etc/passwd", "ABS", "C:\\x.png", "C:x.png", "..\\x.png", "..\\..\\secret.png", "sub\\..\\..\\x", "%2e%2e/x", "%2E%2E/secret.png",
    "%2e%2e%2fx", "%252e%252e%252fx", "%25252e%25252e%25252fsecret.png", "..%2fx", "..%2Fsecret.png", "..%5cx", "sub%2f..%2f..%2fx",
    "x%00.png", "x\x00.png", "..", "link.png", "linkdir/secret.png", "sub/../linkdir/secret.png",
]
#: subfolders that try to leave their folder (the file name is then `secret.png`)
SUBFOLDERS = [
    "..", "../..", "../../..", "sub/../..", "/", "ABS_DIR", "/etc", "C:\\", "..\\..", "%2e%2e", "%252e%252e", "..%2f..", "sub%2f..%2f..",
    "sub\x00", "%00", "linkdir", "sub/../linkdir",
]
#: folder types that are not input, output or temp
TYPES = ["../input", "..", "input/..", "/etc", "input%00", "input\x00", "user", "models", "custom_nodes", "INPUT", " input"]


def name_of(site: Site, payload: str) -> str:
    return {"ABS": str(site.base / "secret.png"), "ABS_DIR": str(site.top)}.get(payload, payload)


def assert_refused(site: Site, reply, before: dict[str, str], statuses: tuple[int, ...] = (400, 403)) -> None:
    """A 4xx JSON error, no secret in the answer, and nothing written anywhere."""
    assert reply.status in statuses, (reply.status, reply.body[:300])
    assert reply.json()["error"]["message"]
    assert SECRET not in reply.body and b"root:" not in reply.body
    assert site.snapshot() == before


@pytest.mark.parametrize("kind", ["input", "output", "temp"])
@pytest.mark.parametrize("payload", NAMES, ids=ascii)
def test_view_refuses_file_names_outside(site, payload, kind) -> None:
    before = site.snapshot()
    assert_refused(site, view(site.server, filename=name_of(site, payload), type=kind), before)


@pytest.mark.parametrize("payload", [p for p in NAMES if p.isprintable() and " " not in p], ids=ascii)
def test_view_refuses_unencoded_file_names_outside(site, payload) -> None:
    """The payload written into the query as is, so the server's own decoding applies first."""
    before = site.snapshot()
    assert_refused(site, site.server.get(f"/view?type=input&filename={name_of(site, payload)}"), before)


@pytest.mark.parametrize("payload", SUBFOLDERS, ids=ascii)
def test_view_refuses_subfolders_outside(site, payload) -> None:
    before = site.snapshot()
    assert_refused(site, view(site.server, filename="secret.png", subfolder=name_of(site, payload), type="input"), before)


@pytest.mark.parametrize("payload", TYPES, ids=ascii)
def test_view_refuses_other_folder_types(site, payload) -> None:
    before = site.snapshot()
    assert_refused(site, view(site.server, filename="secret.png", type=payload), before)


@pytest.mark.parametrize("route", ["/upload/image", "/upload/mask"])
@pytest.mark.parametrize("payload", NAMES, ids=ascii)
def test_uploads_refuse_file_names_outside(site, payload, route) -> None:
    fields = {"overwrite": "true", "original_ref": '{"filename": "plain.png"}'}
    before = site.snapshot()
    assert_refused(site, upload(site.server, png((9, 9, 9)), name_of(site, payload), route=route, **fields), before)


@pytest.mark.parametrize("route", ["/upload/image", "/upload/mask"])
@pytest.mark.parametrize("payload", SUBFOLDERS, ids=ascii)
def test_uploads_refuse_subfolders_outside(site, payload, route) -> None:
    fields = {"overwrite": "true", "subfolder": name_of(site, payload), "original_ref": '{"filename": "plain.png"}'}
    before = site.snapshot()
    assert_refused(site, upload(site.server, png((9, 9, 9)), "secret.png", route=route, **fields), before)


@pytest.mark.parametrize("route", ["/upload/image", "/upload/mask"])
@pytest.mark.parametrize("payload", TYPES, ids=ascii)
def test_uploads_refuse_other_folder_types(site, payload, route) -> None:
    before = site.snapshot()
    reply = upload(site.server, png((9, 9, 9)), "secret.png", route=route, type=payload, overwrite="true", original_ref='{"filename": "plain.png"}')
    assert_refused(site, reply, before)


@pytest.mark.parametrize("field", ["filename", "subfolder", "type"])
@pytest.mark.parametrize("payload", NAMES + SUBFOLDERS + TYPES, ids=ascii)
def test_mask_original_ref_cannot_point_outside(site, payload, field) -> None:
    reference = {"filename": "secret.png", "subfolder": "", "type": "input", field: name_of(site, payload)}
    before = site.snapshot()
    reply = upload(site.server, png(), "mask.png", route="/upload/mask", original_ref=json.dumps(reference))
    assert_refused(site, reply, before, (400, 403, 404))


@pytest.mark.parametrize("payload", NAMES + [f"{p} [input]" for p in NAMES[:8]] + ["../secret.png [output]", "linkdir/secret.png [temp]"], ids=ascii)
def test_load_image_refuses_names_outside(site, payload) -> None:
    before = site.snapshot()
    reply = site.server.post("/prompt", {"prompt": load_and_preview(name_of(site, payload))})
    assert_refused(site, reply, before)
    errors = reply.json()["node_errors"]
    assert list(errors) == ["1"] and errors["1"]["class_type"] == "LoadImage"
    assert [e["extra_info"]["input_name"] for e in errors["1"]["errors"]] == ["image"]
    assert site.server.get("/queue").json() == {"queue_running": [], "queue_pending": []}


#: raw URL paths (after `/` or `/extensions/pack/`): aiohttp normalises plain `..`, so most are encoded
URL_PATHS = [
    "../secret.png", "../../secret.png", "%2e%2e/secret.png", "%2E%2E/%2E%2E/secret.png", "%2e%2e%2fsecret.png", "..%2fsecret.png",
    "..%2F..%2Fsecret.png", "sub/..%2f..%2fsecret.png", "sub/%2e%2e/%2e%2e/secret.png", "%252e%252e%252fsecret.png",
    "%25252e%25252e%25252fsecret.png", "..%5csecret.png", "..\\secret.png", "%5c..%5c..%5csecret.png", "C:%5Cx.png", "C:x.png",
    "%2fetc%2fpasswd", "%2F%2E%2E%2F%2E%2E%2Fsecret.png", "..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "x%00.png", "link.png", "linkdir/secret.png", "sub/%2e%2e/linkdir/secret.png",
]


@pytest.mark.parametrize("prefix", ["/", "/extensions/pack/"])
@pytest.mark.parametrize("payload", URL_PATHS, ids=ascii)
def test_static_files_refuse_paths_outside(site, payload, prefix) -> None:
    before = site.snapshot()
    assert_refused(site, site.server.get(prefix + payload), before, (400, 403, 404))


# ---- names that only look suspicious ------------------------------------------------------------------


LEGIT_NAMES = ["v1..final.png", ".hidden.png", "...png", "a..b..c.png", "..x.png", "x...png", "100%.png", "50%25 off.png", "sp ace (1).png",
               "bild-ä.png"]


@pytest.mark.parametrize("name", LEGIT_NAMES)
def test_names_with_dots_work_everywhere(site, name) -> None:
    server = site.server
    data = png((40, 50, 60))
    reply = upload(server, data, name, subfolder="deep/er")
    assert reply.status == 200, reply.body
    assert reply.json() == {"name": name, "subfolder": "deep/er", "type": "input"}
    assert (site.runtime.folders.root("input") / "deep" / "er" / name).read_bytes() == data
    assert view(server, filename=name, subfolder="deep/er", type="input").body == data
    assert view(server, filename=f"deep/er/{name} [input]").body == data
    masked = upload(server, png((0, 0, 0, 10)), f"m{name}", route="/upload/mask", original_ref=json.dumps({"filename": name, "subfolder": "deep/er"}))
    assert masked.status == 200 and masked.json()["name"] == f"m{name}"
    entry = run_prompt(server, load_and_preview(f"deep/er/{name}"))
    assert entry["status"]["status_str"] == "success", entry["status"]


def test_static_names_with_dots_and_subfolders_work(site) -> None:
    (site.web / "v1..final.js").write_text("// web")
    (site.web / "sub" / ".hidden.css").write_text("/* css */")
    (site.ext / "sub" / "v1..final.js").write_text("// ext")
    assert site.server.get("/v1..final.js").body == b"// web"
    assert site.server.get("/sub/.hidden.css").body == b"/* css */"
    assert site.server.get("/extensions/pack/sub/v1..final.js").body == b"// ext"
    assert site.server.get("/extensions/pack/main.js").body == b"// plugin\n"
    assert site.server.get("/").body == b"<html>editor</html>"


def test_symlinks_that_stay_inside_are_followed(site) -> None:
    folder = site.runtime.folders.root("input")
    os.symlink(folder / "plain.png", folder / "alias.png")
    os.symlink(folder / "sub", folder / "subalias")
    (folder / "sub" / "in.png").write_bytes(png((5, 5, 5)))
    assert view(site.server, filename="alias.png", type="input").body == png()
    assert view(site.server, filename="in.png", subfolder="subalias", type="input").body == png((5, 5, 5))
