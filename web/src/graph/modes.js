/**
 * Node modes as ComfyUI uses them: 0 runs, 2 is muted (never runs, nor does what needs it),
 * 4 is bypassed (its inputs pass through to its outputs of the same type).
 */

export const ALWAYS = 0;
export const MUTED = 2;
export const BYPASSED = 4;

const LOOK = {
  [MUTED]: { label: "MUTED", title: "#303030", body: "#1c1c1c", text: "#8a8a8a" },
  [BYPASSED]: { label: "BYPASSED", title: "#6b2f7a", body: "#3d1f47", text: "#e3b5f0" },
};

/**
 * Gives `nodes` the `mode`; when every one of them has it already, they go back to running.
 * Returns whether anything changed.
 */
export function toggleMode(nodes, mode) {
  const list = [...nodes];
  if (!list.length) return false;
  const next = list.every((node) => node.mode === mode) ? ALWAYS : mode;
  for (const node of list) node.mode = next;
  list[0].graph?.setDirtyCanvas(true, true);
  return true;
}

/** The title and body colours of a muted or bypassed node, else null. */
export function modeLook(node) {
  return LOOK[node.mode] ?? null;
}

/** Writes "MUTED" or "BYPASSED" at the right of the node's title bar. */
export function drawModeLabel(node, ctx, titleHeight) {
  const look = modeLook(node);
  if (!look || node.flags.collapsed) return;
  ctx.save();
  ctx.font = "bold 11px sans-serif";
  ctx.textAlign = "right";
  ctx.fillStyle = look.text;
  ctx.fillText(look.label, node.size[0] - 8, -titleHeight / 2 + 4);
  ctx.restore();
}
