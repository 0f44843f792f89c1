/**
 * One node type per `/object_info` entry: sockets for the typed inputs, widgets for the values
 * (each with its socket, see widget-sockets.js), outputs; drawn with their images, messages,
 * progress and mode.
 */

import { LiteGraph } from "/lib/litegraph/litegraph.es.js";
import { openMaskEditor } from "../widgets/mask-editor.js";
import { addSpecWidgets, isWidgetInput, sectionInputs } from "../widgets/index.js";
import { drawImages } from "./images.js";
import { BYPASSED, MUTED, drawModeLabel, modeLook, toggleMode } from "./modes.js";
import { addWidgetSockets } from "./widget-sockets.js";
import { WorkflowNode } from "./workflow-node.js";

/** New nodes are at least this wide, so that their titles and values show. */
const MIN_WIDTH = 220;

/** The nodes a node's menu acts on: the selection when the node is part of it, else the node. */
function menuTargets(canvas, node) {
  const selected = Object.values(canvas.selected_nodes ?? {});
  return selected.includes(node) ? selected : [node];
}

/** Base class of every node type the server describes. */
export class SpecNode extends WorkflowNode {
  constructor(title, nodeData, app) {
    super(title);
    this.app = app;
    this.serialize_widgets = true;
    for (const section of ["required", "optional"]) {
      for (const [name, input] of sectionInputs(nodeData, section)) {
        if (isWidgetInput(input)) continue;
        const extra = section === "optional" ? { shape: LiteGraph.SlotShape.HollowCircle } : {};
        this.addInput(name, input.type, extra);
      }
    }
    this.widgetSockets = addSpecWidgets(this, nodeData, app);
    addWidgetSockets(this, this.widgetSockets);
    nodeData.output?.forEach((type, index) => {
      const name = nodeData.output_name?.[index] ?? type;
      const shape = nodeData.output_is_list?.[index] ? LiteGraph.SlotShape.Grid : undefined;
      this.addOutput(name, Array.isArray(type) ? "COMBO" : type, shape ? { shape } : {});
    });
    this.strokeStyles.running = () => (this.running ? { color: "#3ddc84", lineWidth: 3, padding: 6 } : undefined);
    const [width, height] = this.computeSize();
    this.setSize([Math.max(width, MIN_WIDTH), height]);
  }

  /** Defaults of a node placed by the user (loaded nodes keep what their workflow says). */
  initNew() {
    this.properties["Node name for S&R"] = this.constructor.comfyClass;
    this.refreshInputPreview?.(true);
  }

  get renderingColor() {
    return modeLook(this)?.title ?? super.renderingColor;
  }

  get renderingBgColor() {
    return modeLook(this)?.body ?? super.renderingBgColor;
  }

  /** Loaded workflows list only linked widget sockets: the others are added back. */
  onConfigure(info) {
    super.onConfigure(info);
    addWidgetSockets(this, this.widgetSockets);
    if (this.graph?.list_of_graphcanvas?.length) this.refreshInputPreview?.();
  }

  /** `widgets_values` in widget order, without gaps (left out only where the loaded node had none). */
  onSerialize(data) {
    super.onSerialize(data);
    if (this.widgets?.length || this.loaded?.hasWidgetsValues !== false) {
      data.widgets_values = (this.widgets ?? []).filter((w) => w.serialize !== false).map((w) => w.value);
    }
  }

  onRemoved() {
    for (const widget of this.widgets ?? []) widget.onRemove?.();
  }

  onDrawForeground(ctx) {
    drawImages(this, ctx);
    drawModeLabel(this, ctx, LiteGraph.NODE_TITLE_HEIGHT);
  }

  getExtraMenuOptions(canvas) {
    const targets = menuTargets(canvas, this);
    const changed = () => this.app.graphChanged();
    const options = [
      { content: this.mode === BYPASSED ? "Remove bypass (Ctrl+B)" : "Bypass (Ctrl+B)", callback: () => toggleMode(targets, BYPASSED) && changed() },
      { content: this.mode === MUTED ? "Unmute (Ctrl+M)" : "Mute (Ctrl+M)", callback: () => toggleMode(targets, MUTED) && changed() },
    ];
    if (this.imageWidget) options.push({ content: "Open in mask editor", callback: () => openMaskEditor(this.app, this, this.imageWidget) });
    const url = this.imageKind === "output" ? this.imageUrls?.[0] : null;
    if (url) options.push({ content: "Open image", callback: () => window.open(url, "_blank", "noopener") });
    return options;
  }
}

/** Registers `nodeClass` as node type `type` in `category` (registering resets the category). */
export function registerType(type, nodeClass, category) {
  LiteGraph.registerNodeType(type, nodeClass);
  nodeClass.category = category;
}

/** Registers a node type for every entry of `objectInfo` (replacing earlier ones of that name). */
export function registerNodeTypes(objectInfo, app) {
  for (const [type, nodeData] of Object.entries(objectInfo)) {
    const title = nodeData.display_name || type;
    const nodeClass = class extends SpecNode {
      static title = title;
      static comfyClass = type;
      static nodeData = nodeData;

      constructor(name) {
        super(name ?? title, nodeData, app);
      }
    };
    registerType(type, nodeClass, nodeData.category ?? "sdflow");
  }
}
