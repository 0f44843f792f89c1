"""Prompts of the test nodes, and polling."""

from __future__ import annotations

import time
from typing import Any, Callable


def sleep_prompt(label: str, seconds: float = 0.0) -> dict[str, Any]:
    return {"1": {"class_type": "Sleep", "inputs": {"label": label, "seconds": seconds}}}


def gate_prompt(name: str) -> dict[str, Any]:
    return {"1": {"class_type": "Gate", "inputs": {"name": name}}}


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll until `condition()` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
