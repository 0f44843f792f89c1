/** Dropping a workflow file (.json, or a PNG that carries one) anywhere on the page opens it. */

import { canOpen, openFile } from "./open.js";

const carriesFiles = (event) => event.dataTransfer?.types.includes("Files");

/** Lets the page accept dropped files; drops another handler took (`preventDefault`) are left alone. */
export function install(app) {
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (event.defaultPrevented || !carriesFiles(event)) return;
    event.preventDefault();
    const files = [...event.dataTransfer.files];
    const file = files.find(canOpen);
    if (file) openFile(app, file);
    else app.showMessage(`Cannot open ${files.map((f) => f.name).join(", ")}: drop a workflow .json or a PNG saved with its workflow.`, { level: "warning" });
  });
}
