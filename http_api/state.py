"""What every route needs: the runtime, the queue, the worker, the hub and the server options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.queue import PromptQueue
from engine.runtime import Runtime
from engine.worker import Worker
from http_api.hub import Hub

DEFAULT_MAX_UPLOAD_MB = 100
WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
WORKFLOWS_ROOT = Path(__file__).resolve().parent.parent / "workflows"


@dataclass
class ServerOptions:
    """How the server listens and what it allows."""

    listen: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    port: int = 8188
    #: when set, every request must carry it (required to listen beyond loopback)
    auth_token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    web_root: Path = WEB_ROOT
    #: example workflows offered at /sdflow/workflows (the editor's default comes from there)
    workflows_root: Path = WORKFLOWS_ROOT

    def features(self) -> dict[str, Any]:
        """Server feature flags (`GET /features`, and the answer to a client's feature_flags)."""
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_bytes}


@dataclass
class ServerState:
    runtime: Runtime
    queue: PromptQueue
    worker: Worker
    hub: Hub
    options: ServerOptions


STATE = web.AppKey("sdflow", ServerState)


def state(request: web.Request) -> ServerState:
    return request.app[STATE]
