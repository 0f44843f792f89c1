/**
 * Side panels: titled boxes in the editor's right-hand dock (`#sdflow-dock`), shown and hidden from the menu.
 * Also the small DOM builder the panels share.
 */

let stylesheetAdded = false;

function addStylesheet() {
  if (stylesheetAdded) return;
  stylesheetAdded = true;
  document.head.append(el("link", { rel: "stylesheet", href: new URL("./panels.css", import.meta.url).href }));
}

/**
 * Builds an element: `el("button", { className: "x", onclick }, "Text", child)`. Properties are set
 * on the element (so `textContent`, `dataset` values and handlers work); children are nodes or text.
 */
export function el(tag, properties = {}, ...children) {
  const element = document.createElement(tag);
  const { dataset, ...rest } = properties;
  Object.assign(element, rest);
  Object.assign(element.dataset, dataset ?? {});
  element.append(...children.filter((child) => child != null && child !== false));
  return element;
}

/**
 * A hidden panel with a title bar (`actions`: extra header buttons) and a body showing
 * `render(await load())` (`load` resolves to null when there is nothing to show). It reloads each
 * time it opens and on `refresh()` while open; an answer that a newer load overtook is dropped.
 * Returns `{ element, visible, toggle(show), refresh() }`.
 */
export function createPanel({ id, title, actions = [], load, render }) {
  addStylesheet();
  const body = el("div", { className: "sdflow-panel-body" });
  const close = el("button", { className: "sdflow-panel-close", title: "Close", textContent: "×" });
  const element = el(
    "section",
    { id, className: "sdflow-panel", hidden: true },
    el("header", {}, el("h2", { textContent: title }), ...actions, close),
    body,
  );
  document.getElementById("sdflow-dock").append(element);
  let loads = 0;
  const panel = {
    element,
    get visible() {
      return !element.hidden;
    },
    toggle(show = element.hidden) {
      element.hidden = !show;
      if (show) panel.refresh();
    },
    async refresh() {
      if (element.hidden) return;
      const ticket = ++loads;
      const data = await load();
      if (data !== null && ticket === loads) body.replaceChildren(render(data));
    },
  };
  close.onclick = () => panel.toggle(false);
  return panel;
}
