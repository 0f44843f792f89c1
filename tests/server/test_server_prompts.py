"""The prompt queue over real HTTP and WebSocket connections: submit, events, history, queue
order, deletion, interruption, partial execution, routing, reconnects and bad prompts."""

from __future__ import annotations

import time

import pytest

from tests.server.conftest import TEST_NODES
from tests.server.helpers import gate_prompt, sleep_prompt, wait_for
from tests.server.wsclient import WsClient, types_of


def running_ids(server) -> list[str]:
    return [row[1] for row in server.get("/queue").json()["queue_running"]]


def pending_ids(server) -> list[str]:
    return [row[1] for row in server.get("/queue").json()["queue_pending"]]


def submit(server, prompt, **fields) -> str:
    reply = server.post("/prompt", {"prompt": prompt, **fields})
    assert reply.status == 200, reply.body
    return reply.json()["prompt_id"]


def start_gate(server, name: str = "g", **fields) -> str:
    """Queue a Gate prompt and wait until its node runs (the worker is then busy until the gate opens)."""
    prompt_id = submit(server, gate_prompt(name), **fields)
    wait_for(lambda: running_ids(server) == [prompt_id] and TEST_NODES.entered(name).is_set())
    return prompt_id


def finished_labels(runtime) -> list[str]:
    path = runtime.folders.root("output") / "finished.txt"
    return path.read_text().split() if path.exists() else []


# ---- one prompt, end to end ------------------------------------------------------------------------


