/** After every load, a warning naming each model file the workflow uses that is not installed. */

/** Warns on `workflow-loaded` about the workflow's missing models, with their files and folders. */
export function install(app) {
  app.events.addEventListener("workflow-loaded", ({ detail }) => {
    const missing = app.missingModels(detail.workflow);
    if (!missing.length) return;
    const lines = missing.map(({ node, input, name, folder }) => `${name} in models/${folder} (node ${node}, ${input})`);
    app.showMessage(`Missing models:\n${lines.join("\n")}`, { level: "warning" });
  });
}
