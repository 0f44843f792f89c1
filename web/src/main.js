/**
 * Starts the editor: builds `app` on the page, adds the node library, the run controls, the
 * shortcuts, the menu entries, the panels, the file features and the plugin scripts, then opens
 * the last session's workflow (or the default txt2img).
 */

import { app } from "./app.js";
import { install as installExtensions } from "./extensions.js";
import { install as installFiles } from "./files/index.js";
import { saveWorkflow } from "./files/workflow-files.js";
import { groupSelection } from "./graph/groups.js";
import { installShortcuts } from "./graph/shortcuts.js";
import { fitView } from "./graph/workflow.js";
import { installLibrary } from "./library.js";
import { install as installHistoryPanel } from "./panels/history.js";
import { install as installQueuePanel } from "./panels/queue.js";
import { installRun } from "./run.js";

const DEFAULT_WORKFLOW = "txt2img.json";
const $ = (id) => document.getElementById(id);

/** Sizes the canvas to its box, in device pixels. */
function fitCanvas() {
  const element = app.canvas.canvas;
  const { width, height } = element.parentElement.getBoundingClientRect();
  const ratio = Math.max(1, window.devicePixelRatio);
  element.width = Math.round(width * ratio);
  element.height = Math.round(height * ratio);
  element.style.width = `${width}px`;
  element.style.height = `${height}px`;
  element.getContext("2d").scale(ratio, ratio);
  app.canvas.draw(true, true);
}

async function openFirstWorkflow() {
  const session = app.savedSession();
  if (session?.workflow) {
    try {
      await app.loadWorkflow(session.workflow, { name: session.name });
      return;
    } catch (error) {
      app.showMessage(`The last workflow could not be restored (${error.message}); opening the default one.`, { level: "warning" });
    }
  }
  await app.loadWorkflow(await app.api.get(`/sdflow/workflows/${DEFAULT_WORKFLOW}`), { name: DEFAULT_WORKFLOW });
  fitView(app.canvas);
}

function addMenuEntries() {
  app.addMenuItem({ group: "Edit", label: "Undo (Ctrl+Z)", action: () => app.history.undo() });
  app.addMenuItem({ group: "Edit", label: "Redo (Ctrl+Y)", action: () => app.history.redo() });
  app.addMenuItem({ group: "Edit", label: "Group selected nodes (Ctrl+G)", action: () => groupSelection(app.canvas) && app.graphChanged() });
  app.addMenuItem({ group: "View", label: "Node library", action: () => document.body.classList.toggle("library-hidden") });
  app.addMenuItem({ group: "View", label: "Fit view", action: () => fitView(app.canvas) });
}

async function start() {
  await app.setup({ canvas: $("graph-canvas"), widgetLayer: $("widget-layer"), menu: $("menu"), toasts: $("toasts") });
  fitCanvas();
  new ResizeObserver(fitCanvas).observe($("canvas-wrap"));
  const queue = installRun(app, { button: $("queue-button"), batch: $("batch-count"), bar: $("run-progress-bar"), label: $("run-label"), status: $("run-status") });
  installLibrary(app, $("node-library"));
  addMenuEntries();
  installShortcuts(app.canvas, {
    queue,
    save: () => saveWorkflow(app),
    undo: () => app.history.undo(),
    redo: () => app.history.redo(),
    changed: () => app.graphChanged(),
  });
  installQueuePanel(app);
  installHistoryPanel(app);
  // plugin widgets and the file features' load hooks must be in place before a workflow opens
  await installFiles(app);
  await installExtensions(app);
  await openFirstWorkflow();
}

window.app = app;
start().catch((error) => {
  const box = $("startup-error");
  box.hidden = false;
  box.textContent = `The editor could not start: ${error.message}`;
  console.error(error);
});