def test_a_client_submits_hears_every_event_in_order_and_reads_history(server) -> None:
    async def scenario():
        client = await WsClient.connect(server.url, "c1")
        hello = await client.receive()
        assert (hello.type, hello.data) == ("status", {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "c1"})
        status, answer = await client.post(f"{server.url}/prompt", {"prompt": sleep_prompt("a", 0.2), "client_id": "c1"})
        assert status == 200 and answer["number"] == 0 and answer["node_errors"] == {}
        prompt_id = answer["prompt_id"]
        frames = await client.until(lambda f: f.type == "execution_success")
        # history is written before the end is announced
        status, history = await client.get(f"{server.url}/history/{prompt_id}")
        assert status == 200 and list(history) == [prompt_id]
        frames += await client.until_done(prompt_id)
        frames += await client.until(lambda f: f.type == "status" and f.data["status"]["exec_info"]["queue_remaining"] == 0)
        await client.close()
        return prompt_id, frames, history[prompt_id]

    prompt_id, frames, entry = server.run(scenario)
    assert types_of(frames) == ["execution_start", "execution_cached", "executing", "executed", "execution_success", "executing"]
    by_type = {f.type: f.data for f in frames}
    assert by_type["execution_cached"]["nodes"] == [] and isinstance(by_type["execution_start"]["timestamp"], int)
    assert by_type["executed"] == {"node": "1", "display_node": "1", "output": {"text": ["a"]}, "prompt_id": prompt_id}
    progress = [f.data for f in frames if f.type == "progress"]
    assert progress[0] == {"value": 1, "max": 4, "prompt_id": prompt_id, "node": "1"} and progress[-1]["value"] == 4
    states = [f.data["nodes"]["1"]["state"] for f in frames if f.type == "progress_state"]
    assert states[0] == "running" and states[-1] == "finished"
    assert entry["prompt"] == [0, prompt_id, sleep_prompt("a", 0.2), {"client_id": "c1"}, ["1"]]
    assert entry["outputs"] == {"1": {"text": ["a"]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert all(isinstance(m[1]["timestamp"], int) for m in entry["status"]["messages"])
    assert entry["meta"] == {"1": {"node_id": "1", "display_node": "1", "parent_node": None, "real_node_id": "1"}}
    assert server.get("/api/queue").json() == {"queue_running": [], "queue_pending": []}


def test_a_client_that_connects_after_a_fast_prompt_finished_finds_the_truth(server) -> None:
    prompt_id = submit(server, sleep_prompt("fast"), client_id="late")
    wait_for(lambda: server.get(f"/history/{prompt_id}").json())
    assert server.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    assert server.get("/queue").json() == {"queue_running": [], "queue_pending": []}


# ---- queue order and management -----------------------------------------------------------------------


def test_queue_rows_and_priorities(server, server_runtime) -> None:
    gate_id = start_gate(server)
    later = submit(server, sleep_prompt("later"))
    front = submit(server, sleep_prompt("front"), front=True)
    explicit = server.post("/prompt", {"prompt": sleep_prompt("explicit"), "number": -100.5}).json()
    assert explicit["number"] == -100.5
    queue = server.get("/queue").json()
    (running,) = queue["queue_running"]
    assert len(running) == 5 and running[1] == gate_id and running[2] == gate_prompt("g") and running[4] == ["1"]
    assert all(len(row) == 5 for row in queue["queue_pending"])
    assert [row[1] for row in queue["queue_pending"]] == [explicit["prompt_id"], front, later]
    front_number = next(row[0] for row in queue["queue_pending"] if row[1] == front)
    assert front_number < 0
    assert server.get("/prompt").json() == {"exec_info": {"queue_remaining": 4}}
    TEST_NODES.gate("g").set()
    wait_for(lambda: len(server.get("/history").json()) == 4)
    assert finished_labels(server_runtime) == ["explicit", "front", "later"]
    assert list(server.get("/history").json()) == [gate_id, explicit["prompt_id"], front, later]


def test_client_chosen_prompt_ids_and_duplicates(server) -> None:
    start_gate(server)
    assert submit(server, sleep_prompt("x"), prompt_id="my-own-id") == "my-own-id"
    again = server.post("/prompt", {"prompt": sleep_prompt("y"), "prompt_id": "my-own-id"})
    assert again.status == 400 and again.json()["error"]["type"] == "duplicate_prompt_id"
    assert pending_ids(server) == ["my-own-id"]


def test_delete_and_clear_pending_items(server) -> None:
    gate_id = start_gate(server)
    ids = [submit(server, sleep_prompt(str(i))) for i in range(3)]
    assert server.post("/api/queue", {"delete": [ids[1], gate_id]}).status == 200
    assert pending_ids(server) == [ids[0], ids[2]] and running_ids(server) == [gate_id]
    assert server.post("/queue", {"clear": True}).status == 200
    assert pending_ids(server) == [] and running_ids(server) == [gate_id]
    assert server.post("/queue", {"delete": "not-a-list"}).status == 400


def test_history_windows_deletion_and_clearing(server) -> None:
    ids = []
    for i in range(4):
        ids.append(submit(server, sleep_prompt(f"h{i}")))
        wait_for(lambda: server.get(f"/history/{ids[-1]}").json())
    assert list(server.get("/history").json()) == ids
    assert list(server.get("/history?max_items=2").json()) == ids[2:]
    assert list(server.get("/api/history?max_items=2&offset=1").json()) == ids[1:3]
    assert list(server.get("/history?offset=3").json()) == ids[3:]
    huge = "9" * 30  # beyond SQLite's integers: "all" for max_items, past the end for offset
    assert list(server.get(f"/history?max_items={huge}").json()) == ids
    assert list(server.get(f"/history?max_items={huge}&offset=1").json()) == ids[1:]
    assert server.get(f"/history?offset={huge}").json() == {}
    assert list(server.get(f"/history?max_items=2&offset=-{huge}").json()) == ids[2:]
    assert server.get("/history/unknown-id").json() == {}
    assert server.get("/history?max_items=two").status == 400
    assert server.post("/history", {"delete": [ids[0]]}).status == 200
    assert list(server.get("/history").json()) == ids[1:]
    assert server.post("/api/history", {"clear": True}).status == 200
    assert server.get("/history").json() == {}


# ---- interruption ----------------------------------------------------------------------------------------


def test_interrupt_stops_the_running_prompt_within_a_step_and_the_queue_goes_on(server, server_runtime) -> None:
    gate_id = start_gate(server)
    after = submit(server, sleep_prompt("after"))
    asked = time.monotonic()
    assert server.post("/interrupt").status == 200
    entry = wait_for(lambda: server.get(f"/history/{gate_id}").json())[gate_id]
    assert time.monotonic() - asked < 2.0
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    wait_for(lambda: server.get(f"/history/{after}").json())
    assert finished_labels(server_runtime) == ["after"]


def test_interrupt_with_a_prompt_id_only_stops_that_prompt(server) -> None:
    gate_id = start_gate(server)
    assert server.post("/interrupt", {"prompt_id": "some-other-prompt"}).status == 200
    time.sleep(0.3)
    assert running_ids(server) == [gate_id]
    assert server.post("/api/interrupt", {"prompt_id": gate_id}).status == 200
    entry = wait_for(lambda: server.get(f"/history/{gate_id}").json())[gate_id]
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


def test_interrupt_reaches_a_sampler_between_its_steps(live, tmp_path, models_dir) -> None:
    from engine.runtime import Runtime, Settings

    from tests.server.test_server_generation import small_txt2img

    server = live(Runtime(Settings(base_dir=tmp_path, models_dir=models_dir, load_plugins=False, preview_method="none")))

    async def scenario():
        client = await WsClient.connect(server.url, "sampler")
        prompt = small_txt2img(steps=10_000)
        status, answer = await client.post(f"{server.url}/prompt", {"prompt": prompt, "client_id": "sampler"})
        assert status == 200
        await client.until(lambda f: f.type == "progress" and f.data["node"] == "5" and f.data["value"] >= 2)
        asked = time.monotonic()
        await client.post(f"{server.url}/interrupt", {})
        frames = await client.until_done(answer["prompt_id"])
        stopped = time.monotonic() - asked
        await client.close()
        return frames, stopped

    frames, stopped = server.run(scenario)
    last_steps = [f.data["value"] for f in frames if f.type == "progress"]
    assert len(last_steps) <= 2, "the sampler went on for more than one step after the interrupt"
    assert "execution_interrupted" in types_of(frames) and stopped < 5


# ---- what runs ----------------------------------------------------------------------------------------


def test_partial_execution_targets_run_only_those_outputs(server, server_runtime) -> None:
    prompt = {**sleep_prompt("one"), "2": {"class_type": "Sleep", "inputs": {"label": "two", "seconds": 0}}}
    reply = server.post("/prompt", {"prompt": prompt, "partial_execution_targets": ["2"]})
    assert reply.status == 200
    prompt_id = reply.json()["prompt_id"]
    entry = wait_for(lambda: server.get(f"/history/{prompt_id}").json())[prompt_id]
    assert entry["outputs"] == {"2": {"text": ["two"]}} and entry["prompt"][4] == ["2"]
    assert finished_labels(server_runtime) == ["two"]


def test_outputs_that_fail_validation_are_dropped_and_the_rest_run(server, server_runtime) -> None:
    prompt = {**sleep_prompt("good"), "2": {"class_type": "Sleep", "inputs": {"label": "bad", "seconds": 9999}}}
    reply = server.post("/prompt", {"prompt": prompt})
    assert reply.status == 200
    answer = reply.json()
    assert answer["node_errors"]["2"]["errors"][0]["type"] == "value_bigger_than_max"
    wait_for(lambda: server.get(f"/history/{answer['prompt_id']}").json())
    assert finished_labels(server_runtime) == ["good"]


def test_a_prompt_that_became_invalid_while_queued_gets_a_failed_entry(server, server_runtime) -> None:
    from PIL import Image

    image_path = server_runtime.folders.root("input") / "soon-gone.png"
    Image.new("RGB", (8, 8)).save(image_path)
    start_gate(server)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "soon-gone.png"}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

    async def scenario():
        client = await WsClient.connect(server.url, "inv")
        await client.receive()
        status, answer = await client.post(f"{server.url}/prompt", {"prompt": prompt, "client_id": "inv"})
        assert status == 200
        image_path.unlink()
        TEST_NODES.gate("g").set()
        frames = await client.until_done(answer["prompt_id"])
        await client.close()
        return answer["prompt_id"], frames

    prompt_id, frames = server.run(scenario)
    error = next(f.data for f in frames if f.type == "execution_error")
    assert "no longer valid" in error["exception_message"] and "soon-gone.png" in error["exception_message"]
    entry = server.get(f"/history/{prompt_id}").json()[prompt_id]
    assert entry["status"]["status_str"] == "error" and entry["status"]["messages"][-1][0] == "execution_error"


# ---- bad prompts ---------------------------------------------------------------------------------------


def test_a_bad_input_gets_a_400_naming_node_input_and_reason(server) -> None:
    reply = server.post("/api/prompt", {"prompt": {"7": {"class_type": "Sleep", "inputs": {"label": "x", "seconds": 1000}}}})
    assert reply.status == 400
    body = reply.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    (error,) = body["node_errors"]["7"]["errors"]
    assert error["type"] == "value_bigger_than_max" and error["extra_info"]["input_name"] == "seconds"
    assert "1000" in error["message"] and error["details"] == "seconds" and body["node_errors"]["7"]["class_type"] == "Sleep"
    assert body["node_errors"]["7"]["dependent_outputs"] == ["7"]


@pytest.mark.parametrize(
    "body, error_type, words",
    [
        ({}, "no_prompt", "no prompt"),
        ({"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}, "invalid_prompt", "NoSuchNode"),
        ({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {}}}}, "prompt_no_outputs", "output"),
        ({"prompt": sleep_prompt("x"), "number": "soon"}, "invalid_request", "number"),
        ({"prompt": sleep_prompt("x"), "front": [1]}, "invalid_request", "front"),
        ({"prompt": sleep_prompt("x"), "extra_data": "text"}, "invalid_request", "extra_data"),
        ({"prompt": sleep_prompt("x"), "partial_execution_targets": "1"}, "invalid_request", "partial_execution_targets"),
        ({"prompt": sleep_prompt("x"), "prompt_id": ""}, "invalid_request", "prompt_id"),
    ],
)
def test_malformed_requests_get_readable_400s(server, body, error_type, words) -> None:
    reply = server.post("/prompt", body)
    assert reply.status == 400
    answer = reply.json()
    assert answer["error"]["type"] == error_type and words.lower() in answer["error"]["message"].lower() + str(answer["error"]["details"]).lower()
    assert "node_errors" in answer


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"])
def test_unreadable_bodies_get_400s(server, raw) -> None:
    reply = server.call("POST", "/prompt", raw=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json()["error"]["message"]


# ---- WebSocket routing ------------------------------------------------------------------------------------


def test_events_go_to_the_submitting_client_and_status_to_everyone(server) -> None:
    async def scenario():
        alice = await WsClient.connect(server.url, "alice")
        bob = await WsClient.connect(server.url, "bob")
        await alice.receive()
        await bob.receive()
        _, answer = await alice.post(f"{server.url}/prompt", {"prompt": sleep_prompt("a", 0.1), "client_id": "alice"})
        await alice.until_done(answer["prompt_id"])
        await alice.until(lambda f: f.type == "status" and f.data["status"]["exec_info"]["queue_remaining"] == 0)
        await bob.until(lambda f: f.type == "status" and f.data["status"]["exec_info"]["queue_remaining"] == 0)
        # a prompt without a client: its progress goes to everyone, its other events to no one
        _, anonymous = await alice.post(f"{server.url}/prompt", {"prompt": sleep_prompt("b", 0.1)})
        await bob.until(lambda f: f.type == "progress" and f.data["prompt_id"] == anonymous["prompt_id"] and f.data["value"] == f.data["max"])
        await bob.until(lambda f: f.type == "status" and f.data["status"]["exec_info"]["queue_remaining"] == 0)
        await alice.close()
        await bob.close()
        return answer["prompt_id"], anonymous["prompt_id"], bob.frames

    mine, anonymous, bob_frames = server.run(scenario)
    assert not any(f.data.get("prompt_id") == mine for f in bob_frames)
    assert {f.type for f in bob_frames if f.data.get("prompt_id") == anonymous} == {"progress", "progress_state"}


def test_a_reconnecting_client_is_told_what_is_executing(server) -> None:
    gate_id = start_gate(server, "rc", client_id="again")

    async def scenario():
        first = await WsClient.connect(server.url, "again")
        hello = [await first.receive(), await first.receive()]
        second = await WsClient.connect(server.url, "again")
        hello_again = [await second.receive(), await second.receive()]
        closed = await first.ws.receive(timeout=10)
        await second.close()
        await first.session.close()
        return hello, hello_again, closed

    hello, hello_again, closed = server.run(scenario)
    for frames in (hello, hello_again):
        assert frames[0].type == "status" and frames[0].data["sid"] == "again"
        assert (frames[1].type, frames[1].data) == ("executing", {"node": "1", "display_node": "1", "prompt_id": gate_id})
    assert closed.type.name in ("CLOSE", "CLOSED", "CLOSING")


def test_feature_flags_are_negotiated(server) -> None:
    async def scenario():
        client = await WsClient.connect(server.url)
        hello = await client.receive()
        await client.send("feature_flags", {"supports_preview_metadata": True})
        answer = await client.receive()
        await client.send("something_else", {})
        await client.close()
        return hello, answer

    hello, answer = server.run(scenario)
    assert len(hello.data["sid"]) == 32
    assert (answer.type, answer.data) == ("feature_flags", {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024})


# ---- memory ---------------------------------------------------------------------------------------------------


def test_free_accepts_json_and_form_data_and_drops_cached_outputs(server, server_runtime) -> None:
    prompt_id = submit(server, sleep_prompt("cached"))
    wait_for(lambda: server.get(f"/history/{prompt_id}").json())
    assert len(server_runtime.executor.cache) > 0
    form = server.call("POST", "/free", raw=b"unload_models=true", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 200
    assert server.post("/api/free", {"unload_models": True, "free_memory": True}).status == 200
    wait_for(lambda: len(server_runtime.executor.cache) == 0)
