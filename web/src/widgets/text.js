/** STRING widgets: a text area over the canvas for multiline inputs, a one-line text widget otherwise. */

import { addDomWidget } from "./dom.js";

/** Adds a multiline text area for input `name`; edits notify `node.onWidgetChanged`. */
export function addTextAreaWidget(node, name, value = "", { placeholder = name, minHeight = 60 } = {}) {
  const area = document.createElement("textarea");
  area.className = "text-widget";
  area.spellcheck = false;
  area.placeholder = placeholder;
  area.value = value ?? "";
  let before = area.value;
  const widget = addDomWidget(node, name, area, {
    getValue: () => area.value,
    setValue: (text) => {
      area.value = text ?? "";
      before = area.value;
    },
    minHeight,
  });
  area.addEventListener("input", () => widget.callback?.(area.value));
  area.addEventListener("change", () => {
    node.onWidgetChanged?.(name, area.value, before, widget);
    before = area.value;
  });
  return widget;
}

/** Adds a STRING widget for input `name` of `node` (`spec`: its `/object_info` options). */
export function addStringWidget(node, name, spec = {}) {
  const value = spec.default ?? "";
  if (spec.multiline) return addTextAreaWidget(node, name, value, { placeholder: spec.placeholder ?? name });
  return node.addWidget("text", name, value, () => {}, {});
}
