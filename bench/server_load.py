"""Server load: concurrent WebSocket clients submitting small model-free prompts over real sockets.

Starts sdflow in-process on 127.0.0.1 (a temporary base folder, built-in nodes only, previews off).
Each of N clients opens `/ws?clientId=...`, posts M prompts (EmptyImage 64x64 → PreviewImage) with
its client_id, one after another, and listens until every one of them has `executing` with node
null. Each prompt has its own colour, so the output cache cannot skip the work; `--cached` sends
the same prompt every time instead. Measures:

- accepted prompts/s: prompts answered 200 / the submission phase (first POST to last answer),
- POST /prompt latency p50 and p99,
- completed prompts/s end to end (first POST to the last client's last `executing` null),
- WebSocket frames delivered per second (all clients' text and binary frames / that wall time),
- routing: every client heard `execution_success` for each of its prompts and nothing about
  other clients' prompts (OK or FAIL).

Clients and server share one process (and its GIL), so the server alone does at least this well.

    .venv/bin/python bench/server_load.py [--clients 16] [--prompts-per-client 25] [--cached]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from engine.runtime import Runtime, Settings
from http_api.background import BackgroundServer
from server import create_app


def start_server(base_dir: Path) -> BackgroundServer:
    """sdflow with built-in nodes only and previews off, rooted in `base_dir`."""
    runtime = Runtime(Settings(base_dir=base_dir, load_plugins=False, preview_method="none"))
    return BackgroundServer(create_app(runtime))


def image_prompt(color: int) -> dict[str, Any]:
    """A 64x64 image of one colour, previewed."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


@dataclass
class ClientRun:
    """What one client sent and heard."""

    client_id: str
    prompt_ids: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    rejected: int = 0
    frames: int = 0
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    last_post_s: float = 0.0
    done_s: float = 0.0

    def heard_everything(self) -> bool:
        return set(self.prompt_ids) <= self.finished

    def routing_problems(self) -> list[str]:
        """Own prompts without `execution_success`, and events about prompts of other clients."""
        own = set(self.prompt_ids)
        succeeded = {data.get("prompt_id") for kind, data in self.events if kind == "execution_success"}
        problems = [f"{self.client_id}: no execution_success for {pid}" for pid in sorted(own - succeeded)]
        foreign = {data["prompt_id"] for _, data in self.events if data.get("prompt_id") not in (None, *own)}
        return problems + [f"{self.client_id}: heard about another client's prompt {pid}" for pid in sorted(foreign)]


async def listen(ws: aiohttp.ClientWebSocketResponse, run: ClientRun, all_posted: asyncio.Event) -> None:
    """Count frames and keep events until every prompt of this client has `executing` node null."""
    async for message in ws:
        run.frames += 1
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        event = json.loads(message.data)
        data = event.get("data") or {}
        run.events.append((event["type"], data))
        if event["type"] == "executing" and data.get("node") is None:
            run.finished.add(data.get("prompt_id"))
            if all_posted.is_set() and run.heard_everything():
                run.done_s = time.perf_counter()
                return


async def submit(session: aiohttp.ClientSession, url: str, run: ClientRun, colors: list[int]) -> None:
    """POST this client's prompts one after another, timing each answer."""
    for color in colors:
        started = time.perf_counter()
        async with session.post(f"{url}/prompt", json={"prompt": image_prompt(color), "client_id": run.client_id}) as response:
            answer = await response.json()
        run.latencies_s.append(time.perf_counter() - started)
        if response.status == 200:
            run.prompt_ids.append(answer["prompt_id"])
        else:
            run.rejected += 1
    run.last_post_s = time.perf_counter()


async def client(url: str, run: ClientRun, colors: list[int], start: asyncio.Event, timeout_s: float) -> ClientRun:
    """Connect, wait for the common start, submit, then listen until all own prompts ended."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/ws?clientId={run.client_id}", max_msg_size=0) as ws:
            all_posted = asyncio.Event()
            listener = asyncio.create_task(listen(ws, run, all_posted))
            await start.wait()
            await submit(session, url, run, colors)
            all_posted.set()
            if run.heard_everything():
                run.done_s = time.perf_counter()
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            else:
                await asyncio.wait_for(listener, timeout_s)
    return run


async def load(url: str, clients: int, per_client: int, cached: bool, timeout_s: float) -> tuple[list[ClientRun], float]:
    """Run every client at once; returns their runs and the time the first POST went out."""
    start = asyncio.Event()
    runs = [ClientRun(f"bench-{i}") for i in range(clients)]
    tasks = [
        asyncio.create_task(client(url, run, [0 if cached else i * per_client + j + 1 for j in range(per_client)], start, timeout_s))
        for i, run in enumerate(runs)
    ]
    await asyncio.sleep(0.5)  # let every socket connect and get its first status frame
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return runs, started


async def warm_up(url: str) -> None:
    """Run one prompt first (as a client of its own, so no other client hears of it), so the
    measured ones do not pay for first-use imports."""
    go = asyncio.Event()
    go.set()
    await client(url, ClientRun("bench-warm-up"), [0xFFFFFF], go, 60)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(runs: list[ClientRun], started: float, args: argparse.Namespace) -> bool:
    """Print the table; True when every prompt was accepted and routed correctly."""
    latencies_ms = [s * 1000 for run in runs for s in run.latencies_s]
    accepted = sum(len(run.prompt_ids) for run in runs)
    rejected = sum(run.rejected for run in runs)
    submission_s = max(run.last_post_s for run in runs) - started
    total_s = max(run.done_s for run in runs) - started
    frames = sum(run.frames for run in runs)
    problems = [problem for run in runs for problem in run.routing_problems()]
    mode = "the same cached prompt" if args.cached else "a new colour per prompt"
    print(f"{args.clients} clients x {args.prompts_per_client} prompts (EmptyImage 64x64 -> PreviewImage, {mode})")
    print(f"accepted prompts/s      {accepted / submission_s:9.1f}   ({accepted} accepted, {rejected} refused, in {submission_s:.2f} s)")
    print(f"POST /prompt p50        {statistics.median(latencies_ms):9.2f} ms")
    print(f"POST /prompt p99        {percentile(latencies_ms, 0.99):9.2f} ms")
    print(f"completed prompts/s     {accepted / total_s:9.1f}   (all done after {total_s:.2f} s)")
    print(f"WebSocket frames/s      {frames / total_s:9.1f}   ({frames} frames to {len(runs)} clients)")
    for problem in problems[:20]:
        print(f"  {problem}")
    ok = not problems and rejected == 0
    print("routing OK" if ok else f"routing FAIL ({len(problems)} problems, {rejected} refused)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--prompts-per-client", type=int, default=25)
    parser.add_argument("--cached", action="store_true", help="send the same prompt every time (output cache hits)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a client may wait for its prompts to finish")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            asyncio.run(warm_up(server.url))
            runs, started = asyncio.run(load(server.url, args.clients, args.prompts_per_client, args.cached, args.timeout))
        finally:
            server.close()
    return 0 if report(runs, started, args) else 1


if __name__ == "__main__":
    sys.exit(main())
