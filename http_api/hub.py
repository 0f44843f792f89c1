"""The WebSocket hub: connected clients and the routing of execution events to them.

Events come from the worker thread (the executor's bus) and queue changes from any thread; the
hub turns each into a text or binary frame there and hands it to the event loop, where every
client has its own outbox and sender task, so frames reach a client whole and in order and a slow
client never holds up the others.

Routing, as ComfyUI does it: a prompt's events go to the client whose id it was submitted with;
`status` goes to everyone; `progress`/`progress_state` of a prompt without a client go to everyone;
`execution_interrupted` goes to everyone. Step previews are binary frames for the submitting client
only: type 1 (`>I 1, >I format, JPEG`), or type 4 with a JSON metadata header for clients that
negotiated `supports_preview_metadata`. A client that is behind skips previews instead of queueing
them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from engine import events as ev
from engine.events import Event
from engine.queue import PromptQueue
from engine.worker import Worker

log = logging.getLogger(__name__)

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
JPEG = 1
#: a client with more frames than this waiting gets no previews until it catches up
PREVIEW_BACKLOG = 4
#: a client this far behind is disconnected (it can reconnect and read /history)
MAX_BACKLOG = 10_000
MAX_CLIENT_ID = 256
#: events forwarded to clients (sdflow's own execution_plan and preview events are not)
FORWARDED = frozenset({
    ev.EXECUTION_START, ev.EXECUTION_CACHED, ev.EXECUTING, ev.PROGRESS, ev.PROGRESS_STATE, ev.EXECUTED,
    ev.EXECUTION_SUCCESS, ev.EXECUTION_ERROR, ev.EXECUTION_INTERRUPTED, ev.NODE_WARNING,
})
BROADCAST_WITHOUT_OWNER = frozenset({ev.PROGRESS, ev.PROGRESS_STATE})


@dataclass
class Client:
    """One connected WebSocket."""

    sid: str
    ws: web.WebSocketResponse
    outbox: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_preview_metadata(self) -> bool:
        return bool(self.features.get("supports_preview_metadata"))


def text_frame(type: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": type, "data": data}, default=str)


def preview_frames(image: Any, metadata: dict[str, Any]) -> tuple[bytes, bytes]:
    """(type 1 frame, type 4 frame) of a PIL preview image."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()
    header = json.dumps({**metadata, "image_type": "image/jpeg"}).encode()
    return (struct.pack(">II", PREVIEW_IMAGE, JPEG) + jpeg, struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(header)) + header + jpeg)


