"""engine.spec: InputSpec / NodeSpec and their ComfyUI `/object_info` shapes."""

import pytest

from engine.spec import InputSpec, NodeSpec, OutputSpec


def test_int_round_trip_keeps_zero_default_and_range():
    raw = ["INT", {"default": 0, "min": 0, "max": 10, "step": 1}]
    spec = InputSpec.from_object_info("steps", "required", raw)
    assert (spec.name, spec.type, spec.section) == ("steps", "INT", "required")
    assert (spec.default, spec.min, spec.max, spec.step) == (0, 0, 10, 1)
    assert spec.options is None and spec.extra == {}
    assert spec.is_widget
    assert spec.to_object_info() == ["INT", {"default": 0, "min": 0, "max": 10, "step": 1}]


def test_float_round_false_is_kept():
    spec = InputSpec.from_object_info("cfg", "required", ("FLOAT", {"default": 8.0, "round": False, "step": 0.1}))
    assert spec.round is False
    assert spec.to_object_info() == ["FLOAT", {"default": 8.0, "round": False, "step": 0.1}]


def test_boolean_false_default_round_trips():
    spec = InputSpec.from_object_info("flag", "required", ("BOOLEAN", {"default": False, "label_on": "yes"}))
    assert spec.default is False
    assert spec.to_object_info() == ["BOOLEAN", {"default": False, "label_on": "yes"}]


def test_type_only_tuple():
    spec = InputSpec.from_object_info("model", "required", ("MODEL",))
    assert spec.type == "MODEL" and not spec.is_widget
    assert spec.to_object_info() == ["MODEL"]


def test_combo_list_form():
    spec = InputSpec.from_object_info("sampler", "required", [["euler", "heun"], {"default": "heun"}])
    assert spec.type == "COMBO"
    assert spec.options == ("euler", "heun")
    assert spec.default == "heun"
    assert spec.is_widget
    assert spec.to_object_info() == [["euler", "heun"], {"default": "heun"}]


def test_combo_list_form_without_options_dict():
    spec = InputSpec.from_object_info("mode", "optional", (["a", "b"],))
    assert (spec.type, spec.options, spec.section) == ("COMBO", ("a", "b"), "optional")
    assert spec.to_object_info() == [["a", "b"]]


def test_combo_keyword_form_is_normalised_to_list_form():
    spec = InputSpec.from_object_info("mode", "required", ["COMBO", {"options": ["x", "y"], "default": "y"}])
    assert spec.type == "COMBO"
    assert spec.options == ("x", "y")
    assert "options" not in spec.extra
    assert spec.to_object_info() == [["x", "y"], {"default": "y"}]


@pytest.mark.parametrize("raw", ["PROMPT", ("PROMPT",), ["PROMPT"]])
def test_hidden_prompt(raw):
    spec = InputSpec.from_object_info("prompt", "hidden", raw)
    assert (spec.name, spec.type, spec.section) == ("prompt", "PROMPT", "hidden")
    assert not spec.is_widget
    assert spec.frontend_only_values == 0
    assert spec.to_object_info() == "PROMPT"


def test_force_input_makes_a_widget_type_a_socket():
    spec = InputSpec.from_object_info("seed", "required", ("INT", {"forceInput": True, "default": 3}))
    assert spec.force_input is True
    assert not spec.is_widget
    assert spec.to_object_info() == ["INT", {"default": 3, "forceInput": True}]


def test_socketless_custom_type_is_a_widget():
    socketless = InputSpec.from_object_info("colour", "required", ("MYCOLOR", {"socketless": True}))
    socket = InputSpec.from_object_info("colour", "required", ("MYCOLOR", {}))
    assert socketless.is_widget is True
    assert socket.is_widget is False
    assert socketless.extra == {"socketless": True}
    assert socketless.to_object_info() == ["MYCOLOR", {"socketless": True}]


@pytest.mark.parametrize(
    "raw, count",
    [
        (("INT", {"default": 0, "control_after_generate": True}), 1),
        ((["a", "b"], {"control_after_generate": True}), 2),
        (("COMBO", {"options": ["a", "b"], "control_after_generate": True}), 2),
        (("INT", {"default": 0}), 0),
        (("INT", {"forceInput": True, "control_after_generate": True}), 0),
        (("STRING", {"multiline": True}), 0),
    ],
)
def test_frontend_only_values(raw, count):
    assert InputSpec.from_object_info("x", "required", raw).frontend_only_values == count


