/**
 * Image inputs of upload nodes (Load Image): an upload button that sends a file to
 * `POST /upload/image` and selects it, and a preview of the selected image on the node.
 */

import { showImages } from "../graph/images.js";

/** `{filename, subfolder, type}` of a Load Image value such as `"sub/cat.png [output]"`. */
export function imageRef(value) {
  const match = String(value ?? "").match(/^(.*?)(?: \[(input|output|temp)\])?$/);
  const path = match[1];
  const slash = path.lastIndexOf("/");
  return { filename: path.slice(slash + 1), subfolder: slash < 0 ? "" : path.slice(0, slash), type: match[2] ?? "input" };
}

/** The combo value naming an uploaded file (`{name, subfolder, type}` as the server answers). */
export function uploadedValue({ name, subfolder, type }) {
  const path = subfolder ? `${subfolder}/${name}` : name;
  return type && type !== "input" ? `${path} [${type}]` : path;
}

/** Selects `value` in `imageWidget` (adding it to the options) and shows it on the node. */
export function selectImage(node, imageWidget, value) {
  const values = imageWidget.options.values;
  if (Array.isArray(values) && !values.includes(value)) values.push(value);
  imageWidget.value = value;
  imageWidget.callback?.(value);
  node.onWidgetChanged?.(imageWidget.name, value, undefined, imageWidget);
}

/** Uploads `file` to the input folder; resolves to the combo value naming it. */
export async function uploadImage(app, file) {
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("type", "input");
  return uploadedValue(await app.api.upload("/upload/image", form));
}

function pickFile() {
  return new Promise((resolve) => {
    const input = Object.assign(document.createElement("input"), { type: "file", accept: "image/*" });
    input.onchange = () => resolve(input.files?.[0] ?? null);
    input.click();
  });
}

/**
 * Keeps `node`'s preview in step with the file `imageWidget` selects; `node.imageWidget` names
 * that widget and `node.refreshInputPreview(grow)` redraws the preview (`grow`: make the node
 * tall enough for it, as after choosing a file).
 */
export function previewSelectedImage(node, imageWidget, app) {
  node.imageWidget = imageWidget;
  const preview = (grow = false) => {
    const value = imageWidget.value;
    showImages(node, value ? [app.api.viewUrl(imageRef(value))] : [], "input", { grow });
  };
  const chained = imageWidget.callback;
  imageWidget.callback = (value, ...rest) => {
    chained?.call(imageWidget, value, ...rest);
    preview(true);
  };
  node.refreshInputPreview = preview;
}

/**
 * Adds the upload button (saved value `kind`, e.g. "image"); the uploaded file is selected in the
 * widget `imageWidget()` returns.
 */
export function addUploadWidget(node, imageWidget, app, kind = "image") {
  const button = node.addWidget("button", "upload", kind, async () => {
    const file = await pickFile();
    if (!file) return;
    try {
      selectImage(node, imageWidget(), await uploadImage(app, file));
    } catch (error) {
      app.showMessage(`Upload of ${file.name} failed: ${error.message}`, { level: "error" });
    }
  }, {});
  button.label = "choose file to upload";
  return button;
}
