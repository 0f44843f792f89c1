"""Workflow files in the editor: loading and saving back unchanged, PNGs that carry workflows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from tests.browser import editor
from tests.browser.conftest import ARTIFACTS
from tests.conftest import COMFY_WORKFLOWS, REPO

SHARED = sorted(COMFY_WORKFLOWS.glob("*.json"))
EXAMPLES = sorted((REPO / "workflows").glob("*.json"))


def differences(expected, actual, path: str = "") -> list[str]:
    """Where two JSON values differ, as `path: expected != actual` lines. Numbers compare by value
    (JSON's `1.0` and `1` are the same number, as in JavaScript), booleans only with booleans."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}/{key}: missing" for key in expected if key not in actual]
        out += [f"{path}/{key}: added {actual[key]!r}"[:300] for key in actual if key not in expected]
        for key in expected:
            if key in actual:
                out += differences(expected[key], actual[key], f"{path}/{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [line for i, (a, b) in enumerate(zip(expected, actual)) for line in differences(a, b, f"{path}[{i}]")]
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{path}: {expected!r} != {actual!r}"[:300]]
    return []


def round_trip(page, paths: list[Path], shortcut: bool) -> dict[str, list[str]]:
    """Loads each file through the Load menu's file picker and saves it back (Ctrl+S or the Save
    menu entry); returns the differences per file that did not come back equal."""
    failures = {}
    for path in paths:
        editor.load_file(page, path)
        assert page.evaluate("window.app.workflowName") == path.stem
        saved = editor.save_workflow(page, shortcut=shortcut)
        expected = json.loads(path.read_text())
        if differences(expected, saved):
            failures[path.name] = differences(expected, saved)[:10]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"round_trip_failed_{path.stem}.png"))
    return failures


def test_every_shared_workflow_loads_and_saves_back_unchanged(page) -> None:
    assert len(SHARED) >= 10
    assert round_trip(page, SHARED, shortcut=True) == {}


def test_every_example_workflow_loads_and_saves_back_unchanged(page) -> None:
    assert len(EXAMPLES) >= 15
    assert round_trip(page, EXAMPLES, shortcut=False) == {}


def test_a_dropped_workflow_json_opens(page) -> None:
    path = COMFY_WORKFLOWS / "lora.json"
    editor.drop_file(page, path.read_bytes(), path.name, "application/json")
    assert page.evaluate("window.app.workflowName") == "lora"
    assert editor.save_workflow(page) == json.loads(path.read_text())


@pytest.fixture(scope="module")
def sdflow_png(server) -> tuple[bytes, dict, dict]:
    """A PNG that sdflow saved for a small txt2img run: its bytes, its workflow and its prompt."""
    workflow = editor.small_txt2img()
    nodes = {node["type"]: node for node in workflow["nodes"]}
    nodes["SaveImage"]["widgets_values"] = ["png_drop"]
    nodes["KSampler"]["widgets_values"][0] = 1234
    workflow["nodes"][1]["widgets_values"] = ["a png that carries its workflow"]
    workflow["nodes"][1]["title"] = "Prompt from the PNG"
    entry = editor.run_on_server(server, workflow)
    (image,) = [image for output in entry["outputs"].values() for image in output.get("images", [])]
    data = (server.output / image["subfolder"] / image["filename"]).read_bytes()
    texts = Image.open(io.BytesIO(data)).text
    assert json.loads(texts["workflow"]) == workflow
    return data, workflow, json.loads(texts["prompt"])


def test_a_dropped_png_saved_by_sdflow_opens_its_workflow(page, sdflow_png) -> None:
    data, workflow, _ = sdflow_png
    editor.menu(page, "Templates", "model free demo")  # something else is open before the drop
    page.wait_for_function("window.app.workflowName === 'model_free_demo'")
    editor.drop_file(page, data, "png_drop_00001_.png", "image/png")
    shown = page.evaluate("window.app.serializeWorkflow()")
    by_id = lambda nodes: {n["id"]: (n["type"], n.get("title"), n["widgets_values"]) for n in nodes}
    assert by_id(shown["nodes"]) == by_id(workflow["nodes"])
    assert shown["links"] == workflow["links"]
    assert page.evaluate("window.app.workflowName") == "png_drop_00001_"
    assert editor.save_workflow(page) == workflow


def test_a_dropped_png_with_only_an_api_prompt_opens(page, sdflow_png) -> None:
    data, _, prompt = sdflow_png
    image = Image.open(io.BytesIO(data))
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    assert set(Image.open(io.BytesIO(buffer.getvalue())).text) == {"prompt"}
    editor.drop_file(page, buffer.getvalue(), "api_only.png", "image/png")

    nodes = {str(node_id): editor.node_info(page, node_id) for node_id in editor.node_ids(page)}
    assert {node_id: node["type"] for node_id, node in nodes.items()} == {node_id: node["class_type"] for node_id, node in prompt.items()}
    for node_id, node in prompt.items():
        shown = nodes[node_id]
        for name, value in node["inputs"].items():
            if isinstance(value, list):  # a link: [source node, output slot]
                (slot,) = [slot for slot in shown["inputs"] if slot["name"] == name]
                assert page.evaluate("(id) => { const l = window.app.graph.links.get(id); return [String(l.origin_id), l.origin_slot]; }", slot["link"]) == value
            else:
                assert shown["widgets"][name] == value, (node_id, name)
    assert page.evaluate("window.app.graphToPrompt()")["prompt"] == prompt


def test_a_workflow_without_a_saved_view_opens_with_every_node_in_view(page, tmp_path) -> None:
    """Without `extra.ds` the editor fits the view to the nodes as soon as it has loaded them
    (before the canvas has drawn them once)."""
    workflow = json.loads((REPO / "workflows" / "txt2img.json").read_text())
    del workflow["extra"]
    path = tmp_path / "no_view.json"
    path.write_text(json.dumps(workflow))
    editor.load_file(page, path)
    outside = page.evaluate(
        """() => {
            const {ds, canvas} = window.app.canvas;
            const [x, y, w, h] = [-ds.offset[0], -ds.offset[1], canvas.clientWidth / ds.scale, canvas.clientHeight / ds.scale];
            return window.app.graph.nodes.filter((n) => n.pos[0] < x || n.pos[1] - 30 < y || n.pos[0] + n.size[0] > x + w || n.pos[1] + n.size[1] > y + h)
                .map((n) => [n.id, [...n.pos], [...n.size]]);
        }"""
    )
    view = page.evaluate("[window.app.canvas.ds.scale, ...window.app.canvas.ds.offset]")
    assert outside == [], f"nodes out of view {view}"
