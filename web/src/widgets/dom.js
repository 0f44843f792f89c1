/**
 * Node widgets made of DOM elements (text areas, rendered notes) laid over the canvas: each frame
 * the canvas draws a widget, its element is moved and scaled onto the widget's place; elements
 * whose widget was not drawn (node off screen, collapsed or removed) are hidden.
 */

const MARGIN = 10;
/** Below this zoom the elements are hidden and a plain box is drawn instead. */
const MIN_SCALE = 0.5;

let canvas = null;
let layer = null;
const shown = new Set();

/** Puts DOM widgets of `graphCanvas` into `element` (an overlay exactly covering the canvas). */
export function initDomWidgets(graphCanvas, element) {
  canvas = graphCanvas;
  layer = element;
  const previous = canvas.onDrawOverlay;
  canvas.onDrawOverlay = (ctx) => {
    previous?.call(canvas, ctx);
    for (const widget of shown) {
      if (widget.drawnInFrame !== canvas.frame) {
        widget.element.hidden = true;
        shown.delete(widget);
      }
    }
  };
}

function place(widget, node, width, y, height) {
  const { scale, offset } = canvas.ds;
  const { element } = widget;
  widget.drawnInFrame = canvas.frame;
  element.dataset.node = String(node.id);
  if (scale < MIN_SCALE) {
    element.hidden = true;
    shown.delete(widget);
    return false;
  }
  const left = (node.pos[0] + MARGIN + offset[0]) * scale;
  const top = (node.pos[1] + y + offset[1]) * scale;
  Object.assign(element.style, {
    transform: `translate(${left}px, ${top}px) scale(${scale})`,
    width: `${Math.max(0, width - 2 * MARGIN)}px`,
    height: `${Math.max(0, height)}px`,
  });
  element.hidden = false;
  element.classList.toggle("disabled", Boolean(widget.computedDisabled));
  shown.add(widget);
  return true;
}

/**
 * Adds a widget shown as `element`. `getValue`/`setValue` back its serialised value; it takes
 * at least `minHeight` graph units and grows with the node.
 */
export function addDomWidget(node, name, element, { getValue, setValue, minHeight = 60 }) {
  element.classList.add("dom-widget");
  element.dataset.widget = name;
  element.hidden = true;
  layer.append(element);
  const widget = {
    type: "dom",
    name,
    element,
    options: {},
    y: 0,
    get value() {
      return getValue();
    },
    set value(value) {
      setValue(value);
    },
    computeLayoutSize: () => ({ minHeight, minWidth: 120 }),
    draw(ctx, owner, width, y) {
      const height = (widget.computedHeight ?? minHeight) - 4;
      if (!place(widget, owner, width, y, height)) {
        ctx.fillStyle = "#2a2a2a";
        ctx.fillRect(MARGIN, y, width - 2 * MARGIN, height);
      }
    },
    onRemove() {
      shown.delete(widget);
      element.remove();
    },
  };
  return node.addCustomWidget(widget);
}
