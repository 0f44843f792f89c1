/**
 * Plugin scripts and the API they use: every script `GET /extensions` lists is imported as an ES
 * module once the editor is ready; scripts reach the editor through `window.sdflow` (described in
 * web/EXTENSIONS.md). A failing script or hook is reported and never stops the editor.
 */

import { LiteGraph } from "/lib/litegraph/litegraph.es.js";
import { readOrReport } from "./read.js";

/** Runs `extension[hook](...args)`, reporting a throw or a rejected promise instead of passing it on. */
function callHook(app, extension, hook, ...args) {
  const fail = (error) => app.showMessage(`Extension ${extension.name} failed in ${hook}: ${error?.message ?? error}`, { level: "error" });
  try {
    return Promise.resolve(extension[hook]?.(...args)).catch(fail);
  } catch (error) {
    fail(error);
    return Promise.resolve();
  }
}

/** The `window.sdflow` object: registers extensions and forwards to the editor. */
function createExtensionApi(app) {
  const extensions = [];

  // Only node types the server describes have a definition; editor-only ones (notes, reroutes) do not.
  const defineType = (extension, type, nodeType) => {
    const nodeData = nodeType.nodeData ?? app.objectInfo[type];
    if (nodeData) callHook(app, extension, "beforeRegisterNodeDef", nodeType, nodeData, app);
  };

  // Node types registered later (a refreshed node list) and every node the editor's graph gets
  // from now on (loaded, added, pasted, or rebuilt by undo), before a loaded node is configured.
  const typeRegistered = LiteGraph.onNodeTypeRegistered;
  LiteGraph.onNodeTypeRegistered = (type, nodeType) => {
    typeRegistered?.call(LiteGraph, type, nodeType);
    for (const extension of extensions) defineType(extension, type, nodeType);
  };
  const nodeAdded = app.graph.onNodeAdded;
  app.graph.onNodeAdded = (node) => {
    nodeAdded?.call(app.graph, node);
    for (const extension of extensions) callHook(app, extension, "nodeCreated", node, app);
  };

  return {
    app,
    /**
     * Adds an extension `{name, beforeRegisterNodeDef?, nodeCreated?, setup?}`. Its hooks run at
     * once for the node types and nodes that already exist, in that order, then `setup(app)`.
     */
    registerExtension(extension) {
      if (typeof extension?.name !== "string" || !extension.name) throw new TypeError("an extension needs a name");
      if (extensions.some((known) => known.name === extension.name)) throw new Error(`extension ${extension.name} is registered already`);
      extensions.push(extension);
      for (const [type, nodeType] of Object.entries(LiteGraph.registered_node_types)) defineType(extension, type, nodeType);
      for (const node of app.graph.nodes) callHook(app, extension, "nodeCreated", node, app);
      return callHook(app, extension, "setup", app);
    },
    /** The names of the registered extensions. */
    get extensions() {
      return extensions.map((extension) => extension.name);
    },
    /** `app.registerWidget(type, factory)`: widgets for an input type. */
    registerWidget: (type, factory) => app.registerWidget(type, factory),
    /** `app.addMenuItem({label, action, group})`. */
    addMenuItem: (item) => app.addMenuItem(item),
    /** Calls `listener(detail, event)` on every `type` event of the editor; returns a function that stops it. */
    on(type, listener) {
      const handler = (event) => {
        try {
          listener(event.detail, event);
        } catch (error) {
          app.showMessage(`A listener for ${type} failed: ${error.message}`, { level: "error" });
        }
      };
      app.events.addEventListener(type, handler);
      return () => app.events.removeEventListener(type, handler);
    },
  };
}

/**
 * Publishes `window.sdflow` and imports every plugin script; resolves when all have loaded or
 * failed (each failure is shown with the script's address).
 */
export async function install(app) {
  window.sdflow = createExtensionApi(app);
  const urls = (await readOrReport(app, "/extensions", "the list of plugin scripts")) ?? [];
  const results = await Promise.allSettled(urls.map((url) => import(app.api.withToken(url))));
  results.forEach((result, i) => {
    if (result.status === "rejected") app.showMessage(`Plugin script ${urls[i]} failed to load: ${result.reason?.message ?? result.reason}`, { level: "error" });
  });
}
