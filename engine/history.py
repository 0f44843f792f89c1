"""History entries in ComfyUI's shape: what `GET /history` returns for a finished prompt.

    {"prompt": [number, prompt_id, prompt, extra_data, outputs_to_execute],
     "outputs": {node_id: ui_dict},
     "status": {"status_str": "success" | "error", "completed": bool, "messages": [[event, data], ...]},
     "meta": {node_id: {"node_id", "display_node", "parent_node", "real_node_id"}}}
"""

from __future__ import annotations

from typing import Any

from engine import events as ev
from engine.events import timestamp_ms
from engine.executor import ExecutionResult
from engine.queue import QueueItem


def history_entry(item: QueueItem, result: ExecutionResult) -> dict[str, Any]:
    """The entry of a prompt the executor ran (successfully, with errors, or interrupted)."""
    meta = {
        nid: {"node_id": nid, "display_node": result.display.get(nid, nid), "parent_node": result.parents.get(nid), "real_node_id": nid}
        for nid in result.ui
    }
    status = {"status_str": "success" if result.ok else "error", "completed": result.ok, "messages": result.messages}
    return {"prompt": item.row(), "outputs": result.ui, "status": status, "meta": meta}


def failure_message(prompt_id: str, message: str, exception_type: str) -> dict[str, Any]:
    """An `execution_error` event's data for a prompt that failed before any node ran."""
    return {
        "prompt_id": prompt_id, "node_id": None, "node_type": None, "executed": [], "exception_message": message,
        "exception_type": exception_type, "traceback": [], "current_inputs": {}, "current_outputs": [], "timestamp": timestamp_ms(),
    }


def failed_entry(item: QueueItem, error: dict[str, Any]) -> dict[str, Any]:
    """The entry of a prompt that could not run at all; `error` is its execution_error data."""
    start = {"prompt_id": item.prompt_id, "timestamp": error["timestamp"]}
    status = {"status_str": "error", "completed": False, "messages": [[ev.EXECUTION_START, start], [ev.EXECUTION_ERROR, error]]}
    return {"prompt": item.row(), "outputs": {}, "status": status, "meta": {}}
