"""A live sdflow server on 127.0.0.1 (a real socket, its own event loop in a thread) and clients.

`live(runtime, options)` starts one; `server.call(method, path, ...)` is a plain blocking HTTP
request; `server.session()` gives an aiohttp session for WebSocket scenarios run with asyncio.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine.runtime import Runtime, Settings
from http_api.background import BackgroundServer
from http_api.state import ServerOptions
from server import create_app

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"


def _load_test_nodes() -> Any:
    spec = importlib.util.spec_from_file_location("sdflow_server_test_nodes", PLUGIN_DIR / "sdflow_server_test_nodes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEST_NODES = _load_test_nodes()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers.get_content_type() == "application/json", self.headers.get_content_type()
        return json.loads(self.body)


class LiveServer(BackgroundServer):
    """An sdflow application served on 127.0.0.1 from a background thread, with blocking clients."""

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Reply:
        """One HTTP request; `body` is sent as JSON, `raw` as is."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = dict(headers or {})
        if body is not None and raw is None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        reply = Reply(response.status, response.headers, response.read())
        connection.close()
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.call("POST", path, body, **kwargs)

    def run(self, scenario: Callable[[], Any]) -> Any:
        """Run an async scenario (its own loop, in this thread) against the server."""
        return asyncio.run(asyncio.wait_for(scenario(), 120))



@pytest.fixture
def server_runtime(tmp_path: Path) -> Runtime:
    """Built-in nodes plus the test nodes (Sleep, Gate), rooted in a temporary folder."""
    runtime = Runtime(Settings(base_dir=tmp_path, load_plugins=False, preview_method="none"))
    runtime.registry.add_module(TEST_NODES, source="server-test-nodes")
    return runtime


@pytest.fixture
def live() -> Iterator[Callable[..., LiveServer]]:
    """`live(runtime, options=None)` starts a server; every one started is closed after the test."""
    started: list[LiveServer] = []

    def start(runtime: Runtime, options: ServerOptions | None = None) -> LiveServer:
        server = LiveServer(create_app(runtime, options))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
    for event in TEST_NODES.GATES.values():
        event.set()
    TEST_NODES.GATES.clear()
    TEST_NODES.ENTERED.clear()


@pytest.fixture
def server(live, server_runtime) -> LiveServer:
    return live(server_runtime)
