"""Driving the editor in the browser as a person does: the mouse on the canvas, the keyboard, the
menus. Positions on the canvas are computed from the graph's node objects (`window.app`) and turned
into page coordinates, so that the clicks and drags land where a person would put them.

Reading back what the editor shows goes through the handles web/README.md documents
(`node.errorMessages`, `node.imageUrls`, `#run-progress-bar`, ...).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import REPO

Page = Any  # playwright.sync_api.Page

#: litegraph's node title bar height (LiteGraph.NODE_TITLE_HEIGHT)
TITLE_HEIGHT = 30


# -- coordinates --------------------------------------------------------------------------------


def to_page(page: Page, point: list[float]) -> tuple[float, float]:
    """Graph coordinates → page (viewport) coordinates."""
    x, y = page.evaluate(
        """([x, y]) => {
            const canvas = window.app.canvas;
            const [cx, cy] = canvas.ds.convertOffsetToCanvas([x, y]);
            const box = canvas.canvas.getBoundingClientRect();
            return [box.left + cx, box.top + cy];
        }""",
        list(point),
    )
    return x, y


def node_ids(page: Page) -> list[int]:
    return page.evaluate("window.app.graph.nodes.map((n) => n.id)")


def node_info(page: Page, node_id: int) -> dict:
    """What the editor holds for one node: type, title, mode, widgets, messages, images, progress."""
    return page.evaluate(
        """(id) => {
            const node = window.app.graph.getNodeById(id);
            if (!node) return null;
            return {
                id: node.id, type: node.type, title: node.title, mode: node.mode, pos: [...node.pos], size: [...node.size],
                widgets: Object.fromEntries((node.widgets ?? []).map((w) => [w.name, w.value])),
                errors: node.errorMessages ?? [], warnings: node.warningMessages ?? [], has_errors: Boolean(node.has_errors),
                images: node.imageUrls ?? [], image_kind: node.imageKind ?? null,
                running: Boolean(node.running), progress: node.progress ?? null,
                inputs: node.inputs.map((i) => ({name: i.name, type: i.type, link: i.link, widget: i.widget?.name ?? null})),
                outputs: node.outputs.map((o) => ({name: o.name, type: o.type, links: o.links ?? []})),
            };
        }""",
        node_id,
    )


def nodes_of_type(page: Page, node_type: str) -> list[int]:
    return page.evaluate("(t) => window.app.graph.nodes.filter((n) => n.type === t).map((n) => n.id)", node_type)


def empty_spot(page: Page, size: tuple[float, float] = (260, 200)) -> tuple[float, float]:
    """A page point on the canvas where a node of `size` (graph units, title bar included) placed
    with its top-left corner there would be fully visible and overlap no node."""
    next_frame(page)  # node bounds are measured when drawn
    point = page.evaluate(
        """([w, h]) => {
            const {canvas, graph} = window.app;
            const box = canvas.canvas.getBoundingClientRect();
            const scale = canvas.ds.scale;
            const overlaps = (x, y) => graph.nodes.some((n) => {
                const b = n.boundingRect;
                return x < b[0] + b[2] + 20 && x + w + 20 > b[0] && y - 40 < b[1] + b[3] + 20 && y + h > b[1] - 20;
            });
            for (let py = box.top + 60; py + h * scale < box.bottom - 10; py += 30)
                for (let px = box.left + 20; px + w * scale < box.right - 10; px += 30) {
                    const [gx, gy] = canvas.ds.convertCanvasToOffset([px - box.left, py - box.top]);
                    if (!overlaps(gx, gy)) return [px, py];
                }
            return null;
        }""",
        list(size),
    )
    assert point, "no empty place left on the canvas"
    return point[0], point[1]


# -- adding and connecting nodes ----------------------------------------------------------------


def _new_node(page: Page, before: list[int]) -> int:
    page.wait_for_function("(n) => window.app.graph.nodes.length > n", arg=len(before))
    added = [i for i in node_ids(page) if i not in before]
    assert len(added) == 1, added
    return added[0]


def add_node_by_search(page: Page, query: str, node_type: str, at: tuple[float, float] | None = None) -> int:
    """Double-clicks empty canvas at page point `at`, types `query` into the search box, moves the
    highlight to `node_type` with the arrow keys and presses Enter; returns the new node's id."""
    before = node_ids(page)
    x, y = at or empty_spot(page)
    page.mouse.dblclick(x, y)
    box = page.locator("#node-search input")
    try:
        box.wait_for(state="visible", timeout=5000)
    except PlaywrightTimeout:
        raise AssertionError(f"double-click at {(x, y)} opened no search box: {_diagnose(page, (x, y))}") from None
    page.keyboard.type(query)
    items = page.locator("#node-search li[data-type]")
    items.first.wait_for()
    types = items.evaluate_all("(els) => els.map((e) => e.dataset.type)")
    assert node_type in types, f"{node_type} not offered for {query!r}: {types}"
    for _ in range(types.index(node_type)):
        page.keyboard.press("ArrowDown")
    assert page.locator("#node-search li.active").get_attribute("data-type") == node_type
    page.keyboard.press("Enter")
    node_id = _new_node(page, before)
    assert page.locator("#node-search").count() == 0
    return node_id


