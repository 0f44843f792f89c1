/**
 * Saving a loaded workflow without changing what the editor did not change. Beyond what the node
 * classes keep themselves (their unknown keys, exact positions), litegraph's serialiser drops
 * top-level fields it does not know, writes keys in its own order, keeps group bounds as 32-bit
 * floats and adds an `id`, a `revision` and group font sizes to files that had none. The save path
 * lays the current graph over the workflow as it was loaded to undo exactly those changes;
 * everything the user edited comes from the graph.
 */

/** Workflow fields litegraph writes itself; any other top-level field of a loaded file is carried over. */
const WORKFLOW_FIELDS = new Set(["id", "revision", "last_node_id", "last_link_id", "nodes", "links", "floatingLinks", "groups", "definitions", "config", "extra", "version"]);
const DEFAULT_GROUP_FONT_SIZE = 24;

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * `current` with the key order of `original` and, where a number of `current` is the 32-bit float
 * of the number in `original` (a value litegraph stored, not changed), the original digits.
 */
function align(original, current) {
  if (typeof original === "number" && typeof current === "number") return Math.fround(original) === current ? original : current;
  if (Array.isArray(original) && Array.isArray(current)) return current.map((value, i) => (i < original.length ? align(original[i], value) : value));
  if (!isObject(original) || !isObject(current)) return current;
  const result = {};
  for (const key of Object.keys(original)) if (key in current) result[key] = align(original[key], current[key]);
  for (const key of Object.keys(current)) if (!(key in result)) result[key] = current[key];
  return result;
}

function alignGroup(original, current) {
  if (!original) return current;
  const group = { ...current };
  if (!("font_size" in original) && group.font_size === DEFAULT_GROUP_FONT_SIZE) delete group.font_size;
  return align(original, group);
}

/**
 * `current` (a serialised workflow) laid over `original` (the workflow as loaded): top-level fields
 * litegraph does not know are carried over, its own additions and float rounding are undone, and
 * keys keep their order. Nodes are matched by id, groups by position.
 */
function preserveFields(original, current) {
  if (!original) return current;
  const workflow = { ...current };
  for (const [key, value] of Object.entries(original)) if (!WORKFLOW_FIELDS.has(key)) workflow[key] = value;
  if (!("id" in original)) delete workflow.id;
  if (!("revision" in original) && workflow.revision === 0) delete workflow.revision;
  const originalNodes = new Map((original.nodes ?? []).map((node) => [node.id, node]));
  workflow.nodes = current.nodes.map((node) => align(originalNodes.get(node.id), node));
  workflow.groups = current.groups?.map((group, i) => alignGroup(original.groups?.[i], group));
  return align({ ...original, nodes: null, groups: null }, workflow);
}

let pending = null;
let loaded = null;

/** Keeps each workflow as it was loaded (the data the graph was configured from before `workflow-loaded`). */
export function install(app) {
  app.graph.events.addEventListener("configuring", ({ detail }) => {
    pending = structuredClone(detail.data);
  });
  app.events.addEventListener("workflow-loaded", () => {
    loaded = pending;
  });
}

/** The workflow to save: `app.serializeWorkflow()` laid over the workflow as loaded. */
export function workflowToSave(app) {
  return preserveFields(loaded, app.serializeWorkflow());
}
