/**
 * `app`: the editor's one object, the contract panels and plugin scripts code against (see
 * web/README.md): the API client, the graph and canvas, the node catalogue, events, loading,
 * saving and queueing workflows, the menu, custom widgets and messages.
 */

import { LGraph } from "/lib/litegraph/litegraph.es.js";
import { Api } from "./api.js";
import { createCanvas } from "./graph/canvas.js";
import { History } from "./graph/history.js";
import { clearMessages, showNodeErrors } from "./graph/messages.js";
import { registerNodeTypes } from "./graph/node-types.js";
import { registerNotes } from "./graph/notes.js";
import { registerPrimitive } from "./graph/primitive.js";
import { registerReroute } from "./graph/reroute.js";
import { isTyping } from "./graph/shortcuts.js";
import { configureGraph, isApiPrompt, serializeGraph } from "./graph/workflow.js";
import { createMenu } from "./menu.js";
import { toast } from "./toast.js";
import { registerWidget } from "./widgets/index.js";
import { applyControls } from "./widgets/seed.js";

const STORAGE_KEY = "sdflow.workflow";

/** Input names of the loader nodes and the model folder each names a file in. */
const MODEL_INPUTS = {
  ckpt_name: "checkpoints",
  config_name: "configs",
  vae_name: "vae",
  lora_name: "loras",
  control_net_name: "controlnet",
  unet_name: "diffusion_models",
  clip_name: "text_encoders",
  clip_name1: "text_encoders",
  clip_name2: "text_encoders",
  model_name: "upscale_models",
  style_model_name: "style_models",
  gligen_name: "gligen",
  hypernetwork_name: "hypernetworks",
};

class App {
  constructor() {
    this.events = new EventTarget();
    this.api = new Api(this.events);
    this.graph = null;
    this.canvas = null;
    this.objectInfo = {};
    this.workflowName = "workflow";
    this.history = null;
    this.addMenuEntry = null;
    this.toasts = null;
  }

  /**
   * Reads the node catalogue, registers node types and builds the canvas in `elements`
   * (`{canvas, widgetLayer, menu, toasts}`), then opens the event stream.
   */
  async setup(elements) {
    this.addMenuEntry = createMenu(elements.menu, ["Workflow", "Edit", "View"]);
    this.toasts = elements.toasts;
    this.objectInfo = await this.api.get("/object_info");
    registerNotes();
    registerReroute();
    registerPrimitive(this);
    registerNodeTypes(this.objectInfo, this);
    this.graph = new LGraph();
    this.canvas = createCanvas(elements.canvas, this.graph, { widgetLayer: elements.widgetLayer, objectInfo: this.objectInfo });
    this.history = new History(this.graph, () => this.onGraphChanged());
    // a text field's edit becomes one step when it is committed (`change`), not one per key
    for (const type of ["pointerup", "keyup", "change"]) {
      document.addEventListener(type, (event) => {
        if (type === "keyup" && isTyping(event.target)) return;
        setTimeout(() => this.history.check());
      }, true);
    }
    this.api.connect();
  }

  /** Records an edit made in code (undo step, saved copy, `graph-changed`) if the graph changed. */
  graphChanged() {
    this.history?.check();
  }

