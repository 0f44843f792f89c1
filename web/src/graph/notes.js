/**
 * Note and MarkdownNote: editor-only nodes holding text (their `widgets_values` is `[text]`); the
 * converter skips them. A MarkdownNote shows its text rendered and is edited on double-click.
 */

import { registerType } from "./node-types.js";
import { WorkflowNode } from "./workflow-node.js";
import { addDomWidget } from "../widgets/dom.js";
import { addTextAreaWidget } from "../widgets/text.js";

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** Inline markup of one escaped line: code, bold, italics, http(s) links, `<br>`. */
function inline(text) {
  return text
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*]+)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>')
    .replace(/&lt;br\s*\/?&gt;/g, "<br>");
}

/** HTML of a small Markdown subset (headings, lists, fenced code, paragraphs); input is escaped first. */
export function renderMarkdown(source) {
  const html = [];
  let list = false;
  let code = null;
  const closeList = () => {
    if (list) html.push("</ul>");
    list = false;
  };
  for (const raw of escapeHtml(source ?? "").split("\n")) {
    if (raw.startsWith("```")) {
      if (code === null) {
        closeList();
        code = [];
      } else {
        html.push(`<pre><code>${code.join("\n")}</code></pre>`);
        code = null;
      }
      continue;
    }
    if (code !== null) {
      code.push(raw);
      continue;
    }
    const heading = raw.match(/^(#{1,6})\s+(.*)$/);
    const item = raw.match(/^\s*[-*]\s+(.*)$/);
    if (item) {
      if (!list) html.push("<ul>");
      list = true;
      html.push(`<li>${inline(item[1])}</li>`);
      continue;
    }
    closeList();
    if (heading) html.push(`<h${heading[1].length}>${inline(heading[2])}</h${heading[1].length}>`);
    else if (raw.trim()) html.push(`<p>${inline(raw)}</p>`);
  }
  closeList();
  if (code !== null) html.push(`<pre><code>${code.join("\n")}</code></pre>`);
  return html.join("");
}

/** A Markdown note: rendered text, a text area while editing (double-click; leaving it renders again). */
function addMarkdownWidget(node) {
  const view = document.createElement("div");
  view.className = "markdown-widget";
  const editor = document.createElement("textarea");
  editor.className = "text-widget";
  editor.hidden = true;
  const box = document.createElement("div");
  box.append(view, editor);
  let before = "";
  const show = () => {
    view.innerHTML = renderMarkdown(editor.value) || "<p class=\"placeholder\">Double-click to write Markdown</p>";
    view.hidden = false;
    editor.hidden = true;
  };
  const widget = addDomWidget(node, "text", box, {
    getValue: () => editor.value,
    setValue: (text) => {
      editor.value = text ?? "";
      show();
    },
    minHeight: 40,
  });
  view.addEventListener("dblclick", () => {
    before = editor.value;
    view.hidden = true;
    editor.hidden = false;
    editor.focus();
  });
  editor.addEventListener("blur", () => {
    show();
    if (editor.value !== before) node.onWidgetChanged?.("text", editor.value, before, widget);
  });
  show();
}

class NoteNode extends WorkflowNode {
  static title = "Note";

  constructor(title) {
    super(title ?? new.target.title);
    this.isVirtualNode = true;
    this.serialize_widgets = true;
    this.addTextWidget();
    this.size = [400, 160];
  }

  addTextWidget() {
    addTextAreaWidget(this, "text", "", { placeholder: "Note" });
  }

  /** Defaults of a note placed by the user (loaded notes keep what their workflow says). */
  initNew() {
    this.color = "#432";
    this.bgcolor = "#653";
  }

  onRemoved() {
    for (const widget of this.widgets ?? []) widget.onRemove?.();
  }
}

class MarkdownNoteNode extends NoteNode {
  static title = "Markdown Note";

  addTextWidget() {
    addMarkdownWidget(this);
  }

  initNew() {}
}

/** Registers the Note and MarkdownNote node types. */
export function registerNotes() {
  registerType("Note", NoteNode, "utils");
  registerType("MarkdownNote", MarkdownNoteNode, "utils");
}
