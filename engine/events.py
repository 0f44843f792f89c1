"""Execution events: plain data published on a bus that the server, CLI and history subscribe to.

Event names and fields are ComfyUI's, so the server can forward them to WebSocket clients as
they are. `execution_plan` is sdflow's own: it tells subscribers up front which nodes will run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

EXECUTION_START = "execution_start"
EXECUTION_PLAN = "execution_plan"
EXECUTION_CACHED = "execution_cached"
EXECUTING = "executing"
PROGRESS = "progress"
#: {prompt_id, nodes: {id: {value, max, state (running|finished|error), node_id, prompt_id, display_node_id, parent_node_id, real_node_id}}}
PROGRESS_STATE = "progress_state"
#: sdflow's own: a step's preview image {prompt_id, node, image (PIL)}; the server sends it as a binary frame
PREVIEW = "preview"
#: sdflow's own: something a node wants the user to know that did not stop it
#: {prompt_id, node, display_node, message}; kept in the history's status messages
NODE_WARNING = "node_warning"
EXECUTED = "executed"
EXECUTION_SUCCESS = "execution_success"
EXECUTION_ERROR = "execution_error"
EXECUTION_INTERRUPTED = "execution_interrupted"


def timestamp_ms() -> int:
    """Milliseconds since the epoch, the unit ComfyUI's events use."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Event:
    """One event: a ComfyUI event name and its data dict."""

    type: str
    data: dict[str, Any]


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe; safe to publish from the worker thread."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not subscriber]

        return unsubscribe

    def publish(self, type: str, data: dict[str, Any]) -> None:
        """Deliver an event to every subscriber; a failing subscriber never stops execution."""
        event = Event(type, data)
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, type)
