/** Opening a workflow file: JSON in UI or API format, or a PNG that carries its workflow. */

import { pngText } from "./png.js";

const isPng = (file) => file.type === "image/png" || /\.png$/i.test(file.name);

/** Whether `file` is one the editor can open (`.json` or `.png`). */
export function canOpen(file) {
  return isPng(file) || file.type === "application/json" || /\.json$/i.test(file.name);
}

/**
 * The workflow in `file`: its JSON, or a PNG's `workflow` text (UI format), else its `prompt` (API
 * format). Null when a PNG carries neither.
 */
async function workflowFromFile(file) {
  if (!isPng(file)) return JSON.parse(await file.text());
  const texts = await pngText(await file.arrayBuffer());
  const json = texts.workflow ?? texts.prompt;
  return json === undefined ? null : JSON.parse(json);
}

/** Loads the workflow in `file` into the editor under the file's name; problems are shown, not thrown. */
export async function openFile(app, file) {
  try {
    const workflow = await workflowFromFile(file);
    if (workflow === null) {
      app.showMessage(`${file.name} carries no workflow.`, { level: "warning" });
      return;
    }
    await app.loadWorkflow(workflow, { name: file.name.replace(/\.[^.]*$/, "") });
  } catch (error) {
    app.showMessage(`Could not open ${file.name}: ${error.message}`, { level: "error" });
  }
}
