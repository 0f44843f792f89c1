/** The Templates menu: the example workflows the server offers (`GET /sdflow/workflows`). */

import { readOrReport } from "../read.js";

/** "hires_fix.json" → "hires fix". */
const label = (name) => name.replace(/\.json$/i, "").replaceAll("_", " ");

async function openTemplate(app, name) {
  try {
    await app.loadWorkflow(await app.api.get(`/sdflow/workflows/${encodeURIComponent(name)}`), { name });
  } catch (error) {
    app.showMessage(`Could not open the template ${name}: ${error.message}`, { level: "error" });
  }
}

/** Adds one Templates entry per UI-format example workflow (the API-format copies under `api/` are left out). */
export async function install(app) {
  const names = (await readOrReport(app, "/sdflow/workflows", "the list of example workflows")) ?? [];
  for (const name of names.filter((n) => !n.includes("/"))) {
    app.addMenuItem({ group: "Templates", label: label(name), action: () => openTemplate(app, name) });
  }
}
