/** The Workflow menu's file entries: open a file, save the workflow, export its API prompt. */

import { downloadJson } from "./download.js";
import { openFile } from "./open.js";
import { workflowToSave } from "./preserve.js";

/** Downloads the workflow in ComfyUI's UI format as `<name>.json`. */
export function saveWorkflow(app) {
  downloadJson(`${app.workflowName}.json`, workflowToSave(app));
}

/** Downloads the API prompt the workflow is queued as (the server's conversion) as `<name>_api.json`. */
async function exportApiPrompt(app) {
  try {
    const { prompt } = await app.graphToPrompt();
    downloadJson(`${app.workflowName}_api.json`, prompt);
  } catch (error) {
    app.showMessage(`The workflow cannot be exported: ${error.message}`, { level: "error" });
  }
}

/** Adds Load, Save and Export (API) to the Workflow menu; Load uses a hidden file picker. */
export function install(app) {
  const picker = Object.assign(document.createElement("input"), {
    type: "file",
    id: "sdflow-file-input",
    accept: ".json,.png,application/json,image/png",
    hidden: true,
  });
  picker.onchange = () => {
    const [file] = picker.files;
    picker.value = "";
    if (file) openFile(app, file);
  };
  document.body.append(picker);
  app.addMenuItem({ group: "Workflow", label: "Load", action: () => picker.click() });
  app.addMenuItem({ group: "Workflow", label: "Save", action: () => saveWorkflow(app) });
  app.addMenuItem({ group: "Workflow", label: "Export (API)", action: () => exportApiPrompt(app) });
}
