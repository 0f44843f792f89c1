/**
 * Running workflows: the Queue button and batch count, an overall progress bar, and what the
 * server's events show on the nodes: the running node outlined, its step progress, live previews,
 * output images, errors (`execution_error`) and warnings (`node_warning`).
 */

import { showImages } from "./graph/images.js";
import { addNodeMessage, clearMessages, nodeForPromptId, setNodeMessages } from "./graph/messages.js";

/** Progress of the prompt that runs now: its node count, the nodes done, the current node's share. */
class RunState {
  constructor() {
    this.totals = new Map();
    this.reset(null);
  }

  reset(promptId) {
    this.promptId = promptId;
    this.done = new Set();
    this.current = null;
    this.step = 0;
  }

  get total() {
    return this.totals.get(this.promptId) ?? Math.max(this.done.size + 1, 1);
  }

  get fraction() {
    return Math.min(1, (this.done.size + this.step) / this.total);
  }
}

/**
 * Wires the run controls (`{button, batch, bar, label, status}` elements) and the event displays.
 * Returns `queue(front)`, which queues the batch as the button does (errors are shown, not thrown).
 */
export function installRun(app, controls) {
  const state = new RunState();
  const { graph } = app;
  const node = (id) => (id == null ? null : nodeForPromptId(graph, id));
  let previewUrl = null;

  const showProgress = () => {
    const running = state.promptId !== null;
    controls.bar.style.width = `${running ? Math.round(state.fraction * 100) : 0}%`;
    controls.bar.parentElement.classList.toggle("active", running);
    const current = node(state.current);
    controls.label.textContent = running ? `${state.done.size}/${state.total} nodes${current ? ` · ${current.title}` : ""}` : "";
  };
  const setRunning = (id) => {
    for (const each of graph.nodes) {
      each.running = false;
      each.progress = undefined;
    }
    const running = node(id);
    if (running) running.running = true;
    graph.setDirtyCanvas(true, true);
  };

  const queue = async (front = false) => {
    controls.button.disabled = true;
    try {
      await app.queuePrompt({ batchCount: Math.max(1, Number(controls.batch.value) || 1), front });
    } catch {
      // queuePrompt has shown what went wrong
    } finally {
      controls.button.disabled = false;
    }
  };
  controls.button.addEventListener("click", (event) => queue(event.shiftKey));

  const on = (type, handler) => app.events.addEventListener(type, ({ detail }) => handler(detail ?? {}));
  on("prompt-queued", ({ promptId, prompt }) => state.totals.set(promptId, Object.keys(prompt).length));
  on("status", ({ status }) => {
    const waiting = status?.exec_info?.queue_remaining ?? 0;
    controls.status.textContent = waiting ? `${waiting} in queue` : "idle";
  });
  on("connection", ({ connected }) => {
    controls.status.textContent = connected ? "connected" : "reconnecting…";
    if (!connected) app.showMessage("Lost the connection to the server; reconnecting…", { level: "warning" });
  });
  on("execution_start", ({ prompt_id: promptId }) => {
    state.reset(promptId);
    clearMessages(graph, "error");
    clearMessages(graph, "warning");
    showProgress();
  });
  on("execution_cached", ({ nodes = [] }) => {
    nodes.forEach((id) => state.done.add(String(id)));
    showProgress();
  });
  on("executing", ({ node: id, prompt_id: promptId }) => {
    if (state.current !== null) state.done.add(state.current);
    if (id == null) {
      if (promptId === state.promptId || promptId == null) state.reset(null);
      setRunning(null);
    } else {
      if (state.promptId === null) state.reset(promptId);
      state.current = String(id);
      state.step = 0;
      setRunning(id);
    }
    showProgress();
  });
  on("progress", ({ node: id, value, max }) => {
    const target = node(id ?? state.current);
    if (target) target.progress = max ? value / max : 0;
    state.step = max ? value / max : 0;
    graph.setDirtyCanvas(true, false);
    showProgress();
  });
  on("preview", ({ blob, node: id }) => {
    const target = node(id ?? state.current);
    if (!target) return;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    showImages(target, [previewUrl], "preview");
  });
  on("executed", ({ node: id, display_node: shown, output }) => {
    const target = node(shown ?? id);
    const images = output?.images ?? [];
    if (target && images.length) showImages(target, images.map((ref) => app.api.viewUrl(ref)), "output");
  });
  on("execution_error", ({ node_id: id, node_type: type, exception_message: message }) => {
    const target = node(id);
    if (target) setNodeMessages(target, "error", [message]);
    app.showMessage(`${target?.title ?? type ?? "A node"} failed: ${message}`, { level: "error" });
    setRunning(null);
  });
  on("execution_interrupted", () => {
    app.showMessage("The run was interrupted.", { level: "warning" });
    state.reset(null);
    setRunning(null);
    showProgress();
  });
  on("execution_success", () => {
    state.reset(null);
    setRunning(null);
    showProgress();
  });
  on("node_warning", ({ node: id, display_node: shown, message }) => {
    const target = node(shown ?? id);
    if (target) addNodeMessage(target, "warning", message);
  });
  return queue;
}
