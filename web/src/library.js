/**
 * Finding and adding nodes: the node library side panel (a search box with fuzzy matching over a
 * tree of categories; click or drag an entry onto the canvas) and the search box a double-click
 * on empty canvas opens, which adds the chosen node there. Dropping a dragged link on empty canvas
 * opens the same box, limited to nodes that fit the link, and connects the new node.
 */

import { LiteGraph } from "/lib/litegraph/litegraph.es.js";

const DRAG_TYPE = "application/x-sdflow-node";
const MAX_RESULTS = 40;

/** The addable node types: `{type, title, category, description, inputs, outputs}`. */
function nodeEntries() {
  return Object.entries(LiteGraph.registered_node_types)
    .filter(([, nodeClass]) => !nodeClass.nodeData?.deprecated)
    .map(([type, nodeClass]) => {
      const data = nodeClass.nodeData;
      const inputs = new Set(["required", "optional"].flatMap((s) => Object.values(data?.input?.[s] ?? {}).map(([t]) => (Array.isArray(t) ? "COMBO" : t))));
      return {
        type,
        title: nodeClass.title ?? type,
        category: nodeClass.category ?? "utils",
        description: data?.description ?? "",
        inputs,
        outputs: new Set((data?.output ?? []).map((t) => (Array.isArray(t) ? "COMBO" : t))),
      };
    })
    .sort((a, b) => a.title.localeCompare(b.title));
}

/**
 * How well `query` matches `text` (0: not at all): substrings beat scattered letters, and matches
 * at the start or at word starts beat the others.
 */
export function fuzzyScore(query, text) {
  const q = query.toLowerCase();
  const t = text.toLowerCase();
  if (!q) return 1;
  const at = t.indexOf(q);
  if (at >= 0) return 1000 + (at === 0 ? 300 : 0) + (/[\s_/()-]/.test(t[at - 1] ?? " ") ? 150 : 0) - at - (t.length - q.length) * 0.5;
  let score = 0;
  let from = 0;
  let previous = -2;
  for (const char of q) {
    const found = t.indexOf(char, from);
    if (found < 0) return 0;
    score += found === previous + 1 ? 6 : 1;
    if (found === 0 || /[\s_/()-]/.test(t[found - 1])) score += 4;
    previous = found;
    from = found + 1;
  }
  return score;
}

/** Entries matching every word of `query` (against title, type and category), best first. */
export function searchNodes(entries, query) {
  const words = query.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return entries;
  const scored = [];
  for (const entry of entries) {
    let total = 0;
    for (const word of words) {
      const score = Math.max(fuzzyScore(word, entry.title), 0.9 * fuzzyScore(word, entry.type), 0.4 * fuzzyScore(word, entry.category));
      if (!score) {
        total = 0;
        break;
      }
      total += score;
    }
    if (total) scored.push([total, entry]);
  }
  return scored.sort((a, b) => b[0] - a[0]).map(([, entry]) => entry);
}

/** Adds a node of `type` with its top-left corner at graph position `pos`; returns it. */
export function addNode(app, type, pos) {
  const node = LiteGraph.createNode(type);
  if (!node) return null;
  node.initNew?.();
  node.pos = [pos[0], pos[1]];
  app.graph.add(node);
  app.canvas.selectNode(node);
  app.graphChanged();
  return node;
}

function entryButton(entry, onChoose) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "library-node";
  button.textContent = entry.title;
  button.title = [entry.type, entry.description].filter(Boolean).join("\n");
  button.dataset.type = entry.type;
  button.draggable = true;
  button.onclick = () => onChoose(entry);
  button.ondragstart = (event) => event.dataTransfer.setData(DRAG_TYPE, entry.type);
  return button;
}

/** A `<details>` tree of the entries by their `a/b/c` categories. */
function categoryTree(entries, onChoose) {
  const root = document.createElement("div");
  const folders = new Map([["", root]]);
  const folder = (path) => {
    if (folders.has(path)) return folders.get(path);
    const cut = path.lastIndexOf("/");
    const details = document.createElement("details");
    details.className = "library-category";
    details.dataset.category = path;
    const summary = document.createElement("summary");
    summary.textContent = path.slice(cut + 1);
    details.append(summary);
    folder(cut < 0 ? "" : path.slice(0, cut)).append(details);
    folders.set(path, details);
    return details;
  };
  const byCategory = [...entries].sort((a, b) => a.category.localeCompare(b.category));
  for (const category of new Set(byCategory.map((e) => e.category))) folder(category);
  for (const entry of entries) folder(entry.category).append(entryButton(entry, onChoose));
  return root;
}