class Hub:
    """Connected clients, and the bridge from execution events to their sockets."""

    def __init__(self, queue: PromptQueue, worker: Worker, features: dict[str, Any]) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue = queue
        self.worker = worker
        #: what the server can do, answered to a client's feature_flags message
        self.features = features
        self.clients: dict[str, Client] = {}
        #: prompt id → the client it was submitted by (None: no client), while it runs
        self._owners: dict[str, str | None] = {}
        self._status_scheduled = False
        self._senders: set[asyncio.Task[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start delivering: frames are handed to `loop` (the server's event loop)."""
        self.loop = loop

    # ---- from other threads ----------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Bus subscriber (worker thread): route one execution event."""
        if self.loop is None:
            return
        data = event.data
        prompt_id = data.get("prompt_id")
        if event.type == ev.EXECUTION_START:
            self._owners[prompt_id] = self._owner_of(prompt_id)
        owner = self._owners.get(prompt_id)
        if event.type == ev.PREVIEW:
            self._send_preview(owner, data)
        elif event.type in FORWARDED:
            broadcast = event.type == ev.EXECUTION_INTERRUPTED or (owner is None and event.type in BROADCAST_WITHOUT_OWNER)
            if broadcast or owner is not None:
                self.loop.call_soon_threadsafe(self._deliver, None if broadcast else owner, text_frame(event.type, data))
        if event.type == ev.EXECUTING and data.get("node") is None:
            self._owners.pop(prompt_id, None)

    def on_queue_change(self) -> None:
        """Queue listener (any thread): broadcast `status` once the loop gets to it."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._schedule_status)

    def _owner_of(self, prompt_id: str) -> str | None:
        current = self.worker.current
        item = current if current is not None and current.prompt_id == prompt_id else self.queue.get(prompt_id)
        return item.client_id if item is not None else None

    def _send_preview(self, owner: str | None, data: dict[str, Any]) -> None:
        client = self.clients.get(owner) if owner is not None else None
        if client is None or client.outbox.qsize() > PREVIEW_BACKLOG:
            return
        node = data.get("node")
        metadata = {"node_id": node, "prompt_id": data.get("prompt_id"), "display_node_id": node, "parent_node_id": None, "real_node_id": node}
        plain, with_metadata = preview_frames(data["image"], metadata)
        frame = with_metadata if client.wants_preview_metadata else plain
        self.loop.call_soon_threadsafe(self._deliver, owner, frame)  # type: ignore[union-attr]

    # ---- on the loop -----------------------------------------------------------------------

    def _deliver(self, sid: str | None, frame: str | bytes) -> None:
        targets = list(self.clients.values()) if sid is None else [c for c in (self.clients.get(sid),) if c is not None]
        for client in targets:
            if client.outbox.qsize() >= MAX_BACKLOG:
                log.warning("client %s stopped reading; disconnecting it", client.sid)
                self.disconnect(client)
                asyncio.ensure_future(client.ws.close())
            else:
                client.outbox.put_nowait(frame)

    def _schedule_status(self) -> None:
        if not self._status_scheduled:
            self._status_scheduled = True
            asyncio.get_running_loop().call_soon(self._broadcast_status)

    def _broadcast_status(self) -> None:
        self._status_scheduled = False
        self._deliver(None, text_frame("status", self.status()))

    def status(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self.queue.remaining()}}}
        if sid is not None:
            data["sid"] = sid
        return data

    def connect(self, sid: str, ws: web.WebSocketResponse) -> Client:
        """Register a socket under `sid`, replacing (and closing) an older one of the same id."""
        old = self.clients.pop(sid, None)
        if old is not None:
            asyncio.ensure_future(old.ws.close())
        client = Client(sid, ws)
        self.clients[sid] = client
        task = asyncio.ensure_future(self._send_loop(client))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)
        client.outbox.put_nowait(text_frame("status", self.status(sid)))
        current = self.worker.current
        if current is not None and current.client_id == sid and self.worker.current_node is not None:
            node = self.worker.current_node
            client.outbox.put_nowait(text_frame(ev.EXECUTING, {"node": node, "display_node": node, "prompt_id": current.prompt_id}))
        return client

    def disconnect(self, client: Client) -> None:
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]
        client.outbox.put_nowait(b"")  # wakes the sender, which then sees the socket closed

    async def _send_loop(self, client: Client) -> None:
        try:
            while not client.ws.closed:
                frame = await client.outbox.get()
                if client.ws.closed:
                    break
                if isinstance(frame, str):
                    await client.ws.send_str(frame)
                elif frame:
                    await client.ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):  # the peer went away mid-send
            pass

    async def close_all(self) -> None:
        for client in list(self.clients.values()):
            await client.ws.close()
        for task in list(self._senders):
            task.cancel()


async def websocket_handler(request: web.Request, hub: Hub) -> web.WebSocketResponse:
    """`GET /ws?clientId=...`: the status handshake, then events until the client leaves."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    requested = request.query.get("clientId", "")
    sid = requested if 0 < len(requested) <= MAX_CLIENT_ID else uuid.uuid4().hex
    client = hub.connect(sid, ws)
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                _on_client_message(client, message.data, hub.features)
    finally:
        hub.disconnect(client)
    return ws


def _on_client_message(client: Client, text: str, features: dict[str, Any]) -> None:
    """Clients may negotiate features; other messages are ignored."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return
    if isinstance(message, dict) and message.get("type") == "feature_flags" and isinstance(message.get("data"), dict):
        client.features = message["data"]
        client.outbox.put_nowait(text_frame("feature_flags", features))