def add_node_from_library(page: Page, query: str, node_type: str) -> int:
    """Types `query` into the library panel's search and clicks the `node_type` entry."""
    before = node_ids(page)
    page.fill("#library-search", query)
    page.click(f'#library-results .library-node[data-type="{node_type}"]')
    return _new_node(page, before)


def move_node(page: Page, node_id: int, graph_pos: tuple[float, float]) -> None:
    """Drags the node by its title bar so that its top-left corner lands on `graph_pos`."""
    pos = page.evaluate("(id) => [...window.app.graph.getNodeById(id).pos]", node_id)
    grab = (60, -TITLE_HEIGHT / 2)
    drag(page, to_page(page, [pos[0] + grab[0], pos[1] + grab[1]]), to_page(page, [graph_pos[0] + grab[0], graph_pos[1] + grab[1]]))
    moved = page.evaluate("(id) => [...window.app.graph.getNodeById(id).pos]", node_id)
    assert abs(moved[0] - graph_pos[0]) < 2 and abs(moved[1] - graph_pos[1]) < 2, (moved, graph_pos)


def slot_point(page: Page, node_id: int, side: str, name: str) -> tuple[float, float]:
    """Page position of the input (`side="input"`) or output socket called `name` of a node."""
    next_frame(page)
    point = page.evaluate(
        """([id, side, name]) => {
            const node = window.app.graph.getNodeById(id);
            const slots = side === "input" ? node.inputs : node.outputs;
            const index = slots.findIndex((s) => s.name === name);
            if (index < 0) return null;
            return side === "input" ? node.getInputPos(index) : node.getOutputPos(index);
        }""",
        [node_id, side, name],
    )
    assert point, f"node {node_id} has no {side} {name}"
    return to_page(page, point)


def drag(page: Page, start: tuple[float, float], end: tuple[float, float], steps: int = 10) -> None:
    """Presses the mouse at page point `start`, moves it to `end` in `steps` moves and releases it."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def connect(page: Page, source: int, output: str, target: int, input_name: str) -> None:
    """Drags a link from output `output` of node `source` to input `input_name` of node `target`."""
    drag(page, slot_point(page, source, "output", output), slot_point(page, target, "input", input_name))
    linked = page.evaluate(
        """([source, target, name]) => {
            const node = window.app.graph.getNodeById(target);
            const input = node.inputs.find((i) => i.name === name);
            const link = input?.link != null ? window.app.graph.links.get(input.link) : null;
            return link ? link.origin_id === source : false;
        }""",
        [source, target, input_name],
    )
    assert linked, f"dragging {source}.{output} → {target}.{input_name} did not link them"


# -- widgets ------------------------------------------------------------------------------------


def next_frame(page: Page) -> None:
    """Waits until the canvas has drawn a frame with what changed (new nodes get their layout then)."""
    page.evaluate("""() => new Promise((resolve) => {
        window.app.canvas.setDirty(true, true);
        requestAnimationFrame(() => requestAnimationFrame(resolve));
    })""")


def widget_point(page: Page, node_id: int, name: str, where: str = "middle") -> tuple[float, float]:
    """Page position on a widget's row: its middle, or near its `left`/`right` arrow."""
    next_frame(page)
    point = page.evaluate(
        """([id, name, where]) => {
            const node = window.app.graph.getNodeById(id);
            const widget = node.widgets.find((w) => w.name === name);
            if (!widget || widget.y == null) return null;
            const height = widget.computedHeight ?? 20;
            const x = where === "left" ? 20 : where === "right" ? node.size[0] - 20 : node.size[0] / 2;
            return [node.pos[0] + x, node.pos[1] + widget.y + height / 2];
        }""",
        [node_id, name, where],
    )
    assert point, f"node {node_id} has no drawn widget {name}"
    return to_page(page, point)


