/** Workflow JSON in and out of the graph: ComfyUI's UI format (v0.4), and API prompts told apart from it. */

import { LGraphNode, LiteGraph, createBounds } from "/lib/litegraph/litegraph.es.js";
import { setNodeMessages } from "./messages.js";
import { compactWidgetSockets } from "./widget-sockets.js";

/** True for an API prompt (`{"3": {"class_type", "inputs"}, ...}`), false for a UI workflow. */
export function isApiPrompt(json) {
  if (!json || typeof json !== "object" || Array.isArray(json) || Array.isArray(json.nodes)) return false;
  const nodes = Object.values(json);
  return nodes.length > 0 && nodes.every((node) => node && typeof node === "object" && typeof node.class_type === "string");
}

/** The graph as a UI workflow: plain JSON, with only linked widget sockets. */
export function serializeGraph(graph) {
  return compactWidgetSockets(JSON.parse(JSON.stringify(graph.serialize())));
}

/**
 * Replaces the graph with `workflow` (UI format) and shows it where it was saved looking.
 * Nodes of types that are not installed keep their saved data and say so; returns those types.
 */
export function configureGraph(graph, canvas, workflow) {
  if (!workflow || !Array.isArray(workflow.nodes)) throw new Error("this is neither a UI workflow nor an API prompt");
  const missing = [...new Set(workflow.nodes.map((n) => n.type).filter((type) => !LiteGraph.registered_node_types[type]))];
  graph.configure(structuredClone(workflow));
  // the canvas computes its own execution order; the saved one is kept until the graph changes
  for (const saved of workflow.nodes) {
    const node = graph.getNodeById(saved.id);
    if (node && Number.isInteger(saved.order)) node.order = saved.order;
  }
  for (const node of graph.nodes) {
    if (node.constructor !== LGraphNode || !node.last_serialization) continue;
    node.title = node.last_serialization.title ?? node.last_serialization.type;
    setNodeMessages(node, "error", [`Node type ${node.last_serialization.type} is not installed`]);
  }
  const ds = workflow.extra?.ds;
  if (ds?.offset && ds.scale) {
    canvas.ds.scale = ds.scale;
    canvas.ds.offset = [ds.offset[0], ds.offset[1]];
  } else {
    fitView(canvas);
  }
  canvas.setDirty(true, true);
  return missing;
}

/** Zoom limits of `fitView`: below 0.7 node text is hard to read (and the canvas hides it below 0.6). */
const FIT_SCALES = [0.7, 1];

/**
 * Zooms and pans `canvas` onto its graph's nodes: centred when they fit at a readable zoom,
 * else starting at their top-left corner.
 */
export function fitView(canvas) {
  for (const node of canvas.graph.nodes) node.updateArea(canvas.ctx); // bounds are otherwise only measured when drawn
  const bounds = createBounds(canvas.graph.nodes, 40);
  if (!bounds) return;
  const [x, y, width, height] = bounds;
  const { clientWidth, clientHeight } = canvas.canvas;
  const scale = Math.min(FIT_SCALES[1], Math.max(FIT_SCALES[0], Math.min(clientWidth / width, clientHeight / height)));
  const along = (start, size, room) => (size * scale <= room ? (room / scale - size) / 2 - start : -start);
  canvas.ds.scale = scale;
  canvas.ds.offset = [along(x, width, clientWidth), along(y, height, clientHeight)];
  canvas.setDirty(true, true);
}
