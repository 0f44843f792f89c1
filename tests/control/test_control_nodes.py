"""The ControlNet nodes: ComfyUI's inputs and outputs, and how applying them builds the control chain."""

from __future__ import annotations

import json

import torch

from diffusion.control import APPLY_TO_UNCOND, Control, lend_to_uncond
from tests.capture import run_captured
from tests.conftest import REPO
from tests.control.conftest import HINT

NODES = ("ControlNetLoader", "ControlNetApplyAdvanced")


def without_tooltips(value):
    if isinstance(value, dict):
        return {k: without_tooltips(v) for k, v in value.items() if k != "tooltip"}
    if isinstance(value, list):
        return [v for v in map(without_tooltips, value) if v != {}]
    return value


def test_object_info_is_comfyuis(runtime) -> None:
    comfy = json.loads((REPO / "tests" / "data" / "comfyui_sd_object_info.json").read_text())
    info = runtime.registry.object_info(runtime.folders)
    assert "cn-sd15.safetensors" in info["ControlNetLoader"]["input"]["required"]["control_net_name"][0]
    assert info["ControlNetApplyAdvanced"]["input"]["optional"]["vae"][1]["tooltip"].startswith("Not used")
    for name in NODES:
        ours, expected = ({k: v for k, v in entry[name].items() if k not in ("description", "python_module")} for entry in (info, comfy))
        expected["input"]["required"].pop("control_net_name", None)
        ours["input"]["required"].pop("control_net_name", None)  # the files differ (checked above)
        assert without_tooltips(ours) == expected


def apply_prompt(strength: float = 0.8) -> dict:
    encode = {"class_type": "CLIPTextEncode", "inputs": {"text": "a house", "clip": ["1", 1]}}
    apply = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0], "image": ["5", 0],
        "strength": strength, "start_percent": 0.25, "end_percent": 0.75}}
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": encode, "3": json.loads(json.dumps(encode)),
        "4": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "cn-sd15.safetensors"}},
        "5": {"class_type": "LoadImage", "inputs": {"image": HINT}},
        "6": apply,
        "7": {**json.loads(json.dumps(apply)), "inputs": {**apply["inputs"], "positive": ["6", 0], "negative": ["6", 1], "strength": 0.3}},
        "8": {"class_type": "ControlNetApply", "inputs": {"conditioning": ["2", 0], "control_net": ["4", 0], "image": ["5", 0], "strength": strength}},
        "10": {"class_type": "Capture", "inputs": {"value": ["6", 0]}},
        "11": {"class_type": "Capture", "inputs": {"value": ["6", 1]}},
        "12": {"class_type": "Capture", "inputs": {"value": ["7", 0]}},
        "13": {"class_type": "Capture", "inputs": {"value": ["7", 1]}},
        "14": {"class_type": "Capture", "inputs": {"value": ["8", 0]}},
        "15": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
    }


def test_applying_chains_controls_shared_by_both_sides(runtime) -> None:
    captured = run_captured(runtime, apply_prompt())
    (_, positive), (_, negative) = captured["10"][0], captured["11"][0]
    first = positive["control"]
    assert isinstance(first, Control) and negative["control"] is first and first.previous is None
    assert (first.strength, first.start_percent, first.end_percent) == (0.8, 0.25, 0.75)
    assert first.hint.shape == (1, 3, 64, 64) and positive[APPLY_TO_UNCOND] is False
    second = captured["12"][0][1]["control"]
    assert captured["13"][0][1]["control"] is second and second.previous is first and second.strength == 0.3
    old = captured["14"][0][1]
    assert old["control"].previous is None and old[APPLY_TO_UNCOND] is True
    assert "control" not in captured["15"][0][1]  # inputs are left unchanged


def test_strength_zero_returns_the_inputs(runtime) -> None:
    captured = run_captured(runtime, apply_prompt(strength=0.0))
    assert captured["10"] is captured["15"] and captured["14"] is captured["15"]


def test_old_apply_lends_its_control_to_a_negative_side_without_one() -> None:
    cond = torch.zeros(1, 77, 8)
    control, own = object(), object()
    positive = [[cond, {"control": control, APPLY_TO_UNCOND: True}]]
    negative = [[cond, {}], [cond, {"area": (8, 8, 0, 0)}]]
    lent = lend_to_uncond(positive, negative)
    assert lent[0][1]["control"] is control and "control" not in lent[1][1] and "control" not in negative[0][1]
    assert lend_to_uncond(positive, [[cond, {"control": own}]])[0][1]["control"] is own
    advanced = [[cond, {"control": control, APPLY_TO_UNCOND: False}]]
    assert lend_to_uncond(advanced, negative) is negative