def widget_value(page: Page, node_id: int, name: str) -> Any:
    return page.evaluate(
        "([id, name]) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === name).value", [node_id, name]
    )


def set_combo(page: Page, node_id: int, name: str, value: str) -> None:
    """Clicks the combo widget and picks `value` from the menu it opens."""
    page.mouse.click(*widget_point(page, node_id, name))
    page.locator(".litecontextmenu .litemenu-entry").first.wait_for()
    exact = page.locator(".litecontextmenu .litemenu-entry").evaluate_all(
        "(els, v) => els.findIndex((e) => e.textContent.trim() === v)", value
    )
    assert exact >= 0, f"{value!r} is not offered by {name}"
    page.locator(".litecontextmenu .litemenu-entry").nth(exact).click()
    assert widget_value(page, node_id, name) == value


def set_number(page: Page, node_id: int, name: str, value: float | str) -> None:
    """Clicks the middle of a number (or one-line text) widget and types `value` into the prompt it opens."""
    point = widget_point(page, node_id, name)
    page.mouse.click(*point)
    field = page.locator(".graphdialog input.value")
    try:
        field.wait_for(state="visible", timeout=5000)
    except PlaywrightTimeout:
        raise AssertionError(f"clicking {name} of node {node_id} at {point} opened no prompt: {_diagnose(page, point)}") from None
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_function(
        "([id, name, v]) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === name).value === v",
        arg=[node_id, name, value],
    )


def _diagnose(page: Page, point: tuple[float, float]) -> dict:
    """What is at a page point and around, for a failure message."""
    return page.evaluate(
        """([x, y]) => {
            const canvas = window.app.canvas;
            const box = canvas.canvas.getBoundingClientRect();
            const [gx, gy] = canvas.ds.convertCanvasToOffset([x - box.left, y - box.top]);
            const node = window.app.graph.getNodeOnPos(gx, gy);
            return {
                at: document.elementFromPoint(x, y)?.outerHTML.slice(0, 120),
                focus: document.activeElement?.outerHTML.slice(0, 120),
                dialogs: [...document.querySelectorAll(".graphdialog, .litecontextmenu, #node-search")].map((e) => e.outerHTML.slice(0, 120)),
                graph: [gx, gy], node: node ? [node.id, [...node.pos], [...node.size], node.widgets?.map((w) => [w.name, w.y])] : null,
                view: [canvas.ds.scale, ...canvas.ds.offset],
            };
        }""",
        list(point),
    )


def set_text(page: Page, node_id: int, name: str, text: str) -> None:
    """Types into a multiline text widget's text area (shown over the canvas while the node is drawn)."""
    area = page.locator(f'textarea[data-node="{node_id}"][data-widget="{name}"]')
    area.click()
    area.fill(text)
    area.press("Tab")  # commits the edit (`change`)
    assert widget_value(page, node_id, name) == text


# -- menus, queueing, waiting -------------------------------------------------------------------


def menu(page: Page, group: str, label: str) -> None:
    page.click(f'.menu-group[data-group="{group}"] .menu-title')
    page.click(f'.menu-group[data-group="{group}"] .menu-item[data-label="{label}"]')


def capture_events(page: Page) -> None:
    """Starts recording the editor's events in `window.__events` as `[type, detail, view]`, where
    `view` is what the editor shows right after handling the event: the overall bar's width, its
    label, the running nodes, each node's step progress and the kind of images it shows."""
    page.evaluate(
        """() => {
            window.__events = [];
            const view = () => ({
                bar: document.getElementById("run-progress-bar").style.width,
                label: document.getElementById("run-label").textContent,
                running: window.app.graph.nodes.filter((n) => n.running).map((n) => n.id),
                progress: Object.fromEntries(window.app.graph.nodes.filter((n) => n.progress != null).map((n) => [n.id, n.progress])),
                images: Object.fromEntries(window.app.graph.nodes.filter((n) => n.imageKind).map((n) => [n.id, n.imageKind])),
            });
            for (const type of ["execution_start", "executing", "progress", "preview", "executed", "execution_success", "execution_error",
                                "execution_interrupted", "execution_cached", "prompt-queued", "status"]) {
                // the editor's own listeners were added at start-up, so they have run when this one does
                window.app.events.addEventListener(type, ({detail}) => {
                    const copy = type === "preview" ? {node: detail.node, size: detail.blob.size} : detail;
                    window.__events.push([type, JSON.parse(JSON.stringify(copy ?? null)), view()]);
                });
            }
        }"""
    )


