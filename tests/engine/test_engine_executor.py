"""engine.executor, engine.cache and engine.events: running prompts, caching, lists, failures, events."""

import math
from dataclasses import dataclass
from typing import Any
import threading
import time

import pytest
import torch

import enginetest_nodes as tn
from engine.cache import OutputCache, cache_key, estimate_bytes, unique_key
from engine.errors import NodeInputError
from engine.events import EventBus
from engine.native import Input, Node, Output, node
from engine.workflow.api import Link


def chain(b: int = 2) -> dict:
    """Const 1, Const 2 → Add 3 → Show 4; Const 5 → Show 6."""
    return {
        "1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Const", "inputs": {"value": b}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
        "5": {"class_type": "Const", "inputs": {"value": 10}},
        "6": {"class_type": "Show", "inputs": {"value": ["5", 0]}},
    }


def executing_nodes(rec):
    return [d["node"] for d in rec.of("executing")]


# ---- caching -----------------------------------------------------------------------------------


def test_first_run_executes_everything_in_order(executor):
    ex, _ = executor
    result = ex.execute(chain(), prompt_id="p1")
    assert result.prompt_id == "p1"
    assert result.status == "success" and result.ok
    assert result.outputs == ["4", "6"]
    assert result.executed == ["1", "2", "3", "4", "5", "6"]
    assert result.cached == []
    assert result.failures == {}
    assert result.ui == {"4": {"value": [3]}, "6": {"value": [10]}}
    assert result.seconds > 0
    assert [c[1] for c in tn.CALLS] == ["1", "2", "3", "4", "5", "6"]


def test_second_run_is_fully_cached(executor):
    ex, rec = executor
    ex.execute(chain())
    calls_before = list(tn.CALLS)
    rec.clear()
    result = ex.execute(chain())
    assert result.executed == []
    assert result.cached == ["4", "6"]
    assert tn.CALLS == calls_before
    assert result.status == "success"
    assert result.ui == {"4": {"value": [3]}, "6": {"value": [10]}}
    assert executing_nodes(rec) == [None]


def test_changing_one_constant_reruns_it_and_its_descendants_only(executor):
    ex, _ = executor
    ex.execute(chain(b=2))
    tn.CALLS.clear()
    result = ex.execute(chain(b=7))
    assert result.executed == ["2", "3", "4"]
    assert sorted(result.cached) == ["1", "6"]
    assert [c[1] for c in tn.CALLS] == ["2", "3", "4"]
    assert result.ui["4"] == {"value": [8]}


def test_coerced_values_share_the_cache_key(executor):
    ex, _ = executor
    ex.execute(chain(b=2))
    assert ex.execute(chain(b="2")).executed == []


def test_node_ids_do_not_matter_for_the_key(executor):
    ex, _ = executor
    ex.execute(chain())
    renamed = {
        "a": {"class_type": "Const", "inputs": {"value": 1}},
        "b": {"class_type": "Const", "inputs": {"value": 2}},
        "c": {"class_type": "Add", "inputs": {"a": ["a", 0], "b": ["b", 0]}},
        "d": {"class_type": "Show", "inputs": {"value": ["c", 0]}},
    }
    result = ex.execute(renamed)
    assert result.executed == [] and result.cached == ["d"]


def test_swapped_inputs_are_a_different_key(executor):
    ex, _ = executor
    ex.execute(chain())
    swapped = chain()
    swapped["3"]["inputs"] = {"a": ["2", 0], "b": ["1", 0]}
    assert ex.execute(swapped).executed == ["3", "4"]


def test_identical_subgraphs_in_one_prompt_run_once(executor):
    ex, rec = executor
    prompt = chain()
    for nid in ("1", "2", "3", "4"):
        node_ = {**prompt[nid], "inputs": {k: (["1" + v[0], v[1]] if isinstance(v, list) else v) for k, v in prompt[nid]["inputs"].items()}}
        prompt["1" + nid] = node_
    assert prompt["13"]["inputs"] == {"a": ["11", 0], "b": ["12", 0]}
    result = ex.execute(prompt)
    assert result.status == "success"
    assert tn.call_count("Add") == 1
    assert tn.call_count("Show") == 2  # node 4 and node 6 (different values)
    assert sorted(tn.called_ids("Const")) == ["1", "2", "5"]
    assert result.ui["14"] == result.ui["4"] == {"value": [3]}
    assert sorted(result.executed) == ["1", "2", "3", "4", "5", "6"]
    assert sorted(result.cached) == ["11", "12", "13", "14"]
    assert {d["node"] for d in rec.of("executed")} == {"4", "6", "14"}


