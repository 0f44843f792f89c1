/** Workflow files: the Workflow menu's Load/Save/Export, drag & drop, templates, missing-model warnings. */

import { install as installDrop } from "./drop.js";
import { install as installMissingModels } from "./missing-models.js";
import { install as installPreserve } from "./preserve.js";
import { install as installTemplates } from "./templates.js";
import { install as installWorkflowFiles } from "./workflow-files.js";

/** Installs every file feature; resolves once the Templates menu is filled. */
export function install(app) {
  installPreserve(app);
  installMissingModels(app);
  installWorkflowFiles(app);
  installDrop(app);
  return installTemplates(app);
}
