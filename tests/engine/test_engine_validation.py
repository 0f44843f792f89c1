"""engine.validation: ComfyUI's error shapes and semantics; engine.workflow.api: the prompt model."""

from typing import Annotated, Any

import pytest

import enginetest_nodes as tn
from engine.executor import PromptInvalid
from engine.native import Input, Node, Output, Socket, node
from engine.definition import NodeResult
from engine.validation import describe_errors, error, types_match, validate_prompt
from engine.workflow.api import ApiPrompt, Link, dump_input_value, is_link_json, parse_input_value


@node(output_node=True)
class NeedsBar(Node):
    bar: Annotated[Any, Socket("BAR")]

    def execute(self, ctx):
        tn.record("NeedsBar", ctx.node_id, bar=self.bar)
        return NodeResult(ui={"bar": [self.bar]})


@node(output_node=True)
class NeedsUnion(Node):
    thing: Annotated[Any, Socket("BAR,FOO")]

    def execute(self, ctx):
        return NodeResult(ui={"thing": [self.thing]})


@node(outputs=[Output("QUX,BAR", "either")])
class MakeEither(Node):
    def execute(self, ctx):
        return "either"


@node(output_node=True)
class Typed(Node):
    i: int = 0
    f: float = 0.0
    b: bool = True
    s: str = ""
    items: Any = Input(None, optional=True)

    def execute(self, ctx):
        tn.record("Typed", ctx.node_id, i=self.i, f=self.f, b=self.b, s=self.s, items=self.items)
        return NodeResult(ui={"i": [self.i]})


@node(output_node=True)
class ManyOptions(Node):
    pick: str = Input("o0", options=[f"o{i}" for i in range(25)])

    def execute(self, ctx):
        return NodeResult()


@node(output_node=True)
class SelfChecked(Node):
    name: str = Input("a", options=["a", "b"], validated_by_node=True)
    raise_it: bool = Input(False, optional=True)

    def check_inputs(self, ctx):
        if self.raise_it:
            raise KeyError("kaput")
        return None if self.name.endswith(".png") else f"{self.name} is not a png"

    def execute(self, ctx):
        return NodeResult(ui={"name": [self.name]})


EXTRA = [NeedsBar, NeedsUnion, MakeEither, Typed, ManyOptions, SelfChecked]


@pytest.fixture
def ex(tmp_path):
    executor, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, *EXTRA])
    return executor


def only_error(result, node_id):
    [err] = result.node_errors[node_id]["errors"]
    return err


# ---- top-level errors --------------------------------------------------------------------------


def test_error_helper_shape():
    assert error("t", "m") == {"type": "t", "message": "m", "details": "", "extra_info": {}}
    assert error("t", "m", "d", input_name="x") == {"type": "t", "message": "m", "details": "d", "extra_info": {"input_name": "x"}}


def test_missing_class_type(ex):
    result = ex.validate({"1": {"class_type": "Show", "inputs": {"value": 1}}, "2": {"inputs": {}}})
    assert not result.ok and result.prompt is None and result.outputs == []
    assert result.error == {
        "type": "invalid_prompt",
        "message": "Cannot execute because a node is missing the class_type property.",
        "details": "Node ID '#2'",
        "extra_info": {},
    }
    assert result.to_json() == {"error": result.error, "node_errors": {}}


def test_unknown_class_even_when_unconnected(ex):
    result = ex.validate({"1": {"class_type": "Show", "inputs": {"value": 1}}, "9": {"class_type": "NoSuchNode", "inputs": {}}})
    assert result.error == {
        "type": "invalid_prompt",
        "message": "Cannot execute because node NoSuchNode does not exist.",
        "details": "Node ID '#9'",
        "extra_info": {},
    }


@pytest.mark.parametrize("prompt", [[], "x", None, {"1": "Show"}, {"1": {"class_type": "Show", "inputs": [1]}}])
def test_malformed_prompts_are_invalid_prompt(ex, prompt):
    assert ex.validate(prompt).error["type"] == "invalid_prompt"


def test_no_outputs(ex):
    result = ex.validate({"1": {"class_type": "Const", "inputs": {"value": 1}}})
    assert result.error == {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "add an output node such as Save Image", "extra_info": {}}
    assert ex.validate({}).error["type"] == "prompt_no_outputs"


def test_all_outputs_failing(ex):
    result = ex.validate({"1": {"class_type": "Show", "inputs": {}}})
    assert result.error == {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "Required input is missing: value",
        "extra_info": {},
    }
    assert result.node_errors == {
        "1": {
            "errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "value", "extra_info": {"input_name": "value"}}],
            "dependent_outputs": ["1"],
            "class_type": "Show",
        }
    }
    with pytest.raises(PromptInvalid) as info:
        ex.execute({"1": {"class_type": "Show", "inputs": {}}})
    assert info.value.validation.node_errors == result.node_errors
    assert str(info.value) == "Prompt outputs failed validation"


