/**
 * Keyboard shortcuts of the editor. Queue (Ctrl+Enter; Ctrl+Shift+Enter queues at the front) and
 * save (Ctrl+S) work everywhere; the others only while no text field has the focus: undo
 * (Ctrl+Z), redo (Ctrl+Y, Ctrl+Shift+Z), bypass (Ctrl+B) and mute (Ctrl+M) of the selected nodes,
 * group the selection (Ctrl+G), Delete/Backspace. Copy, paste and select-all are the canvas's own.
 */

import { groupSelection } from "./groups.js";
import { BYPASSED, MUTED, toggleMode } from "./modes.js";

/** Whether key presses on `target` type text (so they are not editor shortcuts). */
export function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/**
 * Installs the shortcuts; `actions` gives `queue(front)`, `save()`, `undo()`, `redo()` and
 * `changed()` (called after an edit made here).
 */
export function installShortcuts(canvas, actions) {
  const selected = () => Object.values(canvas.selected_nodes ?? {});
  const editing = {
    z: (event) => (event.shiftKey ? actions.redo() : actions.undo()),
    y: () => actions.redo(),
    b: () => toggleMode(selected(), BYPASSED) && actions.changed(),
    m: () => toggleMode(selected(), MUTED) && actions.changed(),
    g: () => groupSelection(canvas) && actions.changed(),
  };
  document.addEventListener("keydown", (event) => {
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    let handled = true;
    if (ctrl && key === "enter") actions.queue(event.shiftKey);
    else if (ctrl && key === "s") actions.save();
    else if (isTyping(event.target) || event.altKey) handled = false;
    else if (ctrl && editing[key]) editing[key](event);
    else if (!ctrl && (key === "delete" || key === "backspace") && canvas.selectedItems.size) {
      canvas.deleteSelected();
      actions.changed();
    } else handled = false;
    if (handled) event.preventDefault();
  });
}
