/**
 * `control_after_generate`: the combo after a seed-like widget (fixed, increment, decrement,
 * randomize) that changes the value after each queued prompt, as ComfyUI's editor does. Its value
 * is saved in `widgets_values` right after the widget it controls (for COMBO targets, followed by
 * the `control_filter_list` text that limits which options are picked).
 */

const MODES = ["fixed", "increment", "decrement", "randomize"];
/** Random seeds stay within ±2^50, as in ComfyUI. */
const RANDOM_LIMIT = 1125899906842624;

/**
 * Adds the control widget (and, for a COMBO `target`, its filter text) right after `target`.
 * Returns the control widget; `control.target` is the widget it changes.
 */
export function addControlWidget(node, target, mode = "randomize") {
  const isCombo = target.type === "combo";
  const values = isCombo ? [...MODES, "increment-wrap"] : MODES;
  const control = node.addWidget("combo", "control_after_generate", mode, () => {}, { values });
  control.target = target;
  if (isCombo) control.filter = node.addWidget("text", "control_filter_list", "", () => {}, {});
  return control;
}

function nextNumber(widget, mode) {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, step2: step = 1 } = widget.options;
  const value = Number(widget.value);
  if (mode === "increment") return Math.min(max, value + step);
  if (mode === "decrement") return Math.max(min, value - step);
  const low = Math.max(-RANDOM_LIMIT, min);
  const high = Math.min(RANDOM_LIMIT, max);
  return Math.floor(Math.random() * ((high - low) / step + 1)) * step + low;
}

/** The options a `control_filter_list` keeps: `/regex/flags` or a case-insensitive substring. */
function filtered(options, filter) {
  if (!filter) return options;
  const regex = filter.match(/^\/(.*)\/([a-z]*)$/);
  let test = (option) => String(option).toLowerCase().includes(filter.toLowerCase());
  if (regex) {
    try {
      const pattern = new RegExp(regex[1], regex[2]);
      test = (option) => pattern.test(String(option));
    } catch {
      // an unfinished pattern filters as plain text
    }
  }
  const kept = options.filter(test);
  return kept.length ? kept : options;
}

function nextOption(widget, mode, filter) {
  const options = filtered(widget.options.values ?? [], filter);
  if (!options.length) return widget.value;
  if (mode === "randomize") return options[Math.floor(Math.random() * options.length)];
  const index = options.indexOf(widget.value);
  const delta = mode === "decrement" ? -1 : 1;
  if (mode === "increment-wrap") return options[(index + 1 + options.length) % options.length];
  return options[Math.min(options.length - 1, Math.max(0, index + delta))];
}

/**
 * Applies every control widget in `graph` once (after a prompt was queued). Widgets fed by a
 * link are left alone. Returns whether any value changed.
 */
export function applyControls(graph) {
  let changed = false;
  for (const node of graph.nodes) {
    for (const control of node.widgets ?? []) {
      const { target } = control;
      if (!target || control.value === "fixed" || node.getSlotFromWidget(target)?.link != null) continue;
      const next = target.type === "combo" ? nextOption(target, control.value, control.filter?.value) : nextNumber(target, control.value);
      if (next !== target.value) {
        target.value = next;
        target.callback?.(next);
        changed = true;
      }
    }
  }
  graph.setDirtyCanvas(true, false);
  return changed;
}
