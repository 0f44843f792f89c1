/**
 * Widgets from `/object_info` input specs, in ComfyUI's order: the required widgets (each seed-like
 * one followed by its `control_after_generate`), the upload button of upload nodes, then the
 * optional widgets. That order is the order of `widgets_values` in saved workflows, which the
 * engine's converter reads back.
 */

import { addNumberWidget } from "./number.js";
import { addControlWidget } from "./seed.js";
import { addStringWidget } from "./text.js";
import { addUploadWidget, previewSelectedImage } from "./upload.js";

const UPLOAD_FLAGS = { image_upload: "image", animated_image_upload: "image", video_upload: "video", audio_upload: "audio" };

const BUILT_IN = {
  INT: (node, name, input) => addNumberWidget(node, name, "INT", input.options),
  FLOAT: (node, name, input) => addNumberWidget(node, name, "FLOAT", input.options),
  STRING: (node, name, input) => addStringWidget(node, name, input.options),
  BOOLEAN: (node, name, { options }) => node.addWidget("toggle", name, options.default ?? false, () => {}, { on: options.label_on, off: options.label_off }),
  COMBO: (node, name, { options, values }) => node.addWidget("combo", name, options.default ?? values[0] ?? "", () => {}, { values }),
};

/** Factories registered by plugins: type → (node, inputName, inputData, app) → widget or {widget}. */
const registered = new Map();

/** Makes inputs whose type is `type` show as the widget `factory` builds. */
export function registerWidget(type, factory) {
  registered.set(type, factory);
}

/** `{type, values, options}` of an `/object_info` input entry; option lists are COMBOs with `values`. */
export function parseInput(entry) {
  const [raw, options = {}] = Array.isArray(entry) ? entry : [entry];
  if (Array.isArray(raw)) return { type: "COMBO", values: raw, options };
  if (raw === "COMBO") return { type: "COMBO", values: options.options ?? [], options };
  return { type: raw, values: null, options };
}

/** Whether an input shows as a widget; the others are sockets only. */
export function isWidgetInput({ type, options }) {
  if (options.forceInput) return false;
  return type in BUILT_IN || registered.has(type) || Boolean(options.socketless);
}

/** `[name, parsed input]` of a section of a node's `/object_info` entry, in `input_order`. */
export function sectionInputs(nodeData, section) {
  const entries = nodeData.input?.[section] ?? {};
  const order = nodeData.input_order?.[section] ?? Object.keys(entries);
  return order.filter((name) => name in entries).map((name) => [name, parseInput(entries[name])]);
}

/** A placeholder for a socketless widget type nothing registered: keeps its saved value. */
function addOpaqueWidget(node, name, input) {
  return node.addCustomWidget({
    type: "opaque",
    name,
    value: input.options.default ?? null,
    options: {},
    y: 0,
    draw(ctx, owner, width, y, height) {
      ctx.fillStyle = "#777";
      ctx.fillText(`${name} (${input.type})`, 15, y + height * 0.7);
    },
  });
}

/** Adds the widget for one parsed input (`parseInput`) of `node` and returns it. */
export function addWidgetForInput(node, name, input, app) {
  const factory = registered.get(input.type);
  if (factory) {
    const made = factory(node, name, [input.values ?? input.type, input.options], app);
    return made?.widget ?? made;
  }
  return (BUILT_IN[input.type] ?? addOpaqueWidget)(node, name, input);
}

/**
 * Adds the widgets of every widget input of `nodeData` to `node`, in saved order. Returns the
 * names and types of the inputs they stand for that take links (the node gives each a socket).
 */
export function addSpecWidgets(node, nodeData, app) {
  const sockets = [];
  const add = ([name, input]) => {
    const widget = addWidgetForInput(node, name, input, app);
    if (!widget) return;
    if (input.options.tooltip) widget.tooltip = input.options.tooltip;
    if (!input.options.socketless) sockets.push({ name, type: input.type });
    if (input.options.control_after_generate) addControlWidget(node, widget);
  };
  const required = sectionInputs(nodeData, "required").filter(([, input]) => isWidgetInput(input));
  const optional = sectionInputs(nodeData, "optional").filter(([, input]) => isWidgetInput(input));
  required.forEach(add);
  const upload = [...required, ...optional].find(([, { options }]) => Object.keys(UPLOAD_FLAGS).some((flag) => options[flag]));
  const imageWidget = () => node.widgets.find((w) => w.name === upload[0]);
  if (upload) {
    const { options } = upload[1];
    addUploadWidget(node, imageWidget, app, UPLOAD_FLAGS[Object.keys(UPLOAD_FLAGS).find((flag) => options[flag])]);
  }
  optional.forEach(add);
  if (upload) previewSelectedImage(node, imageWidget(), app);
  return sockets;
}
