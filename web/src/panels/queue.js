/** The queue panel: the running prompt and the pending ones, with interrupt, cancel and clear. */

import { readOrReport } from "../read.js";
import { createPanel, el } from "./panel.js";

/** One line describing a queue row `[number, prompt_id, prompt, extra_data, outputs]`. */
function describe([number, promptId, prompt]) {
  const nodes = Object.keys(prompt ?? {}).length;
  return `#${number} · ${nodes} node${nodes === 1 ? "" : "s"} · ${promptId.slice(0, 8)}`;
}

/** Adds the queue panel and its menu toggle. */
export function install(app) {
  const clear = el("button", { id: "sdflow-queue-clear", textContent: "Clear pending", title: "Remove every waiting prompt" });
  const step = el("span", { className: "sdflow-queue-step" });

  async function send(path, body, failure) {
    try {
      await app.api.post(path, body);
    } catch (error) {
      app.showMessage(`${failure}: ${error.message}`, { level: "error" });
    }
    panel.refresh();
  }

  function row(item, running) {
    const [, promptId] = item;
    const button = running
      ? el("button", { textContent: "Interrupt", onclick: () => send("/interrupt", { prompt_id: promptId }, "Could not interrupt") })
      : el("button", { textContent: "Cancel", onclick: () => send("/queue", { delete: [promptId] }, "Could not cancel") });
    return el(
      "li",
      { className: running ? "sdflow-queue-running" : "sdflow-queue-pending", dataset: { promptId } },
      el("span", { className: "sdflow-queue-label", textContent: describe(item) }),
      running ? step : null,
      button,
    );
  }

  function render(queue) {
    const pending = [...queue.queue_pending].sort((a, b) => a[0] - b[0]);
    const rows = [...queue.queue_running.map((item) => row(item, true)), ...pending.map((item) => row(item, false))];
    clear.disabled = pending.length === 0;
    return rows.length ? el("ol", { className: "sdflow-list" }, ...rows) : el("p", { className: "sdflow-empty", textContent: "The queue is empty." });
  }

  const panel = createPanel({ id: "sdflow-queue-panel", title: "Queue", actions: [clear], load: () => readOrReport(app, "/queue", "the queue"), render });
  clear.onclick = () => send("/queue", { clear: true }, "Could not clear the queue");
  for (const type of ["status", "execution_start", "execution_success", "execution_error", "execution_interrupted"]) {
    app.events.addEventListener(type, () => panel.refresh());
  }
  const title = (id) => app.graph.getNodeById(id)?.title ?? `node ${id}`;
  app.events.addEventListener("executing", ({ detail }) => {
    step.textContent = detail.node == null ? "" : title(detail.node);
  });
  app.events.addEventListener("progress", ({ detail }) => {
    step.textContent = `${title(detail.node)}: ${detail.value}/${detail.max}`;
  });
  app.addMenuItem({ label: "Queue", group: "View", action: () => panel.toggle() });
}
