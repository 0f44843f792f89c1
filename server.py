"""sdflow's server: ComfyUI's HTTP and WebSocket API over the engine, with a persistent queue.

`create_app` assembles the routes of `http_api` (each under `/` and `/api/`), the WebSocket at
`/ws`, plugin editor files at `/extensions/<pack>/`, and the editor from `web/` for every other GET.
`sdflow serve` (the `COMMAND` below) starts it:

    sdflow serve [--listen [HOSTS]] [--port 8188] [--auth-token TOKEN] [--input-dir D] [--output-dir D]
                 [--models-dir D] [--extra-model-paths YAML] [--preview-method M] [--lowvram ...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from engine.cli import CliError, runtime_from_args
from engine.plugins import run_setup_hooks
from engine.queue import PromptQueue, QueueLockedError
from engine.runtime import Runtime
from engine.worker import Worker, recover
from http_api import files, info, prompts
from http_api.hub import Hub, websocket_handler
from http_api.security import guard_middleware, is_loopback, json_errors
from http_api.state import DEFAULT_MAX_UPLOAD_MB, STATE, ServerOptions, ServerState

log = logging.getLogger("sdflow.server")

TOKEN_ENV = "SDFLOW_AUTH_TOKEN"
QUEUE_FILE = "queue.sqlite3"
ALL_INTERFACES = "0.0.0.0,::"


def create_app(runtime: Runtime, options: ServerOptions | None = None) -> web.Application:
    """The aiohttp application. Opens the queue (requeueing what a crash interrupted); the worker
    starts with the application and stops with it."""
    options = options or ServerOptions()
    queue = PromptQueue(runtime.user_dir / QUEUE_FILE)
    recovery = recover(queue)
    if recovery.requeued:
        log.warning("requeued %d prompt(s) that were running when sdflow last stopped", len(recovery.requeued))
    for item in recovery.abandoned:
        log.error("prompt %s crashed sdflow repeatedly; recorded as failed", item.prompt_id)
    worker = Worker(queue, runtime)
    hub = Hub(queue, worker, options.features())
    runtime.bus.subscribe(hub.on_event)
    queue.on_change(hub.on_queue_change)

    app = web.Application(client_max_size=options.max_upload_bytes, middlewares=[json_errors, guard_middleware(options.auth_token)])
    app[STATE] = ServerState(runtime, queue, worker, hub, options)

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        return await websocket_handler(request, hub)

    for prefix in ("", "/api"):
        for table in (prompts.routes, files.routes, info.routes):
            for route in table:
                app.router.add_route(route.method, prefix + route.path, route.handler)  # type: ignore[attr-defined]
        app.router.add_get(prefix + "/ws", websocket)
    app.router.add_get("/extensions/{pack}/{path:.+}", info.extension_file)
    app.router.add_get("/{path:.*}", info.web_file)

    async def start(app: web.Application) -> None:
        hub.bind(asyncio.get_running_loop())
        worker.start()

    async def stop(app: web.Application) -> None:
        await asyncio.to_thread(worker.stop, 30)
        await hub.close_all()
        queue.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


async def serve(app: web.Application, hosts: list[str], port: int, announce: str) -> None:
    """Listen on `hosts`:`port` until SIGINT/SIGTERM; prints `announce` with the bound port."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        sites = [web.TCPSite(runner, host, port) for host in hosts]
        for site in sites:
            await site.start()
        bound = next(iter(runner.addresses), None)
        actual_port = bound[1] if bound else port
        print(announce.format(port=actual_port), flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stopped.set)
            except (NotImplementedError, RuntimeError):  # not on this platform / thread
                pass
        await stopped.wait()
    finally:
        await runner.cleanup()


class ServeCommand:
    """`sdflow serve`: the HTTP/WebSocket server and the editor."""

    name = "serve"
    help = "start the server (ComfyUI-compatible API, editor in the browser)"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--listen", nargs="?", const=ALL_INTERFACES, default="127.0.0.1", metavar="HOSTS",
                            help="comma-separated addresses to listen on (default 127.0.0.1; without a value: all interfaces, "
                                 "which needs --auth-token)")
        parser.add_argument("--port", type=int, default=8188)
        parser.add_argument("--input-dir", type=Path, help="input folder (default: BASE/input)")
        parser.add_argument("--output-dir", type=Path, help="output folder (default: BASE/output)")
        parser.add_argument("--auth-token", default=os.environ.get(TOKEN_ENV) or None,
                            help=f"require this bearer token on every request (default: ${TOKEN_ENV})")
        parser.add_argument("--max-upload-size", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB", help="largest request body")
        parser.add_argument("--no-demo-models", action="store_true", help="do not write the tiny demo models when no checkpoint is installed")

    def run(self, args: argparse.Namespace) -> int:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        hosts = [h.strip() for h in args.listen.split(",") if h.strip()]
        if not hosts:
            raise CliError("--listen needs at least one address")
        if not args.auth_token and not all(is_loopback(h) for h in hosts):
            raise CliError(f"refusing to listen on {args.listen} without an access token: anyone who can reach this machine could run "
                           f"workflows and read your images. Pass --auth-token TOKEN (or set {TOKEN_ENV}).")
        runtime = runtime_from_args(args, input_dir=args.input_dir, output_dir=args.output_dir)
        for error in runtime.registry.errors:
            print(f"warning: {error.source}: {error.message}", file=sys.stderr)
        if not args.no_demo_models:
            for message in run_setup_hooks(runtime.folders):
                print(message, flush=True)
        options = ServerOptions(listen=hosts, port=args.port, auth_token=args.auth_token, max_upload_bytes=int(args.max_upload_size * 1024 * 1024))
        try:
            app = create_app(runtime, options)
        except QueueLockedError as exc:
            raise CliError(f"{exc}; stop it first, or use another --base-dir") from None
        host = "127.0.0.1" if hosts[0] in ("0.0.0.0", "::") else hosts[0]
        shown = f"[{host}]" if ":" in host else host
        token = f"?token={args.auth_token}" if args.auth_token else ""
        try:
            asyncio.run(serve(app, hosts, args.port, f"sdflow is serving at http://{shown}:{{port}}/{token}"))
        except OSError as exc:
            raise CliError(f"cannot listen on {args.listen} port {args.port}: {exc.strerror or exc}") from None
        return 0


COMMAND = ServeCommand()


def main() -> None:
    """`python server.py ...` is `sdflow serve ...`."""
    from engine.cli import main as cli_main

    sys.exit(cli_main(["serve", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
