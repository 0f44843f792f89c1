/**
 * Messages shown on nodes: errors (a red outline and red text under the node) from a refused
 * prompt or a failed run, and warnings (amber text) from `node_warning` events. They are read
 * back from `node.errorMessages` and `node.warningMessages`.
 */

const STYLE = {
  error: { key: "errorMessages", colour: "#ff6b6b" },
  warning: { key: "warningMessages", colour: "#f0c040" },
};
const LINE_HEIGHT = 15;

/** Sets the `kind` ("error" or "warning") messages of `node`; an empty list clears them. */
export function setNodeMessages(node, kind, messages) {
  node[STYLE[kind].key] = [...messages];
  if (kind === "error") node.has_errors = messages.length > 0;
  node.setDirtyCanvas(true, true);
}

/** Adds one message of `kind` to `node`. */
export function addNodeMessage(node, kind, message) {
  setNodeMessages(node, kind, [...(node[STYLE[kind].key] ?? []), message]);
}

/** Clears the `kind` messages of every node of `graph`. */
export function clearMessages(graph, kind) {
  for (const node of graph.nodes) {
    if (node[STYLE[kind].key]?.length) setNodeMessages(node, kind, []);
  }
}

/** Lines of at most `width` pixels in the current font. */
function wrap(ctx, text, width) {
  const lines = [];
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      const candidate = line ? `${line} ${word}` : word;
      if (line && ctx.measureText(candidate).width > width) {
        lines.push(line);
        line = word;
      } else {
        line = candidate;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** Draws the node's messages under it (node coordinates). */
function drawMessages(node, ctx) {
  let y = (node.flags.collapsed ? 0 : node.size[1]) + 8;
  ctx.save();
  ctx.font = "12px sans-serif";
  ctx.textAlign = "left";
  for (const { key, colour } of Object.values(STYLE)) {
    const lines = (node[key] ?? []).flatMap((message) => wrap(ctx, message, Math.max(node.size[0], 160) - 12));
    if (!lines.length) continue;
    ctx.fillStyle = "rgba(20, 20, 20, 0.85)";
    ctx.fillRect(0, y, Math.max(node.size[0], 160), lines.length * LINE_HEIGHT + 8);
    ctx.fillStyle = colour;
    lines.forEach((line, index) => ctx.fillText(line, 6, y + 15 + index * LINE_HEIGHT));
    y += lines.length * LINE_HEIGHT + 12;
  }
  ctx.restore();
}

/** Draws every node's messages after the nodes, so that no node covers them. */
export function drawMessagesOnTop(canvas) {
  const previous = canvas.onDrawForeground;
  canvas.onDrawForeground = (ctx, area) => {
    previous?.call(canvas, ctx, area);
    for (const node of canvas.graph?.nodes ?? []) {
      if (!node.errorMessages?.length && !node.warningMessages?.length) continue;
      ctx.save();
      ctx.translate(node.pos[0], node.pos[1]);
      drawMessages(node, ctx);
      ctx.restore();
    }
  };
}

/** The graph node a prompt node id names (`"12"`, or `"12:5"` inside subgraph instance 12). */
export function nodeForPromptId(graph, id) {
  return graph.getNodeById(Number(String(id).split(":")[0])) ?? graph.getNodeById(String(id));
}

/**
 * Shows the `node_errors` of a `/prompt` answer (`{id: {errors: [{message, details}]}}`) on their
 * nodes; returns the lines it showed, `Title: message: details`.
 */
export function showNodeErrors(graph, nodeErrors = {}) {
  const lines = [];
  for (const [id, entry] of Object.entries(nodeErrors)) {
    const node = nodeForPromptId(graph, id);
    const messages = (entry.errors ?? []).map(({ message, details }) => (details ? `${message}: ${details}` : message));
    if (node) setNodeMessages(node, "error", messages);
    lines.push(...messages.map((message) => `${node?.title ?? `#${id}`}: ${message}`));
  }
  return lines;
}