/** The graph position at the middle of the visible canvas. */
function canvasCentre(canvas) {
  const [x, y, width, height] = canvas.visible_area;
  return [x + width / 2 - 100, y + height / 2 - 50];
}

function installPanel(app, panel) {
  const search = Object.assign(document.createElement("input"), { type: "search", id: "library-search", placeholder: "Search nodes…" });
  const results = Object.assign(document.createElement("div"), { id: "library-results" });
  panel.append(search, results);
  const choose = (entry) => addNode(app, entry.type, canvasCentre(app.canvas));
  const render = () => {
    const entries = nodeEntries();
    const query = search.value.trim();
    if (!query) {
      results.replaceChildren(categoryTree(entries, choose));
      return;
    }
    const found = searchNodes(entries, query).slice(0, MAX_RESULTS);
    results.replaceChildren(...found.map((entry) => entryButton(entry, choose)));
    if (!found.length) results.textContent = "No node matches.";
  };
  search.addEventListener("input", render);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") results.querySelector(".library-node")?.click();
  });
  render();

  const area = app.canvas.canvas;
  area.addEventListener("dragover", (event) => {
    if (event.dataTransfer.types.includes(DRAG_TYPE)) event.preventDefault();
  });
  area.addEventListener("drop", (event) => {
    const type = event.dataTransfer.getData(DRAG_TYPE);
    if (!type) return;
    event.preventDefault();
    addNode(app, type, app.canvas.convertEventToCanvasOffset(event));
  });
}

/** Whether `entry` has a socket for a link of `type` on the side `side` ("input"/"output"). */
function fits(entry, side, type) {
  if (!type || type === "*") return true;
  const wanted = String(type).split(",");
  return [...entry[side === "input" ? "inputs" : "outputs"]].some((t) => t === "*" || wanted.some((w) => LiteGraph.isValidConnection(t, w)));
}

/**
 * The floating search box at a mouse event's position. `link` (optional) is the dragged link
 * `{node, slot, input|output}`; the new node is connected to it.
 */
function openSearchBox(app, event, link) {
  document.getElementById("node-search")?.remove();
  const pos = app.canvas.convertEventToCanvasOffset(event);
  const side = link?.output ? "input" : link?.input ? "output" : null;
  const linkType = (link?.output ?? link?.input)?.type;
  const candidates = nodeEntries().filter((entry) => !side || fits(entry, side, linkType));
  const box = Object.assign(document.createElement("div"), { id: "node-search" });
  box.style.left = `${event.clientX}px`;
  box.style.top = `${event.clientY}px`;
  const input = Object.assign(document.createElement("input"), { type: "search", placeholder: linkType && linkType !== "*" ? `Nodes taking ${linkType}…` : "Search nodes…" });
  const list = document.createElement("ol");
  box.append(input, list);
  let found = [];
  let active = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    box.remove();
  };
  const choose = (entry) => {
    close();
    const node = addNode(app, entry.type, pos);
    if (!node || !link) return;
    if (side === "input") link.node.connectByType(link.slot, node, linkType);
    else link.node.connectByTypeOutput(link.slot, node, linkType);
    app.graphChanged();
  };
  const render = () => {
    found = searchNodes(candidates, input.value).slice(0, 12);
    active = Math.min(active, Math.max(0, found.length - 1));
    list.replaceChildren(...found.map((entry, index) => {
      const item = document.createElement("li");
      item.className = index === active ? "active" : "";
      item.dataset.type = entry.type;
      item.innerHTML = "<span></span><small></small>";
      item.firstChild.textContent = entry.title;
      item.lastChild.textContent = entry.category;
      item.onmousedown = (e) => {
        e.preventDefault();
        choose(entry);
      };
      return item;
    }));
  };
  input.addEventListener("input", () => {
    active = 0;
    render();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      active = (active + (e.key === "ArrowDown" ? 1 : -1) + found.length) % Math.max(found.length, 1);
      render();
      e.preventDefault();
    } else if (e.key === "Enter" && found[active]) {
      choose(found[active]);
    } else if (e.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", close);
  document.body.append(box);
  render();
  input.focus();
}

/** Installs the library panel into `panel` and the canvas search box. */
export function installLibrary(app, panel) {
  installPanel(app, panel);
  app.canvas.allow_searchbox = false;
  LiteGraph.release_link_on_empty_shows_menu = false;
  app.canvas.canvas.addEventListener("litegraph:canvas", ({ detail }) => {
    if (detail.subType === "empty-double-click") openSearchBox(app, detail.originalEvent);
    if (detail.subType === "empty-release") openSearchBox(app, detail.originalEvent, detail.linkReleaseContext?.links?.[0]);
  });
}
