/** INT and FLOAT widgets: min/max clamping, step, rounding and the number of decimals shown. */

import { NumberWidget } from "/lib/litegraph/litegraph.es.js";

/** Decimals needed to show `value` exactly (0.01 → 2), capped at 10. */
function decimalsOf(value) {
  if (!Number.isFinite(value) || Number.isInteger(value)) return 0;
  const text = String(value);
  const exponent = text.match(/e-(\d+)$/);
  if (exponent) return Math.min(10, Number(exponent[1]));
  return Math.min(10, text.split(".")[1]?.length ?? 0);
}

/** A number widget that rounds typed, dragged and stepped values before clamping them. */
class RoundedNumberWidget extends NumberWidget {
  setValue(value, options) {
    const { round } = this.options;
    let rounded = Number(value);
    if (round && Number.isFinite(rounded)) {
      rounded = Math.round(rounded / round) * round;
      rounded = Number(rounded.toFixed(decimalsOf(round)));
    }
    super.setValue(rounded, options);
  }
}

/**
 * The widget options of an INT or FLOAT input as the editor uses them: `step2` (the real step),
 * `round` (0 for none), `precision` (decimals shown), min and max.
 */
function numberOptions(type, spec = {}) {
  const isInt = type === "INT";
  const step = spec.step ?? (isInt ? 1 : 0.5);
  let round = isInt ? Math.max(1, Math.round(spec.round || 1)) : spec.round;
  let precision = spec.precision;
  if (!isInt) {
    precision ??= decimalsOf(typeof round === "number" && round > 0 ? round : step) || 2;
    if (round === undefined || round === true) round = 10 ** -precision;
    if (round === false) round = 0;
  } else {
    precision = 0;
  }
  return { min: spec.min, max: spec.max, step2: step, round, precision };
}

/** Adds an INT or FLOAT widget for input `name` of `node`; `spec` is its `/object_info` options. */
export function addNumberWidget(node, name, type, spec = {}) {
  const options = numberOptions(type, spec);
  const value = spec.default ?? options.min ?? 0;
  const widget = new RoundedNumberWidget({ type: "number", name, value, options, y: 0 }, node);
  return node.addCustomWidget(widget);
}
