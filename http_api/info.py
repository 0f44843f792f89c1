"""Read-only routes about the installation (nodes, models, system, plugins, editor files) and the
workflow conversions the editor uses (UI → API prompt, API prompt → UI)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from engine.paths import UnsafePathError, resolve_inside
from engine.system import system_stats
from engine.workflow.api import ApiPrompt
from engine.workflow.convert import ConversionError, convert_workflow
from engine.workflow.to_ui import prompt_to_workflow
from http_api.prompts import BadRequest, read_object
from http_api.security import error_response, public_asset
from http_api.state import state

#: where `npm ci --prefix web` installs the canvas library; served at /lib/litegraph/
LITEGRAPH_DIST = PurePosixPath("node_modules/@comfyorg/litegraph/dist")

routes = web.RouteTableDef()


@routes.get("/object_info")
async def object_info(request: web.Request) -> web.Response:
    runtime = state(request).runtime
    return web.json_response(runtime.registry.object_info(runtime.folders))


@routes.get("/object_info/{class_type}")
async def object_info_one(request: web.Request) -> web.Response:
    runtime = state(request).runtime
    definition = runtime.registry.get(request.match_info["class_type"])
    return web.json_response({} if definition is None else {definition.class_type: definition.spec(runtime.folders).to_object_info()})


@routes.get("/system_stats")
async def get_system_stats(request: web.Request) -> web.Response:
    return web.json_response(system_stats(state(request).runtime.models.policy))


@routes.get("/features")
async def features(request: web.Request) -> web.Response:
    return web.json_response(state(request).options.features())


@routes.get("/embeddings")
async def embeddings(request: web.Request) -> web.Response:
    """Embedding names as prompts use them: relative paths without the extension."""
    models = state(request).runtime.folders.models
    assert models is not None
    return web.json_response([str(PurePosixPath(name).with_suffix("")) for name in models.list("embeddings")])


@routes.get("/models")
async def model_folders(request: web.Request) -> web.Response:
    models = state(request).runtime.folders.models
    assert models is not None
    return web.json_response(models.keys())


@routes.get("/models/{folder}")
async def model_files(request: web.Request) -> web.Response:
    models = state(request).runtime.folders.models
    assert models is not None
    folder = request.match_info["folder"]
    if folder not in models.keys():
        return error_response(404, "unknown_model_folder", f"no model folder {folder!r}; folders: {', '.join(models.keys())}")
    return web.json_response(models.list(folder))


@routes.get("/sdflow/plugins")
async def plugins(request: web.Request) -> web.Response:
    """Which pack registered which nodes, and every load problem with its traceback."""
    registry = state(request).runtime.registry
    packs: dict[str, list[str]] = {}
    for class_type in registry:
        definition = registry.get(class_type)
        if definition is not None:
            packs.setdefault(definition.source, []).append(class_type)
    return web.json_response({"packs": packs, "errors": [e.to_json() for e in registry.errors], "web_directories": sorted(registry.web_directories)})


@routes.get("/extensions")
async def extensions(request: web.Request) -> web.Response:
    """URLs of every plugin's editor scripts (`.js` files under its WEB_DIRECTORY)."""
    urls = []
    for pack, folder in sorted(state(request).runtime.registry.web_directories.items()):
        if folder.is_dir():
            urls += [f"/extensions/{pack}/{p.relative_to(folder).as_posix()}" for p in sorted(folder.rglob("*.js")) if p.is_file()]
    return web.json_response(urls)


def _static(root: Path, name: str) -> web.StreamResponse:
    try:
        path = resolve_inside(root, name or "index.html")
    except UnsafePathError as exc:
        return error_response(400, "bad_file_request", f"refused file name: {exc}")
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return error_response(404, "not_found", f"no file {name!r}")
    headers = {"Cache-Control": "no-cache"} if path.suffix in (".html", ".js", ".css", ".json") else {}
    return web.FileResponse(path, headers={**headers, "X-Content-Type-Options": "nosniff"})


