"""engine.queue: the persistent prompt queue and history."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from engine.queue import MAX_ATTEMPTS, DuplicatePromptError, PromptQueue, QueueLockedError

PROMPT = {"1": {"class_type": "X", "inputs": {}}}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "user" / "queue.sqlite3"


@pytest.fixture
def queue(path):
    q = PromptQueue(path)
    yield q
    q.close()


def entry(status: str = "success") -> dict:
    return {"prompt": [], "outputs": {}, "status": {"status_str": status, "completed": status == "success", "messages": []}, "meta": {}}


def test_counter_numbers_front_and_explicit_priorities(queue) -> None:
    a = queue.put(PROMPT, "a")
    b = queue.put(PROMPT, "b")
    front = queue.put(PROMPT, "front", front=True)
    explicit = queue.put(PROMPT, "explicit", number=-0.5)
    later_front = queue.put(PROMPT, "later-front", front=True)
    assert (a.number, b.number, front.number, explicit.number, later_front.number) == (0, 1, -2, -0.5, -3)
    assert [i.prompt_id for i in queue.pending()] == ["later-front", "front", "explicit", "a", "b"]
    assert queue.remaining() == 5


def test_equal_numbers_keep_arrival_order(queue) -> None:
    for pid in ("x", "y", "z"):
        queue.put(PROMPT, pid, number=7)
    assert [i.prompt_id for i in queue.pending()] == ["x", "y", "z"]


def test_rows_are_comfyui_queue_entries_and_secrets_are_not_stored(queue, path) -> None:
    item = queue.put(PROMPT, "p", {"client_id": "c", "auth_token_comfy_org": "secret", "api_key_comfy_org": "key", "extra_pnginfo": {"w": 1}}, ["1"])
    assert item.row() == [0, "p", PROMPT, {"client_id": "c", "extra_pnginfo": {"w": 1}}, ["1"]]
    assert item.client_id == "c"
    raw = sqlite3.connect(path).execute("SELECT extra_data FROM queue").fetchone()[0]
    assert "secret" not in raw and "key" not in raw.replace("client_id", "")


def test_duplicate_ids_are_refused_while_queued_but_may_repeat_after(queue) -> None:
    queue.put(PROMPT, "same")
    with pytest.raises(DuplicatePromptError):
        queue.put(PROMPT, "same")
    assert queue.claim().prompt_id == "same"
    with pytest.raises(DuplicatePromptError):  # running counts too
        queue.put(PROMPT, "same")
    queue.finish("same", entry())
    queue.put(PROMPT, "same")
    assert [i.prompt_id for i in queue.pending()] == ["same"]


def test_claim_marks_running_and_finish_moves_to_history(queue) -> None:
    queue.put(PROMPT, "a", outputs=["1"])
    queue.put(PROMPT, "b")
    item = queue.claim()
    assert (item.prompt_id, item.attempts, item.outputs) == ("a", 1, ["1"])
    assert [i.prompt_id for i in queue.running()] == ["a"] and [i.prompt_id for i in queue.pending()] == ["b"]
    assert queue.remaining() == 2
    queue.finish("a", entry())
    assert queue.remaining() == 1 and queue.running() == []
    assert queue.history_entry("a") == entry()
    assert queue.history_entry("b") is None


def test_claim_waits_for_work_and_returns_none_on_timeout(queue) -> None:
    started = time.monotonic()
    assert queue.claim(timeout=0.1) is None
    assert time.monotonic() - started >= 0.09
    threading.Timer(0.1, queue.put, args=(PROMPT, "late")).start()
    assert queue.claim(timeout=5).prompt_id == "late"


def test_delete_and_clear_touch_only_pending_items(queue) -> None:
    for pid in ("run", "a", "b", "c"):
        queue.put(PROMPT, pid)
    queue.claim()
    assert queue.delete(["a", "run", "unknown"]) == 1
    assert [i.prompt_id for i in queue.pending()] == ["b", "c"]
    assert queue.clear() == 2
    assert queue.pending() == [] and [i.prompt_id for i in queue.running()] == ["run"]


def test_listeners_hear_changes_but_not_finish(queue) -> None:
    heard = []
    queue.on_change(lambda: heard.append(queue.remaining()))
    queue.put(PROMPT, "a")
    queue.put(PROMPT, "b")
    queue.delete(["b"])
    queue.claim()
    queue.finish("a", entry())
    assert heard == [1, 2, 1]
    queue.notify()
    assert heard == [1, 2, 1, 0]


def test_history_windows(queue) -> None:
    for pid in "abcde":
        queue.put(PROMPT, pid)
        queue.claim()
        queue.finish(pid, entry())
    assert list(queue.history()) == list("abcde")
    assert list(queue.history(max_items=2)) == ["d", "e"]
    assert list(queue.history(max_items=2, offset=1)) == ["b", "c"]
    assert list(queue.history(offset=3)) == ["d", "e"]
    assert list(queue.history(max_items=0)) == []
    queue.delete_history(["b", "d"])
    assert list(queue.history()) == ["a", "c", "e"]
    queue.clear_history()
    assert queue.history() == {}


def test_a_rerun_prompt_replaces_its_history_entry_and_becomes_newest(queue) -> None:
    for pid in ("a", "b", "a"):
        queue.put(PROMPT, pid)
        queue.claim()
        queue.finish(pid, entry("error" if pid == "b" else "success"))
    assert list(queue.history()) == ["b", "a"]


def test_history_is_capped(path) -> None:
    queue = PromptQueue(path, max_history=3)
    for pid in "abcde":
        queue.put(PROMPT, pid)
        queue.claim()
        queue.finish(pid, entry())
    assert list(queue.history()) == ["c", "d", "e"]
    queue.close()


def test_everything_survives_reopening(path) -> None:
    queue = PromptQueue(path)
    queue.put(PROMPT, "done")
    queue.claim()
    queue.finish("done", entry())
    queue.put(PROMPT, "waiting", {"client_id": "c"}, ["1"])
    queue.close()
    reopened = PromptQueue(path)
    assert [i.row() for i in reopened.pending()] == [[1, "waiting", PROMPT, {"client_id": "c"}, ["1"]]]
    assert list(reopened.history()) == ["done"]
    assert reopened.put(PROMPT, "next").number == 2  # the counter goes on
    reopened.close()


def test_recover_requeues_a_prompt_a_crash_interrupted_then_gives_up(path) -> None:
    queue = PromptQueue(path)
    queue.put(PROMPT, "crashy")
    queue.put(PROMPT, "other")
    assert queue.claim().prompt_id == "crashy"
    queue.close()  # the process "dies" while crashy runs
    for attempt in range(1, MAX_ATTEMPTS):
        queue = PromptQueue(path)
        report = queue.recover()
        assert report.requeued == ["crashy"] and report.abandoned == []
        item = queue.claim()
        assert (item.prompt_id, item.attempts) == ("crashy", attempt + 1)  # it runs first again
        queue.close()
    queue = PromptQueue(path)
    report = queue.recover()
    assert report.requeued == [] and [i.prompt_id for i in report.abandoned] == ["crashy"]
    assert [i.prompt_id for i in queue.pending()] == ["other"]
    queue.close()


def test_release_puts_an_item_back_without_counting_an_attempt(queue) -> None:
    queue.put(PROMPT, "a")
    queue.claim()
    queue.release("a")
    item = queue.claim()
    assert (item.prompt_id, item.attempts) == ("a", 1)


def test_a_second_process_cannot_open_the_same_queue(queue, path) -> None:
    with pytest.raises(QueueLockedError, match="another sdflow process"):
        PromptQueue(path)


def test_the_database_uses_write_ahead_logging(queue, path) -> None:
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