def test_unknown_options_pass_through_and_flags_show_only_when_set():
    raw = ("STRING", {"multiline": True, "dynamicPrompts": True, "tooltip": "the text", "placeholder": "type", "lazy": False})
    spec = InputSpec.from_object_info("text", "required", raw)
    assert spec.multiline is True and spec.tooltip == "the text" and spec.lazy is False
    assert spec.extra == {"dynamicPrompts": True, "placeholder": "type"}
    assert spec.to_object_info() == ["STRING", {"multiline": True, "tooltip": "the text", "dynamicPrompts": True, "placeholder": "type"}]


@pytest.mark.parametrize("raw", ["INT", (), (5, {}), None])
def test_malformed_entries_raise(raw):
    with pytest.raises(ValueError):
        InputSpec.from_object_info("x", "required", raw)


def _spec() -> NodeSpec:
    return NodeSpec(
        class_type="MyNode",
        display_name="My Node",
        description="Does things.",
        category="test/things",
        inputs=(
            InputSpec(name="mode", type="COMBO", options=("a", "b"), default="a"),
            InputSpec(name="image", type="IMAGE"),
            InputSpec(name="count", type="INT", section="optional", default=1, min=1, max=8),
            InputSpec(name="prompt", type="PROMPT", section="hidden"),
        ),
        outputs=(OutputSpec(name="IMAGE", type="IMAGE"), OutputSpec(name="items", type="INT", is_list=True)),
        output_node=True,
        python_module="custom_nodes.mine",
    )


def test_node_spec_object_info_has_every_key_clients_use():
    info = _spec().to_object_info()
    assert info == {
        "input": {
            "required": {"mode": [["a", "b"], {"default": "a"}], "image": ["IMAGE"]},
            "optional": {"count": ["INT", {"default": 1, "min": 1, "max": 8}]},
            "hidden": {"prompt": "PROMPT"},
        },
        "input_order": {"required": ["mode", "image"], "optional": ["count"], "hidden": ["prompt"]},
        "output": ["IMAGE", "INT"],
        "output_is_list": [False, True],
        "output_name": ["IMAGE", "items"],
        "name": "MyNode",
        "display_name": "My Node",
        "description": "Does things.",
        "python_module": "custom_nodes.mine",
        "category": "test/things",
        "output_node": True,
    }
    # the combo's options are the first element of its input entry
    assert info["input"]["required"]["mode"][0] == ["a", "b"]


def test_node_spec_without_inputs_still_has_required_section():
    info = NodeSpec(class_type="N", display_name="N").to_object_info()
    assert info["input"] == {"required": {}}
    assert info["output"] == [] and info["output_is_list"] == [] and info["output_name"] == []
    assert info["output_node"] is False


def test_node_spec_optional_flags_and_tooltips():
    spec = NodeSpec(
        class_type="Old", display_name="Old", deprecated=True, experimental=True,
        outputs=(OutputSpec(name="x", type="INT", tooltip="an int"), OutputSpec(name="y", type="INT")),
    )
    info = spec.to_object_info()
    assert info["deprecated"] is True and info["experimental"] is True
    assert info["output_tooltips"] == ["an int", None]
    assert "deprecated" not in _spec().to_object_info() and "output_tooltips" not in _spec().to_object_info()


def test_node_spec_round_trips_through_object_info():
    spec = _spec()
    again = NodeSpec.from_object_info("MyNode", spec.to_object_info())
    assert again == spec


def test_combo_output_round_trip():
    spec = NodeSpec(class_type="Pick", display_name="Pick", outputs=(OutputSpec(name="COMBO", type=("x", "y")),))
    info = spec.to_object_info()
    assert info["output"] == [["x", "y"]]
    assert NodeSpec.from_object_info("Pick", info).outputs == spec.outputs


def test_lookup_helpers_and_widget_order():
    spec = _spec()
    assert spec.input("count").min == 1
    assert spec.input("nope") is None
    assert [i.name for i in spec.section("required")] == ["mode", "image"]
    assert [i.name for i in spec.inputs if i.is_widget] == ["mode", "count"]
