/** The canvas as the editor uses it: its look, its menus, DOM widgets, messages and type colours. */

import { LGraphCanvas } from "/lib/litegraph/litegraph.es.js";
import { initDomWidgets } from "../widgets/dom.js";
import { applyTypeColours } from "./colors.js";
import { drawMessagesOnTop } from "./messages.js";

/** Menu entries left out: subgraphs are not saved back by this canvas version, and its properties panel is a debug view. */
const HIDDEN_MENU_ITEMS = new Set(["Convert to Subgraph 🆕", "Properties Panel"]);

/** A canvas for `graph` on `element`, with DOM widgets in `widgetLayer` and colours for `objectInfo`'s types. */
export function createCanvas(element, graph, { widgetLayer, objectInfo }) {
  const canvas = new LGraphCanvas(element, graph);
  canvas.show_info = false;
  canvas.render_canvas_border = false;
  // text stays drawn down to the zoom where text widgets hide too (widgets/dom.js)
  canvas.low_quality_zoom_threshold = 0.5;
  const hide = (items) => items.filter((item) => !item || !HIDDEN_MENU_ITEMS.has(item.content));
  const nodeMenu = canvas.getNodeMenuOptions.bind(canvas);
  const canvasMenu = canvas.getCanvasMenuOptions.bind(canvas);
  canvas.getNodeMenuOptions = (node) => hide(nodeMenu(node));
  canvas.getCanvasMenuOptions = () => hide(canvasMenu());
  initDomWidgets(canvas, widgetLayer);
  drawMessagesOnTop(canvas);
  applyTypeColours(canvas, objectInfo);
  return canvas;
}
