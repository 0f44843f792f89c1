/**
 * A mask editor for inpainting: paint over a Load Image node's picture, then save. The painted
 * area becomes transparent in a copy of the image (`POST /upload/mask` with `original_ref`, saved
 * under `input/clipspace/`), which Load Image reads as its MASK output; the node then selects it.
 */

import { imageRef, selectImage, uploadedValue } from "./upload.js";

const MASK_COLOUR = "rgb(255, 40, 120)";

function button(label, onclick, id) {
  return Object.assign(document.createElement("button"), { type: "button", textContent: label, onclick, id: id ?? "" });
}

/** Loads `url` as an image element (rejects when it cannot be read). */
function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the image could not be loaded"));
    image.src = url;
  });
}

/** A canvas holding the image's existing mask (its transparent pixels) as opaque mask colour. */
function maskFromAlpha(image, mask) {
  const scratch = new OffscreenCanvas(image.naturalWidth, image.naturalHeight).getContext("2d");
  scratch.drawImage(image, 0, 0);
  const pixels = scratch.getImageData(0, 0, image.naturalWidth, image.naturalHeight);
  for (let i = 3; i < pixels.data.length; i += 4) {
    const masked = 255 - pixels.data[i];
    pixels.data.set([255, 40, 120, masked], i - 3);
  }
  mask.getContext("2d").putImageData(pixels, 0, 0);
}

/** The PNG the server takes: opaque where unmasked, transparent where painted. */
function alphaPng(mask) {
  const { width, height } = mask;
  const pixels = mask.getContext("2d").getImageData(0, 0, width, height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const masked = pixels.data[i + 3];
    pixels.data.set([0, 0, 0, 255 - masked], i);
  }
  const out = new OffscreenCanvas(width, height);
  out.getContext("2d").putImageData(pixels, 0, 0);
  return out.convertToBlob({ type: "image/png" });
}

/** Brush strokes on `mask`: round segments from point to point while the pointer is down. */
function paintOn(mask, state) {
  const ctx = mask.getContext("2d");
  let last = null;
  const stroke = (event) => {
    const box = mask.getBoundingClientRect();
    const point = [((event.clientX - box.left) / box.width) * mask.width, ((event.clientY - box.top) / box.height) * mask.height];
    ctx.globalCompositeOperation = state.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = MASK_COLOUR;
    ctx.lineWidth = (2 * state.size * mask.width) / box.width;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...(last ?? point));
    ctx.lineTo(...point);
    ctx.stroke();
    last = point;
  };
  mask.addEventListener("pointerdown", (event) => {
    mask.setPointerCapture(event.pointerId);
    last = null;
    stroke(event);
  });
  mask.addEventListener("pointermove", (event) => last && stroke(event));
  mask.addEventListener("pointerup", () => {
    last = null;
  });
}

/**
 * Opens the editor for `node`'s selected image (`imageWidget` names it). Saving uploads the mask
 * and selects the new file; Cancel or Escape closes without changes.
 */
export async function openMaskEditor(app, node, imageWidget) {
  const original = imageRef(imageWidget.value);
  if (!original.filename) {
    app.showMessage("Choose an image first, then paint its mask.", { level: "warning" });
    return;
  }
  let image;
  try {
    image = await loadImage(app.api.viewUrl(original));
  } catch (error) {
    app.showMessage(`Cannot edit the mask: ${error.message}`, { level: "error" });
    return;
  }
  const state = { size: 24, erase: false };
  const dialog = Object.assign(document.createElement("div"), { id: "mask-editor", tabIndex: -1 });
  const picture = Object.assign(document.createElement("canvas"), { width: image.naturalWidth, height: image.naturalHeight });
  picture.getContext("2d").drawImage(image, 0, 0);
  const fit = Math.min((window.innerWidth * 0.9) / image.naturalWidth, (window.innerHeight - 140) / image.naturalHeight);
  picture.style.width = `${image.naturalWidth * fit}px`;
  picture.style.height = `${image.naturalHeight * fit}px`;
  const mask = Object.assign(document.createElement("canvas"), { width: image.naturalWidth, height: image.naturalHeight, className: "mask" });
  maskFromAlpha(image, mask);
  paintOn(mask, state);

  const size = Object.assign(document.createElement("input"), { type: "range", min: 2, max: 200, value: state.size, id: "mask-brush-size" });
  size.oninput = () => {
    state.size = Number(size.value);
  };
  const mode = button("Erase", () => {
    state.erase = !state.erase;
    mode.textContent = state.erase ? "Paint" : "Erase";
  }, "mask-erase");
  const close = () => dialog.remove();
  const save = async () => {
    const form = new FormData();
    form.append("image", await alphaPng(mask), `clipspace-mask-${Date.now()}.png`);
    form.append("original_ref", JSON.stringify(original));
    form.append("type", "input");
    form.append("subfolder", "clipspace");
    try {
      const saved = await app.api.upload("/upload/mask", form);
      selectImage(node, imageWidget, uploadedValue(saved));
      close();
    } catch (error) {
      app.showMessage(`Saving the mask failed: ${error.message}`, { level: "error" });
    }
  };
  const toolbar = document.createElement("div");
  toolbar.className = "mask-toolbar";
  toolbar.append(
    Object.assign(document.createElement("label"), { textContent: "Brush" }), size, mode,
    button("Clear", () => mask.getContext("2d").clearRect(0, 0, mask.width, mask.height), "mask-clear"),
    button("Cancel", close, "mask-cancel"),
    button("Save", save, "mask-save"),
  );
  const stage = document.createElement("div");
  stage.className = "mask-stage";
  stage.append(picture, mask);
  dialog.append(toolbar, stage);
  dialog.addEventListener("keydown", (event) => event.key === "Escape" && close());
  document.body.append(dialog);
  dialog.focus();
}
