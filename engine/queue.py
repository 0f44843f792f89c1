"""The prompt queue and the history, persisted in SQLite so that nothing submitted is lost.

A prompt is committed (WAL journal, full sync) before its submitter hears back, so a prompt that
was answered is on disk. Items wait in priority order (lower `number` first, then arrival), are
claimed by a worker (`running`), and leave the queue in the same transaction that writes their
history entry. After a crash, a prompt that was running is queued again; one that was running
during `MAX_ATTEMPTS` crashes is given up (see `recover`), so a prompt that kills the process
cannot do so forever.

Credentials a client sends in `extra_data` (`SECRET_KEYS`) are dropped before anything is stored.
One process at a time may open a queue file; a second gets `QueueLockedError`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:
    import fcntl
except ImportError:  # Windows: the single-process guard is skipped
    fcntl = None  # type: ignore[assignment]

SECRET_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
#: a prompt that was running during this many crashes is not started again
MAX_ATTEMPTS = 2
DEFAULT_MAX_HISTORY = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL UNIQUE,
    number REAL NOT NULL,
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs TEXT NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class DuplicatePromptError(ValueError):
    """A prompt with this id is already waiting or running."""


class QueueLockedError(RuntimeError):
    """Another process has this queue open."""


@dataclass(frozen=True)
class QueueItem:
    """One queued prompt; `row()` is ComfyUI's five-element queue entry."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    #: how many times a worker has started it (more than one after a crash)
    attempts: int = 0

    @property
    def client_id(self) -> str | None:
        client = self.extra_data.get("client_id")
        return client if isinstance(client, str) else None

    def row(self) -> list[Any]:
        """`[number, prompt_id, prompt, extra_data, outputs_to_execute]`."""
        return [_plain_number(self.number), self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class Recovery:
    """What opening the queue found left over from a previous process."""

    requeued: list[str] = field(default_factory=list)
    #: items that were running during MAX_ATTEMPTS crashes: the caller records their failure
    abandoned: list[QueueItem] = field(default_factory=list)


class PromptQueue:
    """Pending and running prompts plus finished prompts' history, in one SQLite file."""

    def __init__(self, path: Path, max_history: int = DEFAULT_MAX_HISTORY) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_history = max_history
        self._lock_file = _lock_exclusively(path.with_name(path.name + ".lock"))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._listeners: list[Callable[[], None]] = []

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._lock_file.close()

    # ---- change notification ---------------------------------------------------------------

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) whenever items are added, removed or finished."""
        self._listeners.append(listener)

    def notify(self) -> None:
        """Tell listeners the queue changed; `finish` leaves this to its caller (see Worker)."""
        for listener in self._listeners:
            listener()

    # ---- queue -------------------------------------------------------------------------------

    def put(
        self,
        prompt: dict[str, Any],
        prompt_id: str,
        extra_data: dict[str, Any] | None = None,
        outputs: list[str] | None = None,
        number: float | None = None,
        front: bool = False,
    ) -> QueueItem:
        """Store a prompt durably and return its item. Without `number` the next counter value is
        used (negated with `front`, so it runs before everything queued so far)."""
        extra = {k: v for k, v in (extra_data or {}).items() if k not in SECRET_KEYS}
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM queue WHERE prompt_id = ?", (prompt_id,)).fetchone():
                raise DuplicatePromptError(f"a prompt with id {prompt_id!r} is already queued")
            if number is None:
                counter = self._next_counter(db)
                number = -counter if front else counter
            db.execute(
                "INSERT INTO queue (prompt_id, number, prompt, extra_data, outputs) VALUES (?, ?, ?, ?, ?)",
                (prompt_id, float(number), _dumps(prompt), _dumps(extra), _dumps(outputs or [])),
            )
            self._wakeup.notify_all()
        self.notify()
        return QueueItem(float(number), prompt_id, prompt, extra, list(outputs or []))

    def claim(self, timeout: float | None = None, stop: threading.Event | None = None) -> QueueItem | None:
        """Mark the first pending item running and return it; wait up to `timeout` for one."""
        with self._wakeup:
            while True:
                item = self._claim_now()
                if item is not None or timeout is None or (stop is not None and stop.is_set()):
                    return item
                if not self._wakeup.wait(timeout):
                    return self._claim_now()

    def wake(self) -> None:
        """Wake workers waiting in `claim` (e.g. to let them see a stop request)."""
        with self._wakeup:
            self._wakeup.notify_all()

    def finish(self, prompt_id: str, entry: dict[str, Any]) -> None:
        """Remove a prompt from the queue and write its history entry, in one transaction."""
        with self._transaction() as db:
            db.execute("DELETE FROM queue WHERE prompt_id = ?", (prompt_id,))
            db.execute("INSERT OR REPLACE INTO history (prompt_id, entry) VALUES (?, ?)", (prompt_id, _dumps(entry)))
            db.execute(
                "DELETE FROM history WHERE seq <= (SELECT seq FROM history ORDER BY seq DESC LIMIT 1 OFFSET ?)", (self.max_history,)
            )

    def release(self, prompt_id: str) -> None:
        """Put a running item back to waiting, as if it had never started (a clean shutdown)."""
        with self._transaction() as db:
            db.execute("UPDATE queue SET running = 0, attempts = MAX(attempts - 1, 0) WHERE prompt_id = ?", (prompt_id,))

    def running(self) -> list[QueueItem]:
        return self._items("WHERE running = 1 ORDER BY seq")

    def pending(self) -> list[QueueItem]:
        """Waiting items in the order they will run."""
        return self._items("WHERE running = 0 ORDER BY number, seq")

    def get(self, prompt_id: str) -> QueueItem | None:
        items = self._items("WHERE prompt_id = ?", (prompt_id,))
        return items[0] if items else None

    def remaining(self) -> int:
        """Pending plus running: ComfyUI's `queue_remaining`."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0])

    def delete(self, prompt_ids: list[str]) -> int:
        """Remove waiting items (running ones stay); returns how many went."""
        with self._transaction() as db:
            removed = sum(db.execute("DELETE FROM queue WHERE running = 0 AND prompt_id = ?", (pid,)).rowcount for pid in prompt_ids)
        self.notify()
        return removed

    def clear(self) -> int:
        """Remove every waiting item."""
        with self._transaction() as db:
            removed = db.execute("DELETE FROM queue WHERE running = 0").rowcount
        self.notify()
        return removed

    def recover(self) -> Recovery:
        """Requeue what was running when the last process died; give up on repeat offenders."""
        report = Recovery()
        with self._transaction() as db:
            for item in self._items("WHERE running = 1 ORDER BY seq"):
                if item.attempts >= MAX_ATTEMPTS:
                    report.abandoned.append(item)
                else:
                    db.execute("UPDATE queue SET running = 0 WHERE prompt_id = ?", (item.prompt_id,))
                    report.requeued.append(item.prompt_id)
        return report

    # ---- history -------------------------------------------------------------------------------

    def history(self, max_items: int | None = None, offset: int = -1) -> dict[str, dict[str, Any]]:
        """Entries oldest first; `max_items` alone gives the newest ones, with `offset` a window.
        Numbers beyond SQLite's 64-bit integers mean "all" (`max_items`) or "past the end" (`offset`)."""
        with self._lock:
            if offset < 0 and max_items is not None:
                rows = self._db.execute(
                    "SELECT prompt_id, entry FROM (SELECT * FROM history ORDER BY seq DESC LIMIT ?) ORDER BY seq", (_sql_count(max_items),)
                ).fetchall()
            else:
                limit = -1 if max_items is None else _sql_count(max_items)
                rows = self._db.execute(
                    "SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?", (limit, _sql_count(offset))
                ).fetchall()
        return {pid: json.loads(entry) for pid, entry in rows}

    def history_entry(self, prompt_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT entry FROM history WHERE prompt_id = ?", (prompt_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def delete_history(self, prompt_ids: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM history WHERE prompt_id = ?", [(pid,) for pid in prompt_ids])

    def clear_history(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM history")

    # ---- internals -------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def _next_counter(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM counters WHERE name = 'number'").fetchone()
        value = 0 if row is None else row[0]
        db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('number', ?)", (value + 1,))
        return value

    def _claim_now(self) -> QueueItem | None:
        with self._transaction() as db:
            items = self._items("WHERE running = 0 ORDER BY number, seq LIMIT 1")
            if not items:
                return None
            db.execute("UPDATE queue SET running = 1, attempts = attempts + 1 WHERE prompt_id = ?", (items[0].prompt_id,))
        item = items[0]
        return QueueItem(item.number, item.prompt_id, item.prompt, item.extra_data, item.outputs, item.attempts + 1)

    def _items(self, where: str, params: tuple[Any, ...] = ()) -> list[QueueItem]:
        with self._lock:
            rows = self._db.execute(f"SELECT number, prompt_id, prompt, extra_data, outputs, attempts FROM queue {where}", params).fetchall()
        return [QueueItem(n, pid, json.loads(p), json.loads(e), json.loads(o), a) for n, pid, p, e, o, a in rows]


class _Transaction:
    """`with` block holding the queue's lock and one IMMEDIATE transaction (rolled back on error)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: type | None, *_: Any) -> None:
        try:
            if self.outer:
                self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()


def _lock_exclusively(path: Path) -> Any:
    handle = open(path, "a+")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise QueueLockedError(f"another sdflow process is using the queue {path.with_suffix('')}") from None
    return handle


def _dumps(value: Any) -> str:
    """JSON for storage; values JSON cannot hold (a plugin's odd UI data) are stored as text."""
    return json.dumps(value, default=str, allow_nan=True)


def _plain_number(number: float) -> int | float:
    return int(number) if math.isfinite(number) and number.is_integer() else number


def _sql_count(value: int) -> int:
    """A LIMIT or OFFSET for SQLite: negatives as 0, and clamped to its largest (64-bit) integer."""
    return min(max(value, 0), 2**63 - 1)
