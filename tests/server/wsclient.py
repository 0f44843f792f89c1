"""A small WebSocket client for the server tests: connect, negotiate, collect events."""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp


@dataclass
class Frame:
    """One message from the server: a text event (`type`, `data`) or a binary frame (`binary`)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    binary: bytes = b""

    @property
    def binary_type(self) -> int:
        return struct.unpack(">I", self.binary[:4])[0]


class WsClient:
    """A connected client; `frames` holds everything received so far."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.frames: list[Frame] = []

    @classmethod
    async def connect(cls, url: str, client_id: str | None = None, headers: dict[str, str] | None = None) -> "WsClient":
        session = aiohttp.ClientSession()
        query = f"?clientId={client_id}" if client_id else ""
        try:
            ws = await session.ws_connect(f"{url}/ws{query}", headers=headers)
        except Exception:
            await session.close()
            raise
        return cls(session, ws)

    async def receive(self, timeout: float = 60) -> Frame:
        message = await self.ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.TEXT:
            decoded = json.loads(message.data)
            frame = Frame(decoded["type"], decoded["data"])
        elif message.type == aiohttp.WSMsgType.BINARY:
            frame = Frame("binary", binary=message.data)
        else:
            raise ConnectionError(f"socket ended: {message.type}")
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Callable[[Frame], bool], timeout: float = 60) -> list[Frame]:
        """Receive until a frame matches; returns the frames received in this call."""
        start = len(self.frames)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive(max(0.1, deadline - loop.time()))
            if predicate(frame):
                return self.frames[start:]

    async def until_done(self, prompt_id: str, timeout: float = 60) -> list[Frame]:
        """Receive until `executing` with node None for `prompt_id`."""
        return await self.until(lambda f: f.type == "executing" and f.data.get("node") is None and f.data.get("prompt_id") == prompt_id, timeout)

    async def send(self, type: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps({"type": type, "data": data}))

    async def post(self, url: str, body: Any) -> tuple[int, Any]:
        """POST JSON; returns the status and the decoded JSON answer (None for an empty one)."""
        async with self.session.post(url, json=body) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def get(self, url: str) -> tuple[int, Any]:
        async with self.session.get(url) as response:
            return response.status, await response.json()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def types_of(frames: list[Frame], skip: tuple[str, ...] = ("progress", "progress_state", "binary", "status")) -> list[str]:
    return [f.type for f in frames if f.type not in skip]
