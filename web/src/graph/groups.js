/** Groups: a titled frame around nodes that moves them together. */

import { LGraphGroup } from "/lib/litegraph/litegraph.es.js";

const PADDING = 10;

/** Frames the selected items of `canvas` in a new group and returns it (null when nothing is selected). */
export function groupSelection(canvas, title = "Group") {
  const items = [...canvas.selectedItems];
  if (!items.length) return null;
  const group = new LGraphGroup(title);
  group.resizeTo(items, PADDING);
  canvas.graph.add(group);
  canvas.setDirty(true, true);
  return group;
}
