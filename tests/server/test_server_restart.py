"""Nothing answered with 200 is lost: `sdflow serve` is killed (SIGKILL) or stopped (SIGTERM) with
prompts queued and one running, started again, and every prompt completes exactly once."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.server.conftest import PLUGIN_DIR
from tests.server.helpers import sleep_prompt, wait_for

REPO = Path(__file__).resolve().parents[2]
ANNOUNCE = re.compile(r"sdflow is serving at http://127\.0\.0\.1:(\d+)/")


class ServerProcess:
    """`sdflow serve` in a child process, on a free port, with the test nodes as a plugin folder."""

    def __init__(self, base: Path) -> None:
        self.log = open(base / "server.log", "a")
        command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0", "--base-dir", str(base), "--plugins", str(PLUGIN_DIR),
                   "--no-demo-models", "--preview-method", "none"]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the server prints its address (or dies)
        match = ANNOUNCE.search(line)
        assert match, f"server did not start: {line!r}; log: {(base / 'server.log').read_text()[-2000:]}"
        self.port = int(match[1])

    def call(self, method: str, path: str, body: object = None) -> object:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        assert response.status == 200, data
        return json.loads(data) if data else None

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.log.close()
        return code


def submit_sleepers(server: ServerProcess, labels: list[str], seconds: float) -> None:
    for label in labels:
        answer = server.call("POST", "/prompt", {"prompt": sleep_prompt(label, seconds), "prompt_id": label})
        assert answer["prompt_id"] == label


def running(server: ServerProcess) -> list[str]:
    return [row[1] for row in server.call("GET", "/queue")["queue_running"]]


def completed_labels(base: Path) -> list[str]:
    path = base / "output" / "finished.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_queued_and_running_prompts_complete_exactly_once_after_a_restart(tmp_path, stop_signal) -> None:
    labels = ["p0", "p1", "p2", "p3"]
    first = ServerProcess(tmp_path)
    submit_sleepers(first, labels, seconds=0.6)
    wait_for(lambda: running(first) == ["p0"])
    time.sleep(0.2)  # p0 is mid-way
    code = first.stop(stop_signal)
    assert code == (-signal.SIGKILL if stop_signal == signal.SIGKILL else 0)
    assert completed_labels(tmp_path) == []

    second = ServerProcess(tmp_path)
    try:
        history = wait_for(lambda: (h := second.call("GET", "/history")) and len(h) == len(labels) and h, timeout=60)
        assert list(history) == labels
        assert all(entry["status"]["status_str"] == "success" for entry in history.values())
        assert completed_labels(tmp_path) == labels  # each ran to the end exactly once
        assert second.call("GET", "/queue") == {"queue_running": [], "queue_pending": []}
        assert second.call("POST", "/prompt", {"prompt": sleep_prompt("after")})["number"] == len(labels)  # the counter went on
    finally:
        second.stop(signal.SIGTERM)
