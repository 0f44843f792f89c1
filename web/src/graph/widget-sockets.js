/**
 * Widget ↔ input conversion, as ComfyUI's editor does it since 1.16: every widget also has an input
 * socket (`{name, type, widget: {name}}`) drawn on its row. Linking it turns the widget into an
 * input (the widget greys out and the link's value is used); unlinking turns it back. Saved
 * workflows keep only linked widget sockets, so they match what other ComfyUI editors write.
 */

/**
 * Gives every widget input in `sockets` (`[{name, type}]`) a socket unless `node` has one for it
 * (loaded workflows list only the linked ones). The node keeps its size.
 */
export function addWidgetSockets(node, sockets) {
  const [width, height] = node.size;
  for (const { name, type } of sockets) {
    if (!node.inputs.some((input) => input.widget?.name === name)) node.addInput(name, type, { widget: { name } });
  }
  node.size[0] = width;
  node.size[1] = height;
}

/**
 * Drops the unlinked widget sockets from a serialised UI workflow (v0.4 `links` arrays), moving
 * the target slots of the remaining links. Changes `workflow` in place and returns it.
 */
export function compactWidgetSockets(workflow) {
  const slotMaps = new Map();
  for (const node of workflow.nodes ?? []) {
    if (!node.inputs?.some((input) => input.widget && input.link == null)) continue;
    const map = [];
    const kept = [];
    for (const input of node.inputs) {
      if (input.widget && input.link == null) {
        map.push(null);
      } else {
        map.push(kept.length);
        kept.push(input);
      }
    }
    node.inputs = kept;
    slotMaps.set(String(node.id), map);
  }
  for (const link of workflow.links ?? []) {
    const map = slotMaps.get(String(link[3]));
    if (map) link[4] = map[link[4]];
  }
  for (const link of workflow.floatingLinks ?? []) {
    const map = slotMaps.get(String(link.target_id));
    if (map && map[link.target_slot] != null) link.target_slot = map[link.target_slot];
  }
  return workflow;
}
