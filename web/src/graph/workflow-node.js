/**
 * Base class of the editor's node types: a node read from a workflow is written back as it was
 * read where nothing changed it, keys the canvas does not know included.
 */

import { LGraphNode } from "/lib/litegraph/litegraph.es.js";

/** Node keys the canvas reads and writes itself; any other key of a saved node is kept as it is. */
const NODE_KEYS = new Set(["id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "title", "properties", "widgets_values", "color", "bgcolor", "boxcolor", "shape", "showAdvanced"]);

export class WorkflowNode extends LGraphNode {
  /** Remembers the saved node's extra keys and its exact position and size. */
  onConfigure(info) {
    this.loaded = {
      extra: Object.fromEntries(Object.entries(info).filter(([key]) => !NODE_KEYS.has(key))),
      pos: info.pos,
      size: info.size,
      hasWidgetsValues: "widgets_values" in info,
    };
  }

  /**
   * Writes back the extra keys, and position and size as loaded while they are unchanged (the
   * canvas keeps them in 32-bit floats, which would change their last digits).
   */
  onSerialize(data) {
    if (!this.loaded) return;
    Object.assign(data, structuredClone(this.loaded.extra));
    for (const key of ["pos", "size"]) {
      const loaded = this.loaded[key];
      if (Array.isArray(loaded) && loaded.every((value, i) => Math.fround(value) === Math.fround(data[key]?.[i]))) data[key] = [...loaded];
    }
  }
}