async def extension_file(request: web.Request) -> web.StreamResponse:
    """`GET /extensions/<pack>/<path>`: a file from a plugin's WEB_DIRECTORY."""
    folder = state(request).runtime.registry.web_directories.get(request.match_info["pack"])
    if folder is None:
        return error_response(404, "not_found", f"no plugin {request.match_info['pack']!r} with editor files")
    return _static(folder, request.match_info["path"])


@routes.get("/sdflow/workflows")
async def workflows(request: web.Request) -> web.Response:
    """The example workflows: UI-format names (`txt2img.json`) and API prompts (`api/txt2img.json`)."""
    root = state(request).options.workflows_root
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json")) if root.is_dir() else []
    return web.json_response(names)


@routes.get("/sdflow/workflows/{path:.+}")
async def workflow_file(request: web.Request) -> web.StreamResponse:
    return _static(state(request).options.workflows_root, request.match_info["path"])


@routes.post("/sdflow/convert")
async def convert(request: web.Request) -> web.Response:
    """`{"workflow": <UI workflow>}` → `{"prompt": <API prompt>}`, by the engine's one converter."""
    return await _conversion(request, "workflow", lambda data, specs: {"prompt": convert_workflow(data, specs).to_json()})


@routes.post("/sdflow/to-ui")
async def to_ui(request: web.Request) -> web.Response:
    """`{"prompt": <API prompt>}` → `{"workflow": <UI workflow>}`, laid out for the editor."""
    return await _conversion(request, "prompt", lambda data, specs: {"workflow": prompt_to_workflow(ApiPrompt.model_validate(data), specs)})


async def _conversion(request: web.Request, key: str, convert_with: Callable[[Any, Any], dict[str, Any]]) -> web.Response:
    """Run one conversion of the body's `key` with the installed node specs; 400 with a readable reason."""
    try:
        body = await read_object(request)
        if not isinstance(body.get(key), dict):
            raise BadRequest(f'the body needs "{key}": a JSON object', "invalid_workflow")
    except BadRequest as exc:
        return exc.response()
    runtime = state(request).runtime

    def run() -> dict[str, Any]:
        return convert_with(body[key], runtime.registry.specs(runtime.folders))

    try:
        return web.json_response(await asyncio.to_thread(run))
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or key}: {e['msg']}" for e in exc.errors()[:5])
        return error_response(400, "invalid_workflow", f"the {key} is malformed: {reasons}")
    except (ConversionError, ValueError) as exc:
        return error_response(400, "invalid_workflow", str(exc))


@routes.get("/lib/litegraph/{path:.+}")
@public_asset
async def litegraph_file(request: web.Request) -> web.StreamResponse:
    """`GET /lib/litegraph/<path>`: the canvas library as npm installed it under `web/node_modules`."""
    return _static(state(request).options.web_root / LITEGRAPH_DIST, request.match_info["path"])


@public_asset
async def web_file(request: web.Request) -> web.StreamResponse:
    """`GET /` and every other unmatched GET: the editor's files from `web/`. When the editor page
    needs the canvas library and it is not installed, the page says how to install it instead."""
    web_root = state(request).options.web_root
    name = request.match_info.get("path", "")
    if name in ("", "index.html") and _needs_missing_library(web_root):
        return _editor_not_installed(web_root)
    return _static(web_root, name)


def _needs_missing_library(web_root: Path) -> bool:
    page = web_root / "index.html"
    if (web_root / LITEGRAPH_DIST / "litegraph.es.js").is_file() or not page.is_file():
        return False
    return b"/lib/litegraph/" in page.read_bytes()


def _editor_not_installed(web_root: Path) -> web.Response:
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sdflow: editor not installed</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem">
<h1>sdflow is running, but its editor is not installed</h1>
<p>The canvas library is missing from <code>{html.escape(str(web_root / LITEGRAPH_DIST))}</code>.
Run <code>make serve</code> (it runs <code>npm ci --prefix web</code> when needed), or
<code>npm ci --prefix web</code> yourself, then reload this page.</p>
<p>The HTTP API works without it: <code>POST /prompt</code>, <code>GET /object_info</code>, <code>/ws</code>.</p>
</body></html>"""
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})