def test_some_outputs_failing_still_runs_the_valid_ones(ex):
    prompt = {
        "1": {"class_type": "Const", "inputs": {"value": 4}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Const", "inputs": {"value": 5000}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }
    validation = ex.validate(prompt)
    assert validation.ok and validation.error is None
    assert validation.outputs == ["2"]
    assert list(validation.node_errors) == ["3"]
    assert validation.node_errors["3"]["dependent_outputs"] == ["4"]
    assert only_error(validation, "3")["type"] == "value_bigger_than_max"
    result = ex.execute(prompt)
    assert result.status == "success"
    assert result.outputs == ["2"]
    assert result.executed == ["1", "2"]
    assert tn.called_ids("Const") == ["1"]


# ---- per-input errors ---------------------------------------------------------------------------


def test_link_to_missing_node(ex):
    result = ex.validate({"1": {"class_type": "NeedsBar", "inputs": {"bar": ["99", 0]}}})
    err = only_error(result, "1")
    assert err == {
        "type": "bad_linked_input",
        "message": "Linked node does not exist",
        "details": "bar: node '99' is not in the prompt",
        "extra_info": {"input_name": "bar", "input_config": ["BAR"], "linked_node": ["99", 0]},
    }


def test_link_slot_out_of_range(ex):
    result = ex.validate({
        "1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 1]}},
    })
    err = only_error(result, "2")
    assert err["type"] == "bad_linked_input"
    assert err["message"] == "Linked output does not exist"
    assert err["details"] == "value: Const (node '1') has 1 outputs, not slot 1"
    assert err["extra_info"]["linked_node"] == ["1", 1]
    assert "1" not in result.node_errors


def test_numeric_node_id_in_link_gets_a_hint(ex):
    result = ex.validate({
        "4": {"class_type": "MakeFoo", "inputs": {"value": 1}},
        "5": {"class_type": "NeedsBar", "inputs": {"bar": [4, 0]}},
    })
    err = only_error(result, "5")
    assert err["type"] == "bad_linked_input"
    assert err["message"] == "Bad linked input, node ids in links must be strings"
    assert err["details"] == 'bar: [4, 0] (write ["4", 0])'
    assert err["extra_info"]["received_value"] == [4, 0]


def test_return_type_mismatch(ex):
    result = ex.validate({
        "1": {"class_type": "MakeFoo", "inputs": {"value": 1}},
        "2": {"class_type": "NeedsBar", "inputs": {"bar": ["1", 0]}},
    })
    assert only_error(result, "2") == {
        "type": "return_type_mismatch",
        "message": "Return type mismatch between linked nodes",
        "details": "bar, received_type(FOO) mismatch input_type(BAR)",
        "extra_info": {"received_type": "FOO", "input_name": "bar", "input_config": ["BAR"], "linked_node": ["1", 0]},
    }


@pytest.mark.parametrize(
    "producer, consumer",
    [
        ({"class_type": "MakeFoo", "inputs": {"value": 1}}, {"class_type": "NeedsUnion", "inputs": {"thing": ["1", 0]}}),  # FOO → BAR,FOO
        ({"class_type": "MakeEither", "inputs": {}}, {"class_type": "NeedsBar", "inputs": {"bar": ["1", 0]}}),  # QUX,BAR → BAR
        ({"class_type": "Block", "inputs": {"message": ""}}, {"class_type": "NeedsBar", "inputs": {"bar": ["1", 0]}}),  # * → BAR
        ({"class_type": "MakeFoo", "inputs": {"value": 1}}, {"class_type": "Show", "inputs": {"value": ["1", 0]}}),  # FOO → *
    ],
)
def test_matching_link_types(ex, producer, consumer):
    result = ex.validate({"1": producer, "2": consumer})
    assert result.ok and result.node_errors == {}


def test_types_match_rules():
    assert types_match("INT", "INT")
    assert not types_match("INT", "FLOAT")
    assert types_match("*", "IMAGE") and types_match("IMAGE", "*")
    assert types_match("A,B", "B,C") and not types_match("A,B", "C,D")
    assert types_match(("x", "y"), "COMBO") and types_match(("x", "y"), "*")
    assert not types_match(("x", "y"), "STRING")


def test_invalid_input_type(ex):
    result = ex.validate({"1": {"class_type": "Typed", "inputs": {"i": "abc", "f": 1, "b": True, "s": "x"}}})
    err = only_error(result, "1")
    assert err["type"] == "invalid_input_type"
    assert err["message"] == "Failed to convert an input value to a INT value"
    assert err["details"].startswith("i, 'abc', invalid literal for int()")
    assert err["extra_info"]["input_name"] == "i"
    assert err["extra_info"]["received_value"] == "abc"
    assert err["extra_info"]["input_config"] == ["INT", {"default": 0}]
    assert "invalid literal" in err["extra_info"]["exception_message"]


@pytest.mark.parametrize("field, value", [("f", "fast"), ("b", "maybe"), ("b", None), ("i", [1, 2, 3])])
def test_more_invalid_input_types(ex, field, value):
    inputs = {"i": 1, "f": 1.0, "b": True, "s": "x", field: value}
    err = only_error(ex.validate({"1": {"class_type": "Typed", "inputs": inputs}}), "1")
    assert err["type"] == "invalid_input_type" and err["extra_info"]["input_name"] == field


def test_value_smaller_than_min(ex):
    result = ex.validate({"1": {"class_type": "Const", "inputs": {"value": -1001}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert only_error(result, "1") == {
        "type": "value_smaller_than_min",
        "message": "Value -1001 smaller than min of -1000",
        "details": "value",
        "extra_info": {"input_name": "value", "input_config": ["INT", {"default": 0, "min": -1000, "max": 1000}], "received_value": -1001},
    }
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]
    assert result.node_errors["1"]["class_type"] == "Const"


def test_value_bigger_than_max_after_coercion(ex):
    result = ex.validate({"1": {"class_type": "Const", "inputs": {"value": "1001"}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    err = only_error(result, "1")
    assert err["type"] == "value_bigger_than_max"
    assert err["message"] == "Value 1001 bigger than max of 1000"
    assert err["extra_info"]["received_value"] == 1001  # the coerced value, as ComfyUI reports it


def test_range_bounds_are_inclusive(ex):
    for value in (-1000, 1000):
        assert ex.validate({"1": {"class_type": "Const", "inputs": {"value": value}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}).node_errors == {}


def test_value_not_in_list(ex):
    result = ex.validate({"1": {"class_type": "Mode", "inputs": {"mode": "medium"}}})
    assert only_error(result, "1") == {
        "type": "value_not_in_list",
        "message": "Value not in list",
        "details": "mode: 'medium' not in ['fast', 'slow']",
        "extra_info": {"input_name": "mode", "input_config": [["fast", "slow"], {"default": "fast"}], "received_value": "medium"},
    }


def test_long_option_lists_are_not_echoed(ex):
    err = only_error(ex.validate({"1": {"class_type": "ManyOptions", "inputs": {"pick": "nope"}}}), "1")
    assert err["details"] == "pick: 'nope' not in (list of length 25)"


def test_validated_by_node_skips_options_and_custom_check_reports(ex):
    ok = ex.validate({"1": {"class_type": "SelfChecked", "inputs": {"name": "z.png"}}})
    assert ok.ok and ok.node_errors == {}
    bad = ex.validate({"1": {"class_type": "SelfChecked", "inputs": {"name": "z.txt"}}})
    assert only_error(bad, "1") == {
        "type": "custom_validation_failed",
        "message": "Custom validation failed for node",
        "details": "name - z.txt is not a png",
        "extra_info": {"input_name": "name"},
    }


def test_exception_during_validation(ex):
    err = only_error(ex.validate({"1": {"class_type": "SelfChecked", "inputs": {"name": "z.png", "raise_it": True}}}), "1")
    assert err["type"] == "exception_during_validation"
    assert err["details"] == "KeyError: 'kaput'"
    assert "KeyError" in err["extra_info"]["traceback"]


def test_dependency_cycle(ex):
    result = ex.validate({
        "1": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": 1}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    })
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert set(result.node_errors) == {"1", "2"}
    for nid in ("1", "2"):
        err = only_error(result, nid)
        assert err["type"] == "dependency_cycle"
        assert err["details"] == "nodes 1 → 2 → 1 depend on each other"
        assert result.node_errors[nid]["dependent_outputs"] == ["3"]


def test_self_loop_is_a_cycle(ex):
    result = ex.validate({
        "1": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    })
    assert only_error(result, "1")["type"] == "dependency_cycle"


def test_coercion_of_widget_values(ex):
    prompt = {"1": {"class_type": "Typed", "inputs": {"i": "20", "f": 1, "b": "false", "s": 5}}}
    result = ex.validate(prompt)
    inputs = result.prompt.nodes["1"].inputs
    assert inputs == {"i": 20, "f": 1.0, "b": False, "s": "5"}
    assert type(inputs["f"]) is float and type(inputs["i"]) is int
    assert prompt["1"]["inputs"]["i"] == "20"  # the caller's JSON is left alone
    ex.execute(prompt)
    assert tn.calls("Typed") == [("Typed", "1", {"i": 20, "f": 1.0, "b": False, "s": "5", "items": None})]


@pytest.mark.parametrize("raw, expected", [("true", True), ("TRUE", True), ("1", True), ("0", False), (0, False), (1.0, True)])
def test_boolean_coercion(ex, raw, expected):
    result = ex.validate({"1": {"class_type": "Typed", "inputs": {"i": 1, "f": 1, "b": raw, "s": ""}}})
    assert result.prompt.nodes["1"].inputs["b"] is expected


def test_value_wrapper_is_unwrapped_and_never_a_link(ex):
    prompt = {"1": {"class_type": "Typed", "inputs": {"i": 1, "f": 1, "b": True, "s": "", "items": {"__value__": ["2", 0]}}}}
    result = ex.validate(prompt)
    assert result.ok
    assert result.prompt.nodes["1"].inputs["items"] == ["2", 0]
    assert not isinstance(result.prompt.nodes["1"].inputs["items"], Link)
    ex.execute(prompt)
    assert tn.calls("Typed")[0][2]["items"] == ["2", 0]


def test_downstream_of_a_broken_node_has_no_errors_of_its_own(ex):
    result = ex.validate({
        "1": {"class_type": "Const", "inputs": {"value": -5000}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    })
    assert list(result.node_errors) == ["1"]
    assert result.node_errors["1"]["dependent_outputs"] == ["3", "4"]
    assert result.error["details"] == "Value -5000 smaller than min of -1000: value"


def test_undeclared_inputs_are_ignored(ex):
    prompt = {
        "1": {"class_type": "Const", "inputs": {"value": 2, "junk": ["99", 0], "more": "x"}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0], "extra": ["3", 0]}},
        "3": {"class_type": "Boom", "inputs": {}},
    }
    result = ex.validate(prompt)
    assert result.ok and result.node_errors == {}
    assert result.prompt.nodes["1"].inputs == {"value": 2}
    assert result.prompt.nodes["2"].inputs == {"value": Link("1", 0)}
    run = ex.execute(prompt)
    assert run.status == "success" and tn.call_count("Boom") == 0


def test_unrelated_nodes_are_not_validated(ex):
    result = ex.validate({
        "1": {"class_type": "Const", "inputs": {"value": 2}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Const", "inputs": {"value": 99999}},
        "4": {"class_type": "Add", "inputs": {}},
    })
    assert result.ok and result.node_errors == {} and result.outputs == ["2"]


def test_outputs_are_naturally_sorted(ex):
    prompt = {str(i): {"class_type": "Show", "inputs": {"value": i}} for i in (10, 9, 100, 2)}
    assert ex.validate(prompt).outputs == ["2", "9", "10", "100"]


def test_partial_targets(ex):
    prompt = {
        "1": {"class_type": "Const", "inputs": {"value": 2}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 3}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {}},  # broken, but not targeted
        "5": {"class_type": "Const", "inputs": {"value": 7}},
        "6": {"class_type": "Show", "inputs": {"value": ["5", 0]}},
    }
    validation = ex.validate(prompt, targets=["2"])
    assert validation.ok and validation.outputs == ["2"] and validation.node_errors == {}
    result = ex.execute(prompt, targets=["2"])
    assert result.status == "success"
    assert result.outputs == ["2"] and result.executed == ["1", "2"]
    assert ex.validate(prompt, targets=[6]).outputs == ["6"]
    missing = ex.validate(prompt, targets=["2", "42"])
    assert missing.error == {"type": "invalid_prompt", "message": "Partial execution target does not exist", "details": "42", "extra_info": {}}


def test_spec_failure_of_a_relevant_node(tmp_path):
    def broken(folders):
        raise OSError("disk on fire")

    @node(output_node=True)
    class Listing(Node):
        name: str = Input(options=broken)

        def execute(self, ctx):
            return NodeResult()

    executor, _ = tn.make_executor(tmp_path, native=[*tn.NATIVE, Listing])
    result = executor.validate({"1": {"class_type": "Listing", "inputs": {"name": "x"}}, "2": {"class_type": "Show", "inputs": {"value": 1}}})
    assert result.ok and result.outputs == ["2"]  # a node whose spec fails is no output
    result = executor.validate({"1": {"class_type": "Listing", "inputs": {"name": "x"}}, "2": {"class_type": "Show", "inputs": {"value": 1}}},
                               targets=["1", "2"])
    err = only_error(result, "1")
    assert err["type"] == "exception_during_validation"
    assert err["message"] == "Node definition failed"
    assert err["details"] == "OSError: disk on fire"


def test_describe_errors(ex):
    result = ex.validate({
        "1": {"class_type": "Const", "inputs": {"value": -5000}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Show", "inputs": {}},
    })
    assert describe_errors(result.node_errors, result.error) == [
        "node 1 (Const), input 'value': Value -5000 smaller than min of -1000",
        "node 3 (Show), input 'value': Required input is missing",
    ]
    invalid = ex.validate({"1": {"class_type": "Nope"}})
    assert describe_errors(invalid.node_errors, invalid.error) == ["Cannot execute because node Nope does not exist. Node ID '#1'"]


def test_validate_prompt_function_directly(ex):
    result = validate_prompt({"1": {"class_type": "Show", "inputs": {"value": 3}}}, ex.registry, ex.folders)
    assert result.ok and result.outputs == ["1"] and set(result.specs) == {"Show"}


# ---- engine.workflow.api ------------------------------------------------------------------------


def test_api_prompt_round_trip():
    raw = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["4", 0], "cfg": 7.5, "sampler_name": "euler"},
              "_meta": {"title": "My Sampler"}},
        4: {"class_type": "Loader", "inputs": {"names": {"__value__": ["a", 1]}, "nums": {"__value__": [1, 2]}}},
        "5": {"class_type": "Plain", "inputs": {}, "is_changed": ["x"]},
    }
    prompt = ApiPrompt.model_validate(raw)
    assert list(prompt.nodes) == ["3", "4", "5"]
    assert prompt.nodes["3"].inputs["model"] == Link("4", 0)
    assert prompt.nodes["3"].title == "My Sampler"
    assert prompt.nodes["4"].inputs["names"] == ["a", 1] and not isinstance(prompt.nodes["4"].inputs["names"], Link)
    assert prompt.nodes["3"].links() == {"model": Link("4", 0)}
    assert prompt.nodes["4"].links() == {}
    assert prompt.to_json() == {
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["4", 0], "cfg": 7.5, "sampler_name": "euler"},
              "_meta": {"title": "My Sampler"}},
        "4": {"class_type": "Loader", "inputs": {"names": {"__value__": ["a", 1]}, "nums": {"__value__": [1, 2]}}},
        "5": {"class_type": "Plain", "inputs": {}, "is_changed": ["x"]},
    }
    assert ApiPrompt.model_validate(prompt.to_json()) == prompt


def test_api_find():
    prompt = ApiPrompt.model_validate({
        "1": {"class_type": "A", "inputs": {}, "_meta": {"title": "first"}},
        "2": {"class_type": "A", "inputs": {}},
        "3": {"class_type": "B", "inputs": {}, "_meta": {"title": "1"}},
    })
    assert prompt.find("1") == ["1"]
    assert prompt.find("first") == ["1"]
    assert prompt.find("A") == ["1", "2"]
    assert prompt.find("nothing") == []


@pytest.mark.parametrize(
    "value, expected",
    [
        (["1", 0], Link("1", 0)),
        (["1", 2.0], Link("1", 2)),
        ([1, 0], [1, 0]),
        (["1", True], ["1", True]),
        (["1", 0, 2], ["1", 0, 2]),
        ({"__value__": ["1", 0]}, ["1", 0]),
        ({"__value__": [], "other": 1}, {"__value__": [], "other": 1}),
        ("text", "text"),
    ],
)
def test_parse_input_value(value, expected):
    parsed = parse_input_value(value)
    assert parsed == expected
    assert isinstance(parsed, Link) == isinstance(expected, Link)


def test_dump_input_value():
    assert dump_input_value(Link("2", 1)) == ["2", 1]
    assert dump_input_value(["2", 1]) == {"__value__": ["2", 1]}
    assert dump_input_value((1, 2)) == {"__value__": [1, 2]}
    assert dump_input_value(3) == 3
    assert is_link_json(["a", 0]) and not is_link_json(("a", 0)) and not is_link_json(["a", "0"])


def test_validated_prompt_keeps_titles_and_extra_fields(ex):
    result = ex.validate({"1": {"class_type": "Show", "inputs": {"value": "3", "junk": 1}, "_meta": {"title": "Out"}, "is_changed": "x"}})
    assert result.prompt.nodes["1"].title == "Out"
    assert result.prompt.to_json() == {"1": {"class_type": "Show", "inputs": {"value": "3"}, "_meta": {"title": "Out"}, "is_changed": "x"}}
