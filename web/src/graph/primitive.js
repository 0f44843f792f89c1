/**
 * The PrimitiveNode of ComfyUI workflows: one value shared by the widget inputs it is linked to.
 * Linked to its first widget socket it takes that widget's type and options (numbers and combos
 * also get a `control_after_generate`, "fixed" by default); its `widgets_values` is
 * `[value, control?]`. Changing the value writes it into every linked widget. The converter
 * replaces links from it with its value.
 */

import { registerType } from "./node-types.js";
import { WorkflowNode } from "./workflow-node.js";
import { addWidgetForInput, parseInput } from "../widgets/index.js";
import { addControlWidget } from "../widgets/seed.js";

const UNLINKED = "connect to widget input";

/** `[node, widget]` pairs of the widgets `primitive`'s output is linked to. */
function linkedWidgets(primitive) {
  const pairs = [];
  for (const linkId of primitive.outputs[0].links ?? []) {
    const link = primitive.graph?.getLink(linkId);
    const node = link && primitive.graph.getNodeById(link.target_id);
    const name = node?.inputs[link.target_slot]?.widget?.name;
    const widget = name && node.widgets?.find((w) => w.name === name);
    if (widget) pairs.push([node, widget]);
  }
  return pairs;
}

/** The `/object_info` input entry behind a widget of a node, or null. */
function inputSpec(node, name) {
  const input = node.constructor.nodeData?.input ?? {};
  return input.required?.[name] ?? input.optional?.[name] ?? null;
}

class PrimitiveNode extends WorkflowNode {
  static title = "Primitive";

  constructor(title) {
    super(title ?? PrimitiveNode.title);
    this.isVirtualNode = true;
    this.serialize_widgets = true;
    this.addOutput(UNLINKED, "*");
    this.savedValues = null;
  }

  initNew() {
    this.properties["Run widget replace on values"] = false;
  }

  /** Accepts only widget sockets of the type it carries (for combos: with the same options). */
  onConnectOutput(slot, type, input, targetNode) {
    if (!input.widget) return false;
    const current = this.outputs[0].type;
    if (current === "*") return true;
    if (current !== input.type) return false;
    const spec = inputSpec(targetNode, input.widget.name);
    const values = spec && parseInput(spec).values;
    return !values || JSON.stringify(values) === JSON.stringify(this.widgets?.[0]?.options.values);
  }

  /** Keeps the saved values until the links (and the widgets they give) exist. */
  onConfigure(info) {
    super.onConfigure(info);
    this.savedValues = Array.isArray(info.widgets_values) ? info.widgets_values : null;
  }

  onConnectionsChange() {
    // while a workflow loads, its targets are configured only after this node: wait for them
    queueMicrotask(() => this.adopt());
  }

  /** Takes the type and widget of the first linked widget; drops them when nothing is linked. */
  adopt() {
    const [first] = linkedWidgets(this);
    const output = this.outputs[0];
    if (!first) {
      if (this.widgets?.length) this.removeValueWidgets();
      Object.assign(output, { type: "*", name: UNLINKED });
      delete output.widget;
      return;
    }
    if (this.widgets?.length) return;
    const [node, target] = first;
    const spec = inputSpec(node, target.name);
    if (!spec) return;
    const input = parseInput(spec);
    const socket = node.getSlotFromWidget(target);
    Object.assign(output, { type: socket.type, name: socket.type, widget: { name: target.name } });
    const size = [...this.size];
    const widget = addWidgetForInput(this, "value", input, this.app);
    widget.value = target.value;
    const chained = widget.callback;
    widget.callback = (value, ...rest) => {
      chained?.call(widget, value, ...rest);
      this.applyToGraph();
    };
    if (widget.type === "number" || widget.type === "combo") addControlWidget(this, widget, "fixed");
    if (this.savedValues) {
      this.savedValues.forEach((value, index) => {
        if (this.widgets[index]) this.widgets[index].value = value;
      });
      this.savedValues = null;
      this.size[0] = size[0];
      this.size[1] = size[1];
    } else {
      this.setSize(this.computeSize());
    }
  }

  removeValueWidgets() {
    for (const widget of this.widgets ?? []) widget.onRemove?.();
    this.widgets = [];
  }

  /** Writes the value into every linked widget. */
  applyToGraph() {
    const value = this.widgets?.[0]?.value;
    for (const [, widget] of linkedWidgets(this)) widget.value = value;
  }

  onRemoved() {
    this.removeValueWidgets();
  }
}

/** Registers the PrimitiveNode type; its widgets get `app` for the factories that need it. */
export function registerPrimitive(app) {
  PrimitiveNode.prototype.app = app;
  registerType("PrimitiveNode", PrimitiveNode, "utils");
}
