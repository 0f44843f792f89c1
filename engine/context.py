"""NodeContext: the only way a node reaches files, services, progress and interruption."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from engine.folders import Folders

T = TypeVar("T")
log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised inside a node when the user interrupts the running prompt."""


class Services:
    """A typed container of long-lived services (model manager, ...) that nodes may use."""

    def __init__(self) -> None:
        self._items: dict[type, Any] = {}

    def provide(self, service: Any, as_type: type | None = None) -> None:
        self._items[as_type or type(service)] = service

    def get(self, service_type: type[T]) -> T:
        try:
            return self._items[service_type]
        except KeyError:
            raise LookupError(f"service {service_type.__name__} is not available in this runtime") from None


ProgressHook = Callable[[str, int, int, Any], None]
WarningHook = Callable[[str, str], None]


@dataclass
class NodeContext:
    """What one node call may use besides its inputs.

    `progress` reports steps (and checks for interruption); `check_interrupt` raises
    `Interrupted` when the prompt was interrupted. At validation time (fingerprints and custom
    checks) there is no prompt running: `prompt_id` is None and progress is ignored.
    """

    node_id: str
    class_type: str
    folders: Folders
    services: Services
    prompt_id: str | None = None
    prompt: dict[str, Any] = field(default_factory=dict)
    extra_data: dict[str, Any] = field(default_factory=dict)
    interrupt_flag: threading.Event = field(default_factory=threading.Event)
    progress_hook: ProgressHook | None = None
    warning_hook: WarningHook | None = None

    @property
    def extra_pnginfo(self) -> dict[str, Any]:
        """Metadata the client asked to embed in saved images (normally `{"workflow": ...}`)."""
        return self.extra_data.get("extra_pnginfo") or {}

    def check_interrupt(self) -> None:
        if self.interrupt_flag.is_set():
            raise Interrupted()

    def progress(self, value: int, total: int, preview: Any = None) -> None:
        """Report `value` of `total` steps done, optionally with a preview image (a PIL image);
        raises `Interrupted` if the user interrupted."""
        self.check_interrupt()
        if self.progress_hook is not None:
            self.progress_hook(self.node_id, value, total, preview)

    def warn(self, message: str) -> None:
        """Tell the user about something that did not stop the node (e.g. parts of a file that
        were not used): a `node_warning` event, shown by the CLI and the editor. Also logged."""
        log.warning("node %s (%s): %s", self.node_id, self.class_type, message)
        if self.warning_hook is not None:
            self.warning_hook(self.node_id, message)
