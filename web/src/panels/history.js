/** The history panel: finished prompts newest first, their images, and their workflows to load back. */

import { readOrReport } from "../read.js";
import { createPanel, el } from "./panel.js";

const MAX_ITEMS = 64;

/** Every image reference `{filename, subfolder, type}` in a history entry's outputs. */
function outputImages(entry) {
  return Object.values(entry.outputs ?? {}).flatMap((output) => output.images ?? []);
}

/** "success", "error" or "interrupted", from the entry's status and its execution messages. */
function outcome(entry) {
  const events = (entry.status?.messages ?? []).map(([event]) => event);
  if (events.includes("execution_interrupted")) return "interrupted";
  return entry.status?.status_str ?? "unknown";
}

function finishedAt(entry) {
  const stamp = entry.status?.messages?.at(-1)?.[1]?.timestamp;
  return stamp ? new Date(stamp).toLocaleTimeString() : "";
}

/** `viewUrl(ref)` with `preview=webp;90`, for thumbnails. */
function thumbnailUrl(app, ref) {
  const url = new URL(app.api.viewUrl(ref), location.href);
  url.searchParams.set("preview", "webp;90");
  return url.href;
}

/** A full-size view of one image over the editor, with a download link; Escape or a click closes it. */
function showImage(app, ref) {
  const href = app.api.viewUrl(ref);
  const viewer = el(
    "div",
    { id: "sdflow-image-viewer", tabIndex: -1 },
    el("img", { src: href, alt: ref.filename }),
    el("a", { className: "sdflow-download", href, download: ref.filename, textContent: `Download ${ref.filename}` }),
  );
  const close = () => viewer.remove();
  viewer.addEventListener("click", (event) => {
    if (event.target === viewer) close();
  });
  viewer.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  document.body.append(viewer);
  viewer.focus();
}

/** The workflow a history entry ran: the UI workflow stored with it, else its API prompt. */
function workflowOf(entry) {
  const [, , prompt, extraData] = entry.prompt;
  return extraData?.extra_pnginfo?.workflow ?? prompt;
}

/** Adds the history panel and its menu toggle. */
export function install(app) {
  const clear = el("button", { id: "sdflow-history-clear", textContent: "Clear", title: "Forget every finished prompt" });

  async function send(body, failure) {
    try {
      await app.api.post("/history", body);
    } catch (error) {
      app.showMessage(`${failure}: ${error.message}`, { level: "error" });
    }
    panel.refresh();
  }

  async function load(promptId, entry) {
    try {
      await app.loadWorkflow(workflowOf(entry), { name: `run ${promptId.slice(0, 8)}` });
    } catch (error) {
      app.showMessage(`Could not load that run's workflow: ${error.message}`, { level: "error" });
    }
  }

  function card(promptId, entry) {
    const state = outcome(entry);
    const thumbnails = outputImages(entry).map((ref) =>
      el(
        "button",
        { className: "sdflow-thumbnail", title: ref.filename, onclick: () => showImage(app, ref) },
        el("img", { src: thumbnailUrl(app, ref), alt: ref.filename, loading: "lazy" }),
      ),
    );
    return el(
      "li",
      { className: `sdflow-history-entry sdflow-${state}`, dataset: { promptId } },
      el("div", { className: "sdflow-history-head" },
        el("span", { className: "sdflow-history-state", textContent: `${state} ${finishedAt(entry)}` }),
        el("button", { className: "sdflow-history-load", textContent: "Load workflow", onclick: () => load(promptId, entry) }),
        el("button", { className: "sdflow-history-delete", textContent: "Delete", onclick: () => send({ delete: [promptId] }, "Could not delete") }),
      ),
      thumbnails.length ? el("div", { className: "sdflow-thumbnails" }, ...thumbnails) : null,
    );
  }

  function render(history) {
    const cards = Object.entries(history).reverse().map(([promptId, entry]) => card(promptId, entry));
    clear.disabled = cards.length === 0;
    return cards.length ? el("ol", { className: "sdflow-list" }, ...cards) : el("p", { className: "sdflow-empty", textContent: "Nothing has run yet." });
  }

  const panel = createPanel({
    id: "sdflow-history-panel",
    title: "History",
    actions: [clear],
    load: () => readOrReport(app, `/history?max_items=${MAX_ITEMS}`, "the history"),
    render,
  });
  clear.onclick = () => send({ clear: true }, "Could not clear the history");
  for (const type of ["execution_success", "execution_error", "execution_interrupted"]) {
    app.events.addEventListener(type, () => panel.refresh());
  }
  app.addMenuItem({ label: "History", group: "View", action: () => panel.toggle() });
}
