/**
 * Images shown inside a node below its widgets: outputs of a run, step previews of a sampler, the
 * picture a Load Image node reads. They are not part of the saved workflow.
 */

import { LiteGraph } from "/lib/litegraph/litegraph.es.js";

/** A node showing images is grown to at least this much room for them. */
const MIN_IMAGE_AREA = 220;

/** The y (in node coordinates) where the image area starts: under the last widget or slot. */
function imagesTop(node) {
  const last = node.widgets?.filter((w) => !w.hidden).at(-1);
  if (last) return last.y + (last.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT + 4);
  const rows = Math.max(node.inputs.filter((i) => !i.widget).length, node.outputs.length, 1);
  return rows * LiteGraph.NODE_SLOT_HEIGHT + 6;
}

/**
 * Shows `urls` on `node` (replacing what it showed); an empty list clears it. `kind` tells them
 * apart ("output", "preview", "input") and is kept as `node.imageKind`. With `grow` the node is
 * made tall enough to show them well.
 */
export function showImages(node, urls, kind = "output", { grow = true } = {}) {
  const images = urls.map((url) => {
    const image = new Image();
    image.onload = () => node.setDirtyCanvas(true, false);
    image.src = url;
    return image;
  });
  node.images = images;
  node.imageUrls = [...urls];
  node.imageKind = kind;
  if (grow && images.length && node.size[1] - imagesTop(node) < MIN_IMAGE_AREA) {
    node.setSize([Math.max(node.size[0], 256), imagesTop(node) + MIN_IMAGE_AREA]);
  }
  node.setDirtyCanvas(true, true);
}

/** Draws the node's images into the space under its widgets, in a grid when there are several. */
export function drawImages(node, ctx) {
  const loaded = (node.images ?? []).filter((image) => image.complete && image.naturalWidth);
  if (!loaded.length || node.flags.collapsed) return;
  const top = imagesTop(node) + 4;
  const [width, height] = [node.size[0], node.size[1] - top - 4];
  if (height < 16) return;
  const columns = Math.ceil(Math.sqrt(loaded.length));
  const rows = Math.ceil(loaded.length / columns);
  const cellWidth = width / columns;
  const cellHeight = height / rows;
  loaded.forEach((image, index) => {
    const scale = Math.min(cellWidth / image.naturalWidth, cellHeight / image.naturalHeight);
    const [w, h] = [image.naturalWidth * scale, image.naturalHeight * scale];
    const x = (index % columns) * cellWidth + (cellWidth - w) / 2;
    const y = top + Math.floor(index / columns) * cellHeight + (cellHeight - h) / 2;
    ctx.drawImage(image, x, y, w, h);
  });
}