def test_cache_survives_switching_prompts(executor):
    ex, _ = executor
    a = chain()
    b = {"1": {"class_type": "Const", "inputs": {"value": 99}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    ex.execute(a)
    assert ex.execute(b).executed == ["1", "2"]
    assert ex.execute(a).executed == []
    assert ex.execute(b).executed == []


def test_cache_too_small_keeps_nothing(tmp_path):
    ex, _ = tn.make_executor(tmp_path, cache=OutputCache(max_bytes=0))
    ex.execute(chain())
    assert len(ex.cache) == 0
    assert ex.execute(chain()).executed == ["1", "2", "3", "4", "5", "6"]


def test_not_idempotent_native_node(tmp_path):
    @node(outputs=["INT"], not_idempotent=True)
    class Impure(Node):
        value: int = 0

        def execute(self, ctx):
            tn.record("Impure", ctx.node_id)
            return self.value

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Impure])
    prompt = {
        "1": {"class_type": "Impure", "inputs": {"value": 1}},
        "2": {"class_type": "Impure", "inputs": {"value": 1}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }
    assert ex.execute(prompt).ui["4"] == {"value": [2]}
    assert tn.called_ids("Impure") == ["1", "2"]
    assert ex.execute(prompt).executed == []


def test_fingerprint_changes_the_key(tmp_path):
    state = {"token": "a"}

    @node(outputs=["INT"])
    class Fingerprinted(Node):
        value: int = 0

        def fingerprint(self, ctx):
            token = state["token"]
            return token if isinstance(token, float) else (token, self.value)

        def execute(self, ctx):
            tn.record("Fingerprinted", ctx.node_id)
            return self.value

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Fingerprinted])
    prompt = {"1": {"class_type": "Fingerprinted", "inputs": {"value": 3}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    assert ex.execute(prompt).executed == ["1", "2"]
    assert ex.execute(prompt).executed == []
    state["token"] = "b"
    assert ex.execute(prompt).executed == ["1", "2"]
    state["token"] = math.nan
    assert ex.execute(prompt).executed == ["1", "2"]
    assert ex.execute(prompt).executed == ["1", "2"]


# ---- OutputCache and keys ------------------------------------------------------------------------


def entry(text: str) -> tuple[list, ...]:
    return ([text],)


def test_output_cache_lru_eviction_under_byte_budget():
    size = estimate_bytes(entry("a" * 1000)) + estimate_bytes(None)
    cache = OutputCache(max_bytes=int(size * 2.5))
    assert cache.put("a", entry("a" * 1000), None)
    assert cache.put("b", entry("b" * 1000), None)
    assert cache.bytes_used == 2 * size and len(cache) == 2
    assert cache.get("a").outputs == (["a" * 1000],)  # a is now the most recently used
    assert cache.put("c", entry("c" * 1000), None)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.bytes_used == 2 * size
    assert cache.get("b") is None


def test_output_cache_refuses_oversize_entries_without_evicting():
    small = estimate_bytes(entry("x")) + estimate_bytes(None)
    cache = OutputCache(max_bytes=small * 3)
    assert cache.put("small", entry("x"), None)
    assert cache.put("huge", entry("x" * 10_000), None) is False
    assert "huge" not in cache and "small" in cache and cache.bytes_used == small


def test_output_cache_counts_ui_and_replaces_entries():
    cache = OutputCache(max_bytes=10**6)
    ui = {"text": ["hello" * 10]}
    cache.put("k", entry("v"), ui)
    stored = cache.get("k")
    assert stored.ui == ui and stored.size == estimate_bytes(entry("v")) + estimate_bytes(ui)
    cache.put("k", entry("w" * 100), None)
    assert len(cache) == 1 and cache.bytes_used == estimate_bytes(entry("w" * 100)) + estimate_bytes(None)
    cache.clear()
    assert len(cache) == 0 and cache.bytes_used == 0


def test_estimate_bytes():
    t = torch.zeros(10, 10, dtype=torch.float32)
    assert estimate_bytes(t) == 400
    assert estimate_bytes(b"12345") == 5 and estimate_bytes("abc") == 3
    shared = torch.zeros(100, dtype=torch.uint8)
    assert estimate_bytes([shared, shared]) == estimate_bytes([shared]) + 8  # counted once; one more list slot


@dataclass(frozen=True)
class Encoder:
    key: str
    model: torch.nn.Module


@dataclass(frozen=True)
class Handle:
    """Shaped like a CLIP handle: a tuple of dataclasses, each holding a module."""

    encoders: tuple[Encoder, ...]
    patches: tuple = ()


class Holder:
    def __init__(self, handle: Handle) -> None:
        self.handle = handle


def test_estimate_bytes_counts_the_weights_a_handle_keeps_alive():
    module = torch.nn.Linear(64, 64)  # (64 * 64 + 64) float32
    weights = (64 * 64 + 64) * 4
    handle = Handle((Encoder("clip_l", module),))
    assert estimate_bytes(module) == weights
    assert weights < estimate_bytes(handle) < weights + 2000
    shared = Handle((Encoder("clip_l", module), Encoder("clip_g", module)))  # one module, counted once
    assert estimate_bytes(shared) < 2 * weights
    assert estimate_bytes(Holder(handle)) > weights and estimate_bytes({"clip": [handle]}) > weights


def test_output_cache_evicts_model_handles_under_its_budget():
    weights = (64 * 64 + 64) * 4
    cache = OutputCache(max_bytes=int(2.5 * weights))
    for key in "abc":
        assert cache.put(key, ([Handle((Encoder("clip_l", torch.nn.Linear(64, 64)),))],), None)
    assert "a" not in cache and "b" in cache and "c" in cache
    assert cache.put("big", ([Handle((Encoder("clip_l", torch.nn.Linear(128, 128)),))],), None) is False


def test_cache_key_material():
    base = cache_key("Add", "1", {"a": 1, "b": 2}, {"x": ("k1", 0)})
    assert base == cache_key("Add", "1", {"b": 2, "a": 1}, {"x": ("k1", 0)})
    assert len(base) == 64
    different = [
        cache_key("Sub", "1", {"a": 1, "b": 2}, {"x": ("k1", 0)}),
        cache_key("Add", "2", {"a": 1, "b": 2}, {"x": ("k1", 0)}),
        cache_key("Add", "1", {"a": 1, "b": 3}, {"x": ("k1", 0)}),
        cache_key("Add", "1", {"a": 1, "b": 2}, {"x": ("k2", 0)}),
        cache_key("Add", "1", {"a": 1, "b": 2}, {"x": ("k1", 1)}),
        cache_key("Add", "1", {"a": 1, "b": 2}, {"y": ("k1", 0)}),
        cache_key("Add", "1", {"a": 1, "b": 2}, {"x": ("k1", 0)}, fingerprint="f"),
        cache_key("Add", "1", {"a": 1, "b": 2}, {"x": ("k1", 0)}, node_id="7"),
        cache_key("Add", "1", {"a": True, "b": 2}, {"x": ("k1", 0)}),
    ]
    assert len({base, *different}) == 10


@pytest.mark.parametrize("constants, fingerprint", [({"a": object()}, None), ({"a": math.nan}, None), ({}, math.nan)])
def test_uncacheable_material_gives_unique_keys(constants, fingerprint):
    first = cache_key("N", "1", constants, {}, fingerprint)
    second = cache_key("N", "1", constants, {}, fingerprint)
    assert first != second and first.startswith("uncached-")
    assert unique_key() != unique_key()


# ---- list semantics ------------------------------------------------------------------------------


def test_one_call_per_element_and_shorter_lists_repeat_their_last_element(executor):
    ex, _ = executor
    result = ex.execute({
        "1": {"class_type": "Range", "inputs": {"count": 3}},
        "2": {"class_type": "Range", "inputs": {"count": 2, "start": 10}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
        "5": {"class_type": "SumList", "inputs": {"values": ["3", 0]}},
        "6": {"class_type": "Show", "inputs": {"value": ["5", 0]}},
    })
    assert result.status == "success"
    assert [c[2] for c in tn.calls("Add")] == [{"a": 0, "b": 10}, {"a": 1, "b": 11}, {"a": 2, "b": 11}]
    assert [c[2]["value"] for c in tn.calls("Show") if c[1] == "4"] == [10, 12, 13]
    assert result.ui["4"] == {"value": [10, 12, 13]}  # UI lists of several calls are concatenated
    assert tn.calls("SumList") == [("SumList", "5", {"values": [10, 12, 13]})]
    assert result.ui["6"] == {"value": [35]}


def test_constant_and_list_mix(executor):
    ex, _ = executor
    result = ex.execute({
        "1": {"class_type": "Range", "inputs": {"count": 2}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 5}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    })
    assert result.ui["3"] == {"value": [5, 6]}


def test_empty_list_runs_no_calls(executor):
    ex, _ = executor
    result = ex.execute({
        "1": {"class_type": "Range", "inputs": {"count": 0}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 5}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    })
    assert result.status == "success"
    assert tn.call_count("Add") == 0 and tn.call_count("Show") == 0
    assert result.ui == {}


# ---- failures ------------------------------------------------------------------------------------


def failing_prompt():
    return {
        "1": {"class_type": "Const", "inputs": {"value": 5}},
        "2": {"class_type": "Boom", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": 1}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
        "5": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    }


def test_a_failing_node_fails_only_its_descendants(executor):
    ex, rec = executor
    result = ex.execute(failing_prompt(), prompt_id="pf")
    assert result.status == "error" and not result.ok
    assert result.executed == ["1", "5"]
    assert set(result.failures) == {"2", "3", "4"}
    assert list(result.failed) == ["2"]
    assert result.failed_outputs == ["4"]
    boom = result.failures["2"]
    assert (boom.node_id, boom.class_type, boom.exception_type, boom.caused_by) == ("2", "Boom", "RuntimeError", None)
    assert boom.message == "Boom (node 2): RuntimeError: boom!"
    assert any("boom!" in line for line in boom.traceback)
    assert result.failures["3"].caused_by == "2" and result.failures["4"].caused_by == "2"
    assert result.failures["3"].message == "input 'a' comes from node 2, which failed"
    assert result.ui == {"5": {"value": [5]}}
    assert tn.call_count("Add") == 0
    assert "execution_success" not in rec.types()
    assert rec.types()[-1] == "executing" and rec.events[-1].data == {"node": None, "display_node": None, "prompt_id": "pf"}
    assert [m[0] for m in result.messages] == ["execution_start", "execution_cached", "execution_error"]


def test_execution_error_event_fields(executor):
    ex, rec = executor
    before = int(time.time() * 1000)
    ex.execute(failing_prompt(), prompt_id="pf")
    [data] = rec.of("execution_error")
    assert set(data) == {
        "prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type", "traceback",
        "current_inputs", "current_outputs", "timestamp",
    }
    assert data["prompt_id"] == "pf"
    assert data["node_id"] == "2" and data["node_type"] == "Boom"
    assert data["executed"] == ["1"]
    assert data["exception_message"] == "Boom (node 2): RuntimeError: boom!"
    assert data["exception_type"] == "RuntimeError"
    assert isinstance(data["traceback"], list) and all(isinstance(line, str) for line in data["traceback"])
    assert "RuntimeError: boom!" in data["traceback"][-1]
    assert data["current_inputs"] == {"value": ["5"]}
    assert data["current_outputs"] == ["1"]
    assert before <= data["timestamp"] <= int(time.time() * 1000)


def test_rerun_after_failure_resumes_at_the_failed_node(executor):
    ex, _ = executor
    ex.execute(failing_prompt())
    tn.CALLS.clear()
    result = ex.execute(failing_prompt())
    assert tn.called_ids() == ["2"]
    assert result.cached == ["1", "5"]


def test_node_input_error_message_is_readable(tmp_path):
    @node(outputs=["INT"])
    class Picky(Node):
        value: int = 0

        def execute(self, ctx):
            raise NodeInputError("value", "must be even")

    ex, rec = tn.make_executor(tmp_path, native=[*tn.NATIVE, Picky])
    result = ex.execute({"1": {"class_type": "Picky", "inputs": {"value": 3}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert result.failures["1"].message == "Picky (node 1): input 'value': must be even"
    assert result.failures["1"].exception_type == "NodeInputError"


def test_wrong_number_of_values_is_a_node_error(tmp_path):
    @node(outputs=["INT", "INT"])
    class Short(Node):
        def execute(self, ctx):
            from engine.definition import NodeResult
            return NodeResult(values=(1,))

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Short])
    result = ex.execute({"1": {"class_type": "Short", "inputs": {}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 1]}}})
    assert result.failures["1"].message == "Short (node 1): TypeError: returned 1 values for 2 outputs"


def test_failing_subscriber_does_not_stop_execution(executor):
    ex, rec = executor

    def bad(event):
        raise RuntimeError("subscriber bug")

    unsubscribe = ex.bus.subscribe(bad)
    assert ex.execute(chain()).status == "success"
    unsubscribe()
    assert "execution_success" in rec.types()


def test_event_bus_unsubscribe():
    bus = EventBus()
    seen = []
    unsubscribe = bus.subscribe(seen.append)
    bus.publish("x", {"a": 1})
    unsubscribe()
    bus.publish("y", {})
    assert [(e.type, e.data) for e in seen] == [("x", {"a": 1})]


# ---- events --------------------------------------------------------------------------------------


def test_event_order_of_a_fresh_run(executor):
    ex, rec = executor
    ex.execute({"1": {"class_type": "Const", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, prompt_id="p")
    events = [e for e in rec.events if e.type != "progress_state"]
    assert [e.type for e in events] == [
        "execution_start", "execution_cached", "execution_plan", "executing", "executing", "executed", "execution_success", "executing",
    ]
    start, cached, plan, ex1, ex2, executed, success, done = (e.data for e in events)
    assert set(start) == {"prompt_id", "timestamp"} and start["prompt_id"] == "p"
    assert cached["nodes"] == [] and cached["prompt_id"] == "p" and "timestamp" in cached
    assert plan == {"prompt_id": "p", "nodes": ["1", "2"]}
    assert ex1 == {"node": "1", "display_node": "1", "prompt_id": "p"}
    assert ex2 == {"node": "2", "display_node": "2", "prompt_id": "p"}
    assert executed == {"node": "2", "display_node": "2", "output": {"value": [1]}, "prompt_id": "p"}
    assert set(success) == {"prompt_id", "timestamp"}
    assert done == {"node": None, "display_node": None, "prompt_id": "p"}


def test_progress_state_tracks_every_started_node(executor):
    ex, rec = executor
    ex.execute({"1": {"class_type": "Steps", "inputs": {"steps": 2}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, prompt_id="ps")
    states = [{nid: (n["state"], n["value"], n["max"]) for nid, n in e["nodes"].items()} for e in rec.of("progress_state")]
    assert states == [
        {"1": ("running", 0, 1)},
        {"1": ("running", 1, 2)},
        {"1": ("running", 2, 2)},
        {"1": ("finished", 2, 2)},
        {"1": ("finished", 2, 2), "2": ("running", 0, 1)},
        {"1": ("finished", 2, 2), "2": ("finished", 1, 1)},
    ]
    entry = rec.of("progress_state")[0]
    assert entry["prompt_id"] == "ps"
    assert entry["nodes"]["1"] == {"value": 0, "max": 1, "state": "running", "node_id": "1", "prompt_id": "ps",
                                   "display_node_id": "1", "parent_node_id": None, "real_node_id": "1"}


def test_progress_state_marks_a_failed_node(executor):
    ex, rec = executor
    ex.execute({"1": {"class_type": "Boom", "inputs": {}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, prompt_id="pe")
    assert rec.of("progress_state")[-1]["nodes"]["1"]["state"] == "error"


def test_on_complete_runs_before_the_closing_events(executor):
    ex, rec = executor
    seen = []
    result = ex.execute({"1": {"class_type": "Const", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}},
                        on_complete=lambda r: seen.append((r.status, [m[0] for m in r.messages], rec.types()[-1])))
    assert seen == [("success", ["execution_start", "execution_cached", "execution_success"], "executed")]
    assert rec.types()[-2:] == ["execution_success", "executing"] and result.ok


def test_closing_events_are_published_even_if_on_complete_fails(executor):
    ex, rec = executor

    def broken(result):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ex.execute({"1": {"class_type": "Const", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, on_complete=broken)
    assert rec.types()[-2:] == ["execution_success", "executing"]


def test_event_order_of_a_cached_run(executor):
    ex, rec = executor
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    ex.execute(prompt)
    rec.clear()
    result = ex.execute(prompt, prompt_id="q")
    assert rec.types() == ["execution_start", "execution_cached", "execution_plan", "executed", "execution_success", "executing"]
    assert rec.of("execution_cached")[0]["nodes"] == ["2"]
    assert rec.of("execution_plan")[0]["nodes"] == []
    assert rec.of("executed") == [{"node": "2", "display_node": "2", "output": {"value": [1]}, "prompt_id": "q"}]
    assert [m[0] for m in result.messages] == ["execution_start", "execution_cached", "execution_success"]
    assert result.messages[1][1]["nodes"] == ["2"]


def test_progress_events(executor):
    ex, rec = executor
    ex.execute({"1": {"class_type": "Steps", "inputs": {"steps": 3}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, prompt_id="pp")
    assert rec.of("progress") == [
        {"value": 1, "max": 3, "prompt_id": "pp", "node": "1"},
        {"value": 2, "max": 3, "prompt_id": "pp", "node": "1"},
        {"value": 3, "max": 3, "prompt_id": "pp", "node": "1"},
    ]
    # progress comes between the node's executing and the next node's
    types = rec.types()
    assert types.index("progress") > types.index("executing") and types.count("progress") == 3


def test_warnings_are_events_and_history_messages(executor):
    ex, rec = executor
    result = ex.execute({"1": {"class_type": "Warns", "inputs": {"value": 7}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}, prompt_id="w")
    warning = {"prompt_id": "w", "node": "1", "display_node": "1", "message": "value 7 is suspicious"}
    assert result.ok and rec.of("node_warning") == [warning]
    assert ["node_warning", warning] in result.messages


# ---- interruption --------------------------------------------------------------------------------


def test_interrupt_from_inside_a_progress_loop(executor):
    ex, rec = executor
    prompt = {
        "1": {"class_type": "Steps", "inputs": {"steps": 5, "interrupt_at": 2}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Const", "inputs": {"value": 3}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }
    result = ex.execute(prompt, prompt_id="pi")
    assert result.status == "interrupted" and not result.ok
    assert [d["value"] for d in rec.of("progress")] == [1, 2]
    assert tn.call_count("Show") == 0 and tn.call_count("Const") == 0
    [data] = rec.of("execution_interrupted")
    assert set(data) == {"prompt_id", "node_id", "node_type", "executed", "timestamp"}
    assert (data["prompt_id"], data["node_id"], data["node_type"], data["executed"]) == ("pi", "1", "Steps", [])
    assert "execution_success" not in rec.types() and "execution_error" not in rec.types()
    assert rec.events[-1].data["node"] is None
    assert result.messages[-1][0] == "execution_interrupted"
    # the next prompt runs normally
    rec.clear()
    again = ex.execute({"1": {"class_type": "Steps", "inputs": {"steps": 2}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert again.status == "success" and again.executed == ["1", "2"]


def test_interrupt_from_another_thread(executor):
    ex, rec = executor

    def interrupter():
        if tn.WAITING.wait(10):
            ex.interrupt()

    thread = threading.Thread(target=interrupter)
    thread.start()
    started = time.monotonic()
    result = ex.execute({"1": {"class_type": "WaitForInterrupt", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    thread.join(10)
    assert result.status == "interrupted"
    assert time.monotonic() - started < 5
    assert rec.of("execution_interrupted")[0]["node_id"] == "1"
    assert tn.call_count("Show") == 0
    # an interrupted node is not cached: the same prompt runs it again (and is interrupted again here)
    tn.WAITING.clear()
    thread = threading.Thread(target=interrupter)
    thread.start()
    assert ex.execute({"1": {"class_type": "WaitForInterrupt", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}).status == "interrupted"
    thread.join(10)
    assert tn.call_count("WaitForInterrupt") == 2


def test_interrupt_before_a_prompt_does_not_affect_it(executor):
    ex, _ = executor
    ex.interrupt()
    assert ex.execute(chain()).status == "success"


# ---- blockers ------------------------------------------------------------------------------------


def test_silent_execution_blocker_skips_consumers(executor):
    ex, rec = executor
    result = ex.execute({
        "1": {"class_type": "Block", "inputs": {"message": ""}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Const", "inputs": {"value": 1}},
        "5": {"class_type": "Show", "inputs": {"value": ["4", 0]}},
    })
    assert result.status == "success"
    assert result.failures == {}
    assert tn.call_count("Add") == 0
    assert tn.called_ids("Show") == ["5"]
    assert result.ui == {"5": {"value": [1]}}
    assert rec.of("execution_error") == []


def test_execution_blocker_with_message_is_an_error(executor):
    ex, rec = executor
    result = ex.execute({
        "1": {"class_type": "Block", "inputs": {"message": "nsfw content"}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Const", "inputs": {"value": 1}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }, prompt_id="pb")
    [data] = rec.of("execution_error")
    assert data["node_id"] == "2" and data["node_type"] == "Show"
    assert data["exception_type"] == "ExecutionBlocked"
    assert data["exception_message"] == "nsfw content"
    assert tn.called_ids("Show") == ["4"]
    assert result.status == "error"
    assert result.failures["2"].exception_type == "ExecutionBlocked"


# ---- lazy inputs ---------------------------------------------------------------------------------


def switch_prompt(select=True):
    return {
        "1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Boom", "inputs": {}},
        "3": {"class_type": "LazySwitch", "inputs": {"select": select, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }


def test_lazy_switch_runs_only_the_used_branch_and_only_when_asked(executor):
    ex, rec = executor
    result = ex.execute(switch_prompt(True))
    assert result.status == "success"
    assert result.executed == ["1", "3", "4"]
    assert tn.call_count("Boom") == 0
    assert [(c[0], c[1]) for c in tn.CALLS] == [
        ("LazySwitch.check", "3"), ("Const", "1"), ("LazySwitch.check", "3"), ("LazySwitch", "3"), ("Show", "4"),
    ]
    assert [c[2] for c in tn.calls("LazySwitch.check")] == [{"on_true": None, "on_false": None}, {"on_true": 1, "on_false": None}]
    assert result.ui["4"] == {"value": [1]}
    assert executing_nodes(rec) == ["1", "3", "4", None]
    assert rec.of("execution_plan")[0]["nodes"] == ["3", "4"]
    tn.CALLS.clear()
    assert ex.execute(switch_prompt(True)).executed == []
    assert tn.CALLS == []


def test_lazy_switch_failure_in_the_requested_branch(executor):
    ex, _ = executor
    result = ex.execute(switch_prompt(False))
    assert tn.call_count("Const") == 0
    assert list(result.failed) == ["2"]
    assert result.failures["3"].caused_by == "2" and result.failures["4"].caused_by == "2"
    assert result.status == "error"


def test_lazy_branch_already_cached(executor):
    ex, _ = executor
    ex.execute({"1": {"class_type": "Const", "inputs": {"value": 1}}, "9": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    tn.CALLS.clear()
    result = ex.execute(switch_prompt(True))
    assert result.executed == ["3", "4"]
    assert tn.call_count("Const") == 0 and tn.call_count("Boom") == 0


# ---- node expansion ------------------------------------------------------------------------------


class Expander:
    GRAPH: dict = {}
    RESULT: tuple = (["n2", 0],)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    RETURN_TYPES = ("*",)
    FUNCTION = "run"

    def run(self, value):
        tn.record("Expander", "?", value=value)
        graph = Expander.GRAPH or {
            "n1": {"class_type": "Const", "inputs": {"value": value}},
            "n2": {"class_type": "Add", "inputs": {"a": ["n1", 0], "b": 100}},
        }
        return {"result": Expander.RESULT, "expand": graph}


@pytest.fixture
def expander(tmp_path):
    Expander.GRAPH, Expander.RESULT = {}, (["n2", 0],)
    yield tn.make_executor(tmp_path, v1={"Expander": Expander})
    Expander.GRAPH, Expander.RESULT = {}, (["n2", 0],)


def expand_prompt(value=5):
    return {"1": {"class_type": "Expander", "inputs": {"value": value}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}


def test_expansion_runs_the_subgraph_and_takes_its_output(expander):
    ex, rec = expander
    result = ex.execute(expand_prompt(5))
    assert result.status == "success", result.failures
    assert result.ui["2"] == {"value": [105]}
    assert result.executed == ["1.n1", "1.n2", "1", "2"]
    assert tn.called_ids("Const") == ["1.n1"] and tn.calls("Add")[0][2] == {"a": 5, "b": 100}
    executing = [(d["node"], d["display_node"]) for d in rec.of("executing")]
    assert executing == [("1", "1"), ("1.n1", "1"), ("1.n2", "1"), ("2", "2"), (None, None)]
    calls = list(tn.CALLS)
    again = ex.execute(expand_prompt(5))
    assert again.executed == [] and tn.CALLS == calls
    assert ex.execute(expand_prompt(6)).ui["2"] == {"value": [106]}


def test_expansion_with_an_unknown_class_fails_that_node(expander):
    ex, rec = expander
    Expander.GRAPH = {"n1": {"class_type": "NoSuchNode", "inputs": {}}}
    Expander.RESULT = (["n1", 0],)
    result = ex.execute(expand_prompt())
    assert result.status == "error"
    failure = result.failures["1"]
    assert failure.exception_type == "ExpansionError"
    assert "unknown node type 'NoSuchNode'" in failure.message
    assert result.failures["2"].caused_by == "1"
    assert [d["node_id"] for d in rec.of("execution_error")] == ["1"]


def test_expansion_with_invalid_inputs_fails_that_node(expander):
    ex, _ = expander
    Expander.GRAPH = {"n1": {"class_type": "Const", "inputs": {"value": 5000}}}
    Expander.RESULT = (["n1", 0],)
    result = ex.execute(expand_prompt())
    assert result.failures["1"].exception_type == "ExpansionError"
    assert "Value 5000 bigger than max of 1000" in result.failures["1"].message


def test_expansion_result_linking_to_a_missing_node_fails_cleanly(expander):
    ex, _ = expander
    Expander.RESULT = (["nowhere", 0],)
    result = ex.execute(expand_prompt())
    assert result.status == "error"
    assert result.failures["1"].exception_type == "ExpansionError"
    assert "links to node nowhere" in result.failures["1"].message
    assert result.failures["2"].caused_by == "1"


def test_expansion_result_slot_out_of_range_fails_cleanly(expander):
    ex, _ = expander
    Expander.RESULT = (["n2", 3],)
    result = ex.execute(expand_prompt())
    assert result.status == "error"
    assert result.failures["1"].exception_type == "ExpansionError"
    assert "output 3 of node 1.n2, which has 1 outputs" in result.failures["1"].message


def test_expansion_keeps_wrapped_list_literals(expander):
    ex, _ = expander
    Expander.GRAPH = {"n1": {"class_type": "LazySwitch", "inputs": {"select": True, "on_true": {"__value__": ["a", 1]}, "on_false": 0}}}
    Expander.RESULT = (["n1", 0],)
    result = ex.execute(expand_prompt())
    assert result.status == "success", result.failures
    assert result.ui["2"] == {"value": [["a", 1]]}


def test_failure_inside_an_expansion(expander):
    ex, _ = expander
    Expander.GRAPH = {"n1": {"class_type": "Boom", "inputs": {}}}
    Expander.RESULT = (["n1", 0],)
    result = ex.execute(expand_prompt())
    assert list(result.failed) == ["1.n1"]
    assert result.failures["1"].caused_by == "1.n1"
    assert result.failures["2"].caused_by == "1.n1"
    assert result.status == "error"


def test_identical_expansions_share_subgraph_results(expander):
    ex, _ = expander
    prompt = {
        **expand_prompt(5),
        "3": {"class_type": "Expander", "inputs": {"value": 5}},
        "4": {"class_type": "Add", "inputs": {"a": ["3", 0], "b": 0}},
        "5": {"class_type": "Show", "inputs": {"value": ["4", 0]}},
    }
    result = ex.execute(prompt)
    assert result.status == "success"
    assert result.ui["2"] == result.ui["5"] == {"value": [105]}
    assert tn.call_count("Expander") == 1  # node 3 has node 1's key


# ---- robustness ----------------------------------------------------------------------------------


def test_unconnected_node_with_a_failing_spec_does_not_break_execution(tmp_path):
    def broken(folders):
        raise OSError("cannot list")

    @node(output_node=True)
    class Listing(Node):
        name: str = Input(options=broken)

        def execute(self, ctx):
            return None

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Listing])
    result = ex.execute({
        "1": {"class_type": "Listing", "inputs": {"name": "x"}},
        "2": {"class_type": "Const", "inputs": {"value": 1}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    })
    assert result.status == "success" and result.executed == ["2", "3"]


def test_current_inputs_format_tensors(tmp_path):
    from typing import Any

    @node(outputs=[Output("IMAGE")])
    class MakeImage(Node):
        def execute(self, ctx):
            return torch.ones(1, 2, 2, 3)

    @node(output_node=True)
    class Explode(Node):
        image: Any

        def execute(self, ctx):
            raise ValueError("no")

    ex, rec = tn.make_executor(tmp_path, native=[MakeImage, Explode])
    ex.execute({"1": {"class_type": "MakeImage", "inputs": {}}, "2": {"class_type": "Explode", "inputs": {"image": ["1", 0]}}})
    [data] = rec.of("execution_error")
    assert data["current_inputs"] == {"image": ["Tensor[1, 2, 2, 3] torch.float32"]}


def test_link_objects_in_results_are_not_confused_with_values(executor):
    ex, _ = executor
    result = ex.execute({"1": {"class_type": "Show", "inputs": {"value": "plain"}}})
    assert result.ui["1"] == {"value": ["plain"]}
    assert not isinstance(result.ui["1"]["value"][0], Link)


# ---- more lazy and scheduling cases ----------------------------------------------------------------


def test_a_failed_producer_of_an_unused_lazy_branch_does_not_fail_the_switch(executor):
    ex, _ = executor
    prompt = switch_prompt(True)
    prompt["5"] = {"class_type": "Show", "inputs": {"value": ["2", 0]}}  # Boom feeds another output strongly
    result = ex.execute(prompt)
    assert list(result.failed) == ["2"]
    assert "3" not in result.failures and "4" not in result.failures
    assert result.ui["4"] == {"value": [1]}
    assert result.failed_outputs == ["5"] and result.status == "error"


def test_check_lazy_that_keeps_asking_does_not_loop(tmp_path):
    @node(outputs=[Output("*")])
    class Greedy(Node):
        value: Any = Input(None, lazy=True)

        def check_lazy(self, ctx):
            tn.record("Greedy.check", ctx.node_id)
            return ["value", "not_an_input"]

        def execute(self, ctx):
            return self.value

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Greedy])
    result = ex.execute({
        "1": {"class_type": "Const", "inputs": {"value": 4}},
        "2": {"class_type": "Greedy", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    })
    assert result.ui["3"] == {"value": [4]}
    assert tn.call_count("Greedy.check") == 2


def test_check_lazy_raising_fails_only_that_node(tmp_path):
    @node(outputs=[Output("*")])
    class BadCheck(Node):
        value: Any = Input(None, lazy=True)

        def check_lazy(self, ctx):
            raise RuntimeError("check failed")

        def execute(self, ctx):
            return self.value

    ex, rec = tn.make_executor(tmp_path, native=[*tn.NATIVE, BadCheck])
    result = ex.execute({
        "1": {"class_type": "Const", "inputs": {"value": 4}},
        "2": {"class_type": "BadCheck", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    })
    assert result.status == "error"
    assert result.failures["2"].message == "BadCheck (node 2): RuntimeError: check failed"
    assert result.failures["3"].caused_by == "2"
    assert result.ui == {"4": {"value": [4]}}
    assert [d["node_id"] for d in rec.of("execution_error")] == ["2"]


def test_fan_out_runs_the_producer_once(executor):
    ex, _ = executor
    ex.execute({
        "1": {"class_type": "Const", "inputs": {"value": 4}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 2}},
        "4": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "5": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    })
    assert tn.called_ids("Const") == ["1"]
    assert tn.called_ids() == ["1", "2", "3", "4", "5"]


def test_ties_are_broken_by_natural_node_id_order(executor):
    ex, _ = executor
    prompt = {nid: {"class_type": "Show", "inputs": {"value": int(nid)}} for nid in ("10", "9", "2", "100")}
    assert ex.execute(prompt).executed == ["2", "9", "10", "100"]


def test_failing_native_fingerprint_means_always_run(tmp_path):
    @node(outputs=["INT"])
    class Flaky(Node):
        value: int = 0

        def fingerprint(self, ctx):
            raise FileNotFoundError("gone")

        def execute(self, ctx):
            tn.record("Flaky", ctx.node_id)
            return self.value

    ex, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Flaky])
    prompt = {"1": {"class_type": "Flaky", "inputs": {"value": 1}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    ex.execute(prompt)
    ex.execute(prompt)
    assert tn.call_count("Flaky") == 2 and tn.call_count("Show") == 2


def test_context_carries_prompt_and_extra_data(tmp_path):
    seen = {}

    @node(output_node=True)
    class Peek(Node):
        def execute(self, ctx):
            seen.update(node_id=ctx.node_id, class_type=ctx.class_type, prompt_id=ctx.prompt_id, prompt=ctx.prompt,
                        extra_pnginfo=ctx.extra_pnginfo, client=ctx.extra_data.get("client_id"))

    ex, _ = tn.make_executor(tmp_path, native=[Peek])
    prompt = {"5": {"class_type": "Peek", "inputs": {}}}
    ex.execute(prompt, prompt_id="pid", extra_data={"client_id": "c1", "extra_pnginfo": {"workflow": {"v": 1}}})
    assert seen == {"node_id": "5", "class_type": "Peek", "prompt_id": "pid", "prompt": prompt,
                    "extra_pnginfo": {"workflow": {"v": 1}}, "client": "c1"}


def test_prompt_ids_are_generated(executor):
    ex, _ = executor
    first, second = ex.execute(chain()).prompt_id, ex.execute(chain()).prompt_id
    assert first != second and len(first) == 36


def test_expansion_with_a_cycle_fails_that_node(expander):
    ex, _ = expander
    Expander.GRAPH = {
        "n1": {"class_type": "Add", "inputs": {"a": ["n2", 0], "b": 1}},
        "n2": {"class_type": "Add", "inputs": {"a": ["n1", 0], "b": 1}},
    }
    Expander.RESULT = (["n2", 0],)
    result = ex.execute(expand_prompt())
    assert result.status == "error"
    assert result.failures["1"].exception_type == "ExpansionError"
    assert "cycle" in result.failures["1"].message
    assert result.failures["2"].caused_by == "1"


def test_expansion_per_list_element_gets_distinct_ids(expander):
    """A node called once per list element expands once per call, without id collisions."""
    ex, _ = expander
    prompt = {
        "r": {"class_type": "Range", "inputs": {"count": 3}},
        "1": {"class_type": "Expander", "inputs": {"value": ["r", 0]}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    }
    result = ex.execute(prompt)
    assert result.status == "success", result.failures
    assert result.ui["2"] == {"value": [100, 101, 102]}
    assert sorted(n for n in result.executed if n.startswith("1.")) == ["1.0.n1", "1.0.n2", "1.1.n1", "1.1.n2", "1.2.n1", "1.2.n2"]