  onGraphChanged() {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ name: this.workflowName, workflow: this.serializeWorkflow() }));
    this.events.dispatchEvent(new CustomEvent("graph-changed", { detail: {} }));
  }

  /** The workflow kept from the last session (`{name, workflow}`), or null. */
  savedSession() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    } catch {
      return null;
    }
  }

  /**
   * Opens a workflow: UI format, or an API prompt (converted by the server's `/sdflow/to-ui`).
   * Replaces the graph, resets undo, dispatches `workflow-loaded` with `{workflow, name}`.
   */
  async loadWorkflow(json, { name } = {}) {
    const workflow = isApiPrompt(json) ? (await this.api.post("/sdflow/to-ui", { prompt: json })).workflow : json;
    const missing = configureGraph(this.graph, this.canvas, workflow);
    // primitives take their widgets once every node is configured (a microtask later)
    await new Promise((resolve) => setTimeout(resolve));
    if (name) this.workflowName = name.replace(/\.json$/i, "");
    if (missing.length) this.showMessage(`Not installed, shown as placeholders: ${missing.join(", ")}`, { level: "warning" });
    this.history.reset();
    this.onGraphChanged();
    this.events.dispatchEvent(new CustomEvent("workflow-loaded", { detail: { workflow: this.serializeWorkflow(), name: this.workflowName } }));
  }

  /** The graph as a ComfyUI UI-format workflow (plain JSON). */
  serializeWorkflow() {
    return serializeGraph(this.graph);
  }

  /** The API prompt of the current graph, from the engine's converter (`POST /sdflow/convert`). */
  async graphToPrompt() {
    const workflow = this.serializeWorkflow();
    const { prompt } = await this.api.post("/sdflow/convert", { workflow });
    return { workflow, prompt };
  }

  /**
   * Queues the graph `batchCount` times (`front`: ahead of waiting prompts), applying every
   * `control_after_generate` after each. Resolves to the `/prompt` answers; on a refusal the
   * node errors are shown on their nodes and the error (an ApiError) is thrown.
   */
  async queuePrompt({ batchCount = 1, front = false } = {}) {
    const answers = [];
    clearMessages(this.graph, "error");
    for (let i = 0; i < batchCount; i++) {
      const { workflow, prompt } = await this.graphToPrompt().catch((error) => {
        this.showMessage(`The workflow cannot be converted: ${error.message}`, { level: "error" });
        throw error;
      });
      let answer;
      try {
        answer = await this.api.post("/prompt", { prompt, client_id: this.api.clientId, front, extra_data: { extra_pnginfo: { workflow } } });
      } catch (error) {
        const lines = showNodeErrors(this.graph, error.body?.node_errors);
        this.showMessage([error.message, ...lines].join("\n"), { level: "error" });
        throw error;
      }
      const dropped = showNodeErrors(this.graph, answer.node_errors);
      if (dropped.length) this.showMessage(`Some outputs were left out:\n${dropped.join("\n")}`, { level: "warning" });
      answers.push(answer);
      this.events.dispatchEvent(new CustomEvent("prompt-queued", { detail: { promptId: answer.prompt_id, number: answer.number, prompt } }));
      if (applyControls(this.graph)) this.graphChanged();
    }
    return answers;
  }

  /** Adds an entry to the top menu (`group`: the drop-down it goes in); returns its button. */
  addMenuItem({ label, action, group }) {
    return this.addMenuEntry({ label, action, group });
  }

  /**
   * Shows inputs whose type is `type` as the widget `factory(node, inputName, inputData, app)`
   * returns (a litegraph widget, or `{widget}`). Register before the nodes are created.
   */
  registerWidget(type, factory) {
    registerWidget(type, factory);
  }

  /** A passing message; `level`: info, success, warning or error. */
  showMessage(text, { level = "info" } = {}) {
    return toast(this.toasts, text, { level });
  }

  /**
   * Model files a UI workflow names that are not installed: `[{node, input, name, folder}]` for
   * each loader input whose value is not among its current options.
   */
  missingModels(workflow) {
    const scratch = new LGraph();
    scratch.configure(structuredClone(workflow));
    const missing = [];
    for (const node of scratch.nodes) {
      const saved = (node.properties?.models ?? []).map((model) => [model.name, model.directory]);
      for (const widget of node.widgets ?? []) {
        const folder = Object.fromEntries(saved)[widget.value] ?? MODEL_INPUTS[widget.name];
        const options = widget.options?.values;
        if (widget.type !== "combo" || !folder || !Array.isArray(options) || options.includes(widget.value)) continue;
        missing.push({ node: node.id, input: widget.name, name: widget.value, folder });
      }
    }
    scratch.clear();
    return missing;
  }
}

/** The editor. */
export const app = new App();
