"""sdflow's HTTP server (aiohttp). For now it serves the node catalogue in ComfyUI's shapes:
`GET /object_info` and `GET /object_info/{class}`, also under `/api/`. The prompt queue,
WebSocket and file routes come with the server work; this module only uses the engine's API.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from engine.runtime import Runtime, Settings

RUNTIME_KEY = web.AppKey("runtime", Runtime)


async def object_info(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    return web.json_response(runtime.registry.object_info(runtime.folders))


async def object_info_one(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    definition = runtime.registry.get(request.match_info["class_type"])
    return web.json_response({} if definition is None else {definition.class_type: definition.spec(runtime.folders).to_object_info()})


def create_app(runtime: Runtime) -> web.Application:
    """The aiohttp application; every route answers under `/` and `/api/` as ComfyUI's do."""
    app = web.Application()
    app[RUNTIME_KEY] = runtime
    for prefix in ("", "/api"):
        app.router.add_get(f"{prefix}/object_info", object_info)
        app.router.add_get(f"{prefix}/object_info/{{class_type}}", object_info_one)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="sdflow server")
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--base-dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    web.run_app(create_app(Runtime(Settings(base_dir=args.base_dir))), host=args.listen, port=args.port)


if __name__ == "__main__":
    main()
