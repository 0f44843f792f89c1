"""engine.worker: running queued prompts, writing history, shutting down, recovering."""

from __future__ import annotations

import types

import pytest

from engine import events as ev
from engine.queue import MAX_ATTEMPTS, PromptQueue
from engine.runtime import Runtime, Settings
from engine.worker import Worker, recover
from tests.engine.enginetest_nodes import NATIVE, WAITING
from tests.server.helpers import wait_for

SHOW_ONE = {"1": {"class_type": "Const", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
WAIT = {"1": {"class_type": "WaitForInterrupt", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    runtime = Runtime(Settings(base_dir=tmp_path, load_plugins=False, builtin_packages=()))
    pack = types.ModuleType("worker_test_nodes")
    pack.NODES = NATIVE  # type: ignore[attr-defined]
    runtime.registry.add_module(pack, source="test")
    return runtime


@pytest.fixture
def queue(tmp_path):
    q = PromptQueue(tmp_path / "queue.sqlite3")
    yield q
    q.close()


@pytest.fixture
def worker(queue, runtime):
    w = Worker(queue, runtime)
    w.start()
    yield w
    w.stop(10)


def test_a_queued_prompt_runs_and_its_history_exists_before_the_end_is_announced(queue, runtime, worker) -> None:
    seen = []
    runtime.bus.subscribe(lambda e: seen.append((e.type, queue.history_entry("p") is not None)) if e.type in (ev.EXECUTION_SUCCESS, ev.EXECUTING) else None)
    changes = []
    queue.on_change(lambda: changes.append(queue.remaining()))
    queue.put(SHOW_ONE, "p", {"client_id": "c"}, ["2"])
    entry = wait_for(lambda: queue.history_entry("p"))
    assert entry["outputs"] == {"2": {"value": [1]}} and entry["status"]["status_str"] == "success"
    assert entry["prompt"] == [0, "p", SHOW_ONE, {"client_id": "c"}, ["2"]]
    wait_for(lambda: changes[-1:] == [0])
    assert seen[-2:] == [(ev.EXECUTION_SUCCESS, True), (ev.EXECUTING, True)]
    assert queue.remaining() == 0 and worker.current is None


def test_a_prompt_that_cannot_run_is_recorded_and_announced(queue, runtime, worker) -> None:
    heard = []
    runtime.bus.subscribe(lambda e: heard.append(e))
    queue.put({"1": {"class_type": "Vanished", "inputs": {}}}, "gone", outputs=["1"])
    entry = wait_for(lambda: queue.history_entry("gone"))
    assert entry["status"]["status_str"] == "error"
    error = entry["status"]["messages"][-1]
    assert error[0] == "execution_error" and "no longer valid" in error[1]["exception_message"] and "Vanished" in error[1]["exception_message"]
    wait_for(lambda: any(e.type == ev.EXECUTING and e.data["node"] is None for e in heard))
    assert [e.type for e in heard] == [ev.EXECUTION_START, ev.EXECUTION_ERROR, ev.EXECUTING]
    queue.put(SHOW_ONE, "next", outputs=["2"])  # the worker goes on
    wait_for(lambda: queue.history_entry("next"))


def test_interrupt_by_id_only_hits_the_running_prompt(queue, worker) -> None:
    WAITING.clear()
    queue.put(WAIT, "long", outputs=["2"])
    assert WAITING.wait(10)
    assert worker.interrupt("another") is False
    assert worker.interrupt("long") is True
    entry = wait_for(lambda: queue.history_entry("long"))
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert worker.interrupt() is False  # nothing runs


def test_stopping_leaves_the_running_prompt_queued_for_the_next_start(queue, runtime) -> None:
    worker = Worker(queue, runtime)
    worker.start()
    WAITING.clear()
    queue.put(WAIT, "unfinished", outputs=["2"])
    assert WAITING.wait(10)
    worker.stop(10)
    assert queue.history_entry("unfinished") is None
    (item,) = queue.pending()
    assert (item.prompt_id, item.attempts) == ("unfinished", 0)


def test_free_requests_are_applied_between_prompts(queue, runtime, worker) -> None:
    queue.put(SHOW_ONE, "cached", outputs=["2"])
    wait_for(lambda: queue.history_entry("cached"))
    assert len(runtime.executor.cache) > 0
    worker.request_free(unload_models=False, free_memory=True)
    wait_for(lambda: len(runtime.executor.cache) == 0, timeout=5)


def test_recover_records_a_prompt_that_crashed_the_process_too_often(tmp_path) -> None:
    path = tmp_path / "crash.sqlite3"
    for _ in range(MAX_ATTEMPTS):
        queue = PromptQueue(path)
        queue.recover()
        queue.put(SHOW_ONE, "crashy") if queue.get("crashy") is None else None
        queue.claim()
        queue.close()
    queue = PromptQueue(path)
    report = recover(queue)
    assert [i.prompt_id for i in report.abandoned] == ["crashy"]
    entry = queue.history_entry("crashy")
    assert entry["status"]["status_str"] == "error" and "not started again" in entry["status"]["messages"][-1][1]["exception_message"]
    assert queue.remaining() == 0
    queue.close()
