"""UI workflow → API prompt conversion, checked against what ComfyUI's frontend sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.spec import NodeSpec
from engine.workflow.api import ApiPrompt
from engine.workflow.convert import ConversionError, convert_workflow, widget_values
from engine.workflow.ui import UiNode, is_ui_workflow
from tests.conftest import COMFY_WORKFLOWS, REPO

DATA = REPO / "tests" / "data"


@pytest.fixture
def specs(runtime) -> dict[str, NodeSpec]:
    """Built-in specs plus the SD node specs supplied as data (not registered yet)."""
    sd = json.loads((DATA / "comfyui_sd_object_info.json").read_text())
    return {**runtime.registry.specs(runtime.folders), **{k: NodeSpec.from_object_info(k, v) for k, v in sd.items()}}


def load(name: str) -> dict:
    return json.loads((COMFY_WORKFLOWS / name).read_text())


@pytest.mark.parametrize("name", ["default.json", "lora.json", "sdxl_simple_example.json"])
def test_matches_the_frontends_api_prompt(name: str, specs) -> None:
    expected = json.loads((DATA / "api" / name).read_text())
    assert convert_workflow(load(name), specs).to_json() == expected


@pytest.mark.parametrize("path", sorted(COMFY_WORKFLOWS.glob("*.json")), ids=lambda p: p.name)
def test_every_shared_workflow_converts_and_validates_structurally(path: Path, specs) -> None:
    workflow = json.loads(path.read_text())
    assert is_ui_workflow(workflow)
    prompt = convert_workflow(workflow, specs)
    emitted = {n["id"] for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote", "PrimitiveNode", "Reroute") and n.get("mode", 0) == 0}
    assert set(prompt.nodes) == {str(i) for i in emitted}
    for node_id, node in prompt.nodes.items():
        spec = specs[node.class_type]
        for inp in spec.inputs:
            if inp.section == "required":
                assert inp.name in node.inputs, f"{path.name}: node {node_id} lacks {inp.name}"
        for link in node.links().values():
            assert link.node_id in prompt.nodes
            assert 0 <= link.slot < len(specs[prompt.nodes[link.node_id].class_type].outputs)


def test_api_prompt_round_trips_titles_and_list_literals() -> None:
    raw = {"1": {"class_type": "X", "inputs": {"a": ["2", 0], "b": {"__value__": [1, 2]}, "c": 3}, "_meta": {"title": "My node"}}}
    prompt = ApiPrompt.model_validate(raw)
    assert prompt.nodes["1"].title == "My node"
    assert prompt.to_json() == raw


SEEDED = NodeSpec.from_object_info("Seeded", {
    "input": {
        "required": {"seed": ["INT", {"default": 0, "control_after_generate": True}], "mode": [["a", "b"]]},
        "optional": {"scale": ["FLOAT", {"default": 1.5}]},
    },
    "output": ["INT"], "display_name": "Seeded",
})
UPLOADER = NodeSpec.from_object_info("Uploader", {
    "input": {"required": {"image": [["x.png"], {"image_upload": True}], "channel": [["red", "alpha"]]},
              "optional": {"feather": ["INT", {"default": 0}]}},
    "output": ["MASK"], "display_name": "Uploader",
})


@pytest.mark.parametrize(
    ("spec", "values", "expected"),
    [
        (SEEDED, [7, "randomize", "b", 2.0], {"seed": 7, "mode": "b", "scale": 2.0}),
        # an older workflow saved before the control widget existed
        (SEEDED, [7, "b", 2.0], {"seed": 7, "mode": "b", "scale": 2.0}),
        # missing trailing values take the editor's defaults
        (SEEDED, [7, "fixed"], {"seed": 7, "mode": "a", "scale": 1.5}),
        (UPLOADER, ["m.png", "alpha", "image", 6], {"image": "m.png", "channel": "alpha", "feather": 6}),
        (SEEDED, {"seed": 3, "mode": "a", "control_after_generate": "fixed"}, {"seed": 3, "mode": "a", "scale": 1.5}),
    ],
)
def test_widget_values_skip_frontend_only_widgets(spec, values, expected) -> None:
    node = UiNode(id=1, type=spec.class_type, widgets_values=values)
    result = widget_values(node, spec)
    assert {k: result[k] for k in expected} == expected


def test_unknown_node_types_are_named(specs) -> None:
    workflow = {"nodes": [{"id": 1, "type": "NoSuchNode"}, {"id": 2, "type": "NoSuchNode"}], "links": []}
    with pytest.raises(ConversionError, match=r"NoSuchNode \(node 1, 2\)"):
        convert_workflow(workflow, specs)


def _node(id, type, inputs=(), outputs=(), widgets=None, mode=0, **extra):
    return {"id": id, "type": type, "mode": mode, "order": id, "inputs": list(inputs), "outputs": list(outputs),
            "widgets_values": widgets if widgets is not None else [], **extra}


def _in(name, type, link=None, widget=False):
    slot = {"name": name, "type": type, "link": link}
    if widget:
        slot["widget"] = {"name": name}
    return slot


SUBGRAPH_ID = "0c0f2d3a-3e84-4b1a-9f0b-6a8b9e3c1d20"


def v1_workflow_with_subgraph() -> dict:
    """A schema-1 workflow: EmptyImage → [subgraph: Reroute → ImageScaleBy(factor from input)] → muted ImageInvert → SaveImage.

    The subgraph's `scale_by` input is promoted to a widget on the instance (value 3.0); a second
    instance gets its image through a bypassed ImageInvert.
    """
    inner = {
        "id": SUBGRAPH_ID, "name": "Scale", "version": 1, "revision": 0,
        "state": {"lastNodeId": 3, "lastLinkId": 3, "lastGroupId": 0, "lastRerouteId": 0},
        "inputNode": {"id": -10, "bounding": [0, 0, 10, 10]}, "outputNode": {"id": -20, "bounding": [0, 0, 10, 10]},
        "inputs": [{"id": "a1", "name": "image", "type": "IMAGE", "linkIds": [1]},
                   {"id": "a2", "name": "scale_by", "type": "FLOAT", "linkIds": [2]}],
        "outputs": [{"id": "b1", "name": "IMAGE", "type": "IMAGE", "linkIds": [3]}],
        "nodes": [
            _node(1, "Reroute", inputs=[_in("", "*", 1)], outputs=[{"name": "", "type": "IMAGE", "links": [4]}]),
            _node(2, "ImageScaleBy", inputs=[_in("image", "IMAGE", 4), _in("scale_by", "FLOAT", 2, widget=True)],
                  outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [3]}], widgets=["bilinear", 1.0]),
        ],
        "links": [
            {"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "IMAGE"},
            {"id": 4, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "IMAGE"},
            {"id": 2, "origin_id": -10, "origin_slot": 1, "target_id": 2, "target_slot": 1, "type": "FLOAT"},
            {"id": 3, "origin_id": 2, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
        ],
    }
    nodes = [
        _node(1, "EmptyImage", outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [10, 13]}], widgets=[8, 8, 1, 0]),
        _node(2, SUBGRAPH_ID, inputs=[_in("image", "IMAGE", 10), _in("scale_by", "FLOAT", None, widget=True)],
              outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [11]}], widgets=[3.0]),
        _node(3, "ImageInvert", inputs=[_in("image", "IMAGE", 11)], outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [12]}], mode=2),
        _node(4, "SaveImage", inputs=[_in("images", "IMAGE", 12)], widgets=["muted_input"]),
        _node(5, "ImageInvert", inputs=[_in("image", "IMAGE", 13)], outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [14]}], mode=4),
        _node(6, SUBGRAPH_ID, inputs=[_in("image", "IMAGE", 14), _in("scale_by", "FLOAT", None, widget=True)],
              outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [15]}], widgets=[0.5], title="Half"),
        _node(7, "SaveImage", inputs=[_in("images", "IMAGE", 15)], widgets=["half"], title="Keep half"),
    ]
    links = [
        {"id": 10, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "IMAGE"},
        {"id": 11, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
        {"id": 12, "origin_id": 3, "origin_slot": 0, "target_id": 4, "target_slot": 0, "type": "IMAGE"},
        {"id": 13, "origin_id": 1, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "IMAGE"},
        {"id": 14, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0, "type": "IMAGE"},
        {"id": 15, "origin_id": 6, "origin_slot": 0, "target_id": 7, "target_slot": 0, "type": "IMAGE"},
    ]
    return {"version": 1, "state": {"lastNodeId": 7, "lastLinkId": 15, "lastGroupId": 0, "lastRerouteId": 0},
            "nodes": nodes, "links": links, "definitions": {"subgraphs": [inner]}}


def test_v1_subgraphs_are_flattened_with_path_ids(specs) -> None:
    prompt = convert_workflow(v1_workflow_with_subgraph(), specs).to_json()
    assert prompt == {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}, "_meta": {"title": "Empty Image"}},
        "2:2": {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "bilinear", "scale_by": 3.0, "image": ["1", 0]},
                "_meta": {"title": "Upscale Image By"}},
        # the muted ImageInvert drops SaveImage's only input (validation reports it as missing)
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "muted_input"}, "_meta": {"title": "Save Image"}},
        # the bypassed ImageInvert passes EmptyImage's image through to the second instance
        "6:2": {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "bilinear", "scale_by": 0.5, "image": ["1", 0]},
                "_meta": {"title": "Upscale Image By"}},
        "7": {"class_type": "SaveImage", "inputs": {"filename_prefix": "half", "images": ["6:2", 0]}, "_meta": {"title": "Keep half"}},
    }


def test_promoted_proxy_widgets_override_inner_values(specs) -> None:
    workflow = v1_workflow_with_subgraph()
    instance = workflow["nodes"][5]
    instance["properties"] = {"proxyWidgets": [["2", "upscale_method"], ["-1", "scale_by"]]}
    instance["widgets_values"] = ["area", 0.25]
    prompt = convert_workflow(workflow, specs).to_json()
    assert prompt["6:2"]["inputs"]["upscale_method"] == "area"
    assert prompt["6:2"]["inputs"]["scale_by"] == 0.25