def events(page: Page, kind: str | None = None) -> list:
    recorded = page.evaluate("window.__events")
    return [e for e in recorded if kind is None or e[0] == kind]


def wait_for_event(page: Page, kind: str, timeout: float = 60_000, count: int = 1) -> list:
    """Waits until `count` events of type `kind` were recorded; returns them."""
    page.wait_for_function(
        "([kind, count]) => window.__events.filter((e) => e[0] === kind).length >= count", arg=[kind, count], timeout=timeout
    )
    return events(page, kind)


def load_file(page: Page, path: Path) -> None:
    """Opens a file through the Workflow menu's Load (the hidden file input) and waits until it is loaded."""
    page.evaluate(
        """() => { window.__loaded = null; window.app.events.addEventListener("workflow-loaded", ({detail}) => { window.__loaded = detail; }, {once: true}); }"""
    )
    with page.expect_file_chooser() as chooser:
        menu(page, "Workflow", "Load")
    chooser.value.set_files(str(path))
    page.wait_for_function("window.__loaded !== null")


def save_workflow(page: Page, shortcut: bool = True) -> dict:
    """Saves with Ctrl+S (or the Workflow menu's Save) and returns the downloaded JSON."""
    with page.expect_download() as download:
        if shortcut:
            page.locator("#graph-canvas").focus()
            page.keyboard.press("Control+s")
        else:
            menu(page, "Workflow", "Save")
    return json.loads(Path(download.value.path()).read_text())


def drop_file(page: Page, data: bytes, name: str, mime: str, at: tuple[float, float] | None = None) -> None:
    """Drops a file on the canvas as a drag & drop from the desktop does: dragenter, dragover and
    drop events carrying it in their DataTransfer, dispatched at page point `at` (Playwright cannot
    drag files from outside the page); waits until the editor has loaded what it opened."""
    x, y = at or empty_spot(page)
    page.evaluate(
        """async ([bytes, name, mime, x, y]) => {
            window.__loaded = null;
            window.app.events.addEventListener("workflow-loaded", ({detail}) => { window.__loaded = detail; }, {once: true});
            const file = new File([new Uint8Array(bytes)], name, {type: mime});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const target = document.elementFromPoint(x, y);
            const init = {bubbles: true, cancelable: true, composed: true, clientX: x, clientY: y, dataTransfer: transfer};
            target.dispatchEvent(new DragEvent("dragenter", init));
            target.dispatchEvent(new DragEvent("dragover", init));
            target.dispatchEvent(new DragEvent("drop", init));
        }""",
        [list(data), name, mime, x, y],
    )
    page.wait_for_function("window.__loaded !== null")


# -- the server's HTTP API (for what a test prepares or checks outside the editor) ---------------


def api(server: Any, path: str, body: Any = None) -> Any:
    """GET (or POST `body` as JSON to) `/api<path>` of the test server; the parsed answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}api{path}", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{path}: HTTP {error.code}: {error.read()[:2000]!r}") from None


def run_on_server(server: Any, workflow: dict, timeout: float = 60.0) -> dict:
    """Converts `workflow` with the server's converter, queues it with the workflow attached (as
    the editor does, so that saved PNGs carry it) and waits for its history entry."""
    prompt = api(server, "/sdflow/convert", {"workflow": workflow})["prompt"]
    answer = api(server, "/prompt", {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
    prompt_id = answer["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = api(server, f"/history/{prompt_id}").get(prompt_id)
        if entry and entry["status"]["completed"]:
            return entry
        assert not entry or entry["status"]["status_str"] != "error", entry
        time.sleep(0.1)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s")


def small_txt2img(size: int = 64, steps: int = 2) -> dict:
    """workflows/txt2img.json at `size`×`size` pixels and `steps` steps."""
    workflow = json.loads((REPO / "workflows" / "txt2img.json").read_text())
    nodes = {node["type"]: node for node in workflow["nodes"]}
    nodes["EmptyLatentImage"]["widgets_values"][:2] = [size, size]
    nodes["KSampler"]["widgets_values"][2] = steps
    return workflow
