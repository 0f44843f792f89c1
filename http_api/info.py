"""Read-only routes about the installation: nodes, models, system, plugins and editor files."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from aiohttp import web

from engine.paths import UnsafePathError, resolve_inside
from engine.system import system_stats
from http_api.security import error_response
from http_api.state import state

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


async def web_file(request: web.Request) -> web.StreamResponse:
    """`GET /` and every other unmatched GET: the editor's files from `web/`."""
    return _static(state(request).options.web_root, request.match_info.get("path", ""))
