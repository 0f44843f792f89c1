"""The worker: a thread that takes prompts from the queue one at a time and runs them.

There is one worker per device (per Runtime). For each prompt it
1. runs it on the runtime's executor,
2. writes the history entry in the same transaction that removes the prompt from the queue,
   before the executor announces the end (`execution_success`, `executing` with node None),
3. tells queue listeners (the server's `status` broadcast) that the queue changed.

A prompt that cannot run at all (it became invalid while waiting, or the engine failed) still gets
a history entry and the closing events, so no client waits forever. Requests to free memory are
applied between prompts, when no model is in use.
"""

from __future__ import annotations

import logging
import threading
import traceback

from engine import events as ev
from engine.executor import ExecutionResult, PromptInvalid
from engine.history import failed_entry, failure_message, history_entry
from engine.queue import MAX_ATTEMPTS, PromptQueue, QueueItem, Recovery
from engine.runtime import Runtime
from engine.validation import describe_errors

log = logging.getLogger(__name__)

#: how often an idle worker looks for stop and free requests (seconds)
IDLE_POLL = 0.5


def recover(queue: PromptQueue) -> Recovery:
    """Requeue prompts a crash interrupted; record the ones that crashed the process too often."""
    report = queue.recover()
    for item in report.abandoned:
        message = f"sdflow stopped {MAX_ATTEMPTS} times while running this prompt; it was not started again"
        queue.finish(item.prompt_id, failed_entry(item, failure_message(item.prompt_id, message, "ServerStopped")))
    if report.abandoned:
        queue.notify()
    return report


class Worker:
    """Runs queued prompts on one runtime in a background thread."""

    def __init__(self, queue: PromptQueue, runtime: Runtime, name: str = "sdflow-worker") -> None:
        self.queue = queue
        self.runtime = runtime
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._free_requests = {"unload_models": False, "free_memory": False}
        #: the item being run, if any
        self.current: QueueItem | None = None
        #: the node of the current prompt that is executing (re-sent to reconnecting clients)
        self.current_node: str | None = None
        runtime.bus.subscribe(self._track_node)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Interrupt the running prompt (it stays queued and runs again at the next start) and end the thread."""
        self._stop.set()
        self.runtime.executor.interrupt()
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Stop the running prompt (only if it is `prompt_id`, when given); True if one was asked to stop."""
        current = self.current
        if current is None or (prompt_id is not None and current.prompt_id != prompt_id):
            return False
        self.runtime.executor.interrupt()
        return True

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        """Move models off the GPU (`unload_models`) and drop every model and cached output
        (`free_memory`) as soon as no prompt runs."""
        with self._lock:
            self._free_requests["unload_models"] |= unload_models
            self._free_requests["free_memory"] |= free_memory
        self.queue.wake()

    # ---- the thread ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._apply_free_requests()
            item = self.queue.claim(timeout=IDLE_POLL, stop=self._stop)
            if item is not None and not self._stop.is_set():
                self._run(item)

    def _apply_free_requests(self) -> None:
        with self._lock:
            unload, free = self._free_requests["unload_models"], self._free_requests["free_memory"]
            self._free_requests.update(unload_models=False, free_memory=False)
        if unload or free:
            self.runtime.free(unload_models=unload, free_memory=free)

    def _run(self, item: QueueItem) -> None:
        self.current = item
        finished = False

        def write_history(result: ExecutionResult) -> None:
            nonlocal finished
            if result.status == "interrupted" and self._stop.is_set():
                self.queue.release(item.prompt_id)  # shutting down: it runs again after the restart
            else:
                self.queue.finish(item.prompt_id, history_entry(item, result))
            finished = True

        try:
            result = self.runtime.executor.execute(item.prompt, item.prompt_id, item.extra_data, item.outputs or None, on_complete=write_history)
            log.info("prompt %s: %s in %.2f s (%d nodes executed, %d cached, %d failed)", item.prompt_id, result.status, result.seconds,
                     len(result.executed), len(result.cached), len(result.failed))
        except PromptInvalid as exc:
            reasons = "; ".join(describe_errors(exc.validation.node_errors, exc.validation.error))
            self._give_up(item, f"the prompt is no longer valid: {reasons}", "PromptInvalid")
        except Exception as exc:  # an engine or storage failure must not stop the worker
            log.exception("prompt %s failed outside its nodes", item.prompt_id)
            if not finished:
                self._give_up(item, f"sdflow failed running this prompt: {type(exc).__name__}: {exc}", type(exc).__name__, exc)
        finally:
            self.current = None
            self.current_node = None
            self.queue.notify()

    def _give_up(self, item: QueueItem, message: str, exception_type: str, exc: BaseException | None = None) -> None:
        """Record a prompt that never ran and announce its end the way a failed run is announced."""
        error = failure_message(item.prompt_id, message, exception_type)
        if exc is not None:
            error["traceback"] = traceback.format_exception(exc)
        try:
            self.queue.finish(item.prompt_id, failed_entry(item, error))
        except Exception:
            log.exception("could not record the failure of prompt %s", item.prompt_id)
        bus = self.runtime.bus
        bus.publish(ev.EXECUTION_START, {"prompt_id": item.prompt_id, "timestamp": error["timestamp"]})
        bus.publish(ev.EXECUTION_ERROR, error)
        bus.publish(ev.EXECUTING, {"node": None, "display_node": None, "prompt_id": item.prompt_id})

    def _track_node(self, event: ev.Event) -> None:
        if event.type == ev.EXECUTING and self.current is not None and event.data.get("prompt_id") == self.current.prompt_id:
            self.current_node = event.data.get("node")
