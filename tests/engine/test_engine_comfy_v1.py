"""engine.comfy_v1: ComfyUI V1 classes read into NodeSpecs and called the way ComfyUI calls them."""

import asyncio
import math
import types

import pytest

import enginetest_nodes as tn
from engine.comfy_v1 import ComfyV1Definition
from engine.definition import ExecutionBlocker
from engine.executor import PromptInvalid
from engine.folders import Folders
from engine.registry import Registry


class V1Full:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE",),
                "mode": (["a", "b"], {"default": "a"}),
                "n": ("INT", {"default": 1, "min": 0, "max": 5}),
            },
            "optional": {"mask": ("MASK",)},
            "hidden": {"prompt": "PROMPT", "extra": "EXTRA_PNGINFO", "uid": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("IMAGE", "INT")
    RETURN_NAMES = ("out_image", "count")
    OUTPUT_IS_LIST = (False, True)
    OUTPUT_TOOLTIPS = ("the image", None)
    FUNCTION = "run"
    CATEGORY = "test/v1"
    OUTPUT_NODE = True
    DESCRIPTION = "A full V1 node."
    DEPRECATED = True

    def run(self, image, mode, n, mask=None, prompt=None, extra=None, uid=None):
        return (image, list(range(n)))


def test_spec_from_class_attributes():
    registry = tn.make_registry(v1={"V1Full": V1Full}, display={"V1Full": "Full V1 Node"})
    spec = registry.get("V1Full").spec(Folders("."))
    assert spec.class_type == "V1Full"
    assert spec.display_name == "Full V1 Node"
    assert spec.description == "A full V1 node."
    assert spec.category == "test/v1"
    assert spec.output_node is True
    assert spec.input_is_list is False
    assert spec.deprecated is True
    assert spec.python_module == "enginetest_pack"
    assert [(i.name, i.type, i.section) for i in spec.inputs] == [
        ("image", "IMAGE", "required"), ("mode", "COMBO", "required"), ("n", "INT", "required"),
        ("mask", "MASK", "optional"), ("prompt", "PROMPT", "hidden"), ("extra", "EXTRA_PNGINFO", "hidden"),
        ("uid", "UNIQUE_ID", "hidden"),
    ]
    assert [(o.name, o.type, o.is_list, o.tooltip) for o in spec.outputs] == [
        ("out_image", "IMAGE", False, "the image"), ("count", "INT", True, None),
    ]
    info = spec.to_object_info()
    assert info["input"]["hidden"] == {"prompt": "PROMPT", "extra": "EXTRA_PNGINFO", "uid": "UNIQUE_ID"}
    assert info["input"]["required"]["mode"] == [["a", "b"], {"default": "a"}]
    assert info["output_name"] == ["out_image", "count"]
    assert info["output_is_list"] == [False, True]


def test_defaults_without_optional_attributes():
    class Bare:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        RETURN_TYPES = ("LATENT", "LATENT")
        FUNCTION = "go"

        def go(self):
            return (1, 2)

    definition = ComfyV1Definition("Bare", Bare)
    spec = definition.spec(Folders("."))
    assert spec.display_name == "Bare"
    assert spec.category == "sd"
    assert spec.output_node is False and spec.description == ""
    assert [(o.name, o.type, o.is_list) for o in spec.outputs] == [("LATENT", "LATENT", False)] * 2
    assert definition.not_idempotent is False and definition.validated_inputs == frozenset()


class Hidden:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    SEEN: list = []

    def run(self, value, prompt=None, extra_pnginfo=None, unique_id=None):
        Hidden.SEEN.append({"value": value, "prompt": prompt, "extra_pnginfo": extra_pnginfo, "unique_id": unique_id})
        return {}


def test_hidden_inputs_receive_prompt_pnginfo_and_node_id(tmp_path):
    Hidden.SEEN = []
    ex, _ = tn.make_executor(tmp_path, v1={"Hidden": Hidden})
    prompt = {"7": {"class_type": "Hidden", "inputs": {"value": "3"}, "_meta": {"title": "T"}}}
    extra = {"extra_pnginfo": {"workflow": {"nodes": []}}, "client_id": "c"}
    result = ex.execute(prompt, extra_data=extra)
    assert result.status == "success"
    assert Hidden.SEEN == [{"value": 3, "prompt": prompt, "extra_pnginfo": {"workflow": {"nodes": []}}, "unique_id": "7"}]


class Changing:
    """IS_CHANGED returns whatever the test puts in TOKEN."""

    TOKEN: object = 1
    SEEN: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"linked": ("INT",), "constant": ("INT", {"default": 0})}, "optional": {"absent": ("INT",)}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def IS_CHANGED(cls, linked, constant, **kwargs):
        cls.SEEN.append({"linked": linked, "constant": constant})
        return cls.TOKEN

    def run(self, linked, constant, absent=None):
        tn.record("Changing", "?", linked=linked, constant=constant)
        return (linked + constant,)


def _changing_prompt():
    return {
        "1": {"class_type": "Const", "inputs": {"value": 5}},
        "2": {"class_type": "Changing", "inputs": {"linked": ["1", 0], "constant": 2}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    }


def test_is_changed_gets_constants_and_none_for_links(tmp_path):
    Changing.TOKEN, Changing.SEEN = "same", []
    ex, _ = tn.make_executor(tmp_path, v1={"Changing": Changing})
    result = ex.execute(_changing_prompt())
    assert Changing.SEEN == [{"linked": None, "constant": 2}]
    assert result.executed == ["1", "2", "3"]
    assert tn.calls("Show")[-1][2] == {"value": 7}


def test_is_changed_value_is_part_of_the_cache_key(tmp_path):
    Changing.TOKEN, Changing.SEEN = "v1", []
    ex, _ = tn.make_executor(tmp_path, v1={"Changing": Changing})
    assert ex.execute(_changing_prompt()).executed == ["1", "2", "3"]
    assert ex.execute(_changing_prompt()).executed == []
    Changing.TOKEN = "v2"
    assert ex.execute(_changing_prompt()).executed == ["2", "3"]
    assert tn.call_count("Changing") == 2
    Changing.TOKEN = "v1"  # back to a known value: cached again
    assert ex.execute(_changing_prompt()).executed == []


def test_is_changed_nan_always_reruns(tmp_path):
    Changing.TOKEN, Changing.SEEN = math.nan, []
    ex, _ = tn.make_executor(tmp_path, v1={"Changing": Changing})
    for _ in range(3):
        assert ex.execute(_changing_prompt()).executed in (["1", "2", "3"], ["2", "3"])
    assert tn.call_count("Changing") == 3
    assert tn.call_count("Const") == 1


def test_is_changed_raising_always_reruns(tmp_path):
    class Raising(Changing):
        @classmethod
        def IS_CHANGED(cls, **kwargs):
            raise OSError("file is gone")

    ex, _ = tn.make_executor(tmp_path, v1={"Changing": Raising})
    assert ex.execute(_changing_prompt()).executed == ["1", "2", "3"]
    assert ex.execute(_changing_prompt()).executed == ["2", "3"]


class Validating:
    RESULT: object = True
    SEEN: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (["a.png", "b.png"],), "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}),
                             "count": ("INT", {"default": 1, "min": 1, "max": 4})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def VALIDATE_INPUTS(cls, name, strength):
        cls.SEEN.append({"name": name, "strength": strength})
        return cls.RESULT

    def run(self, name, strength, count):
        tn.record("Validating", "?", name=name, strength=strength, count=count)
        return {}


def test_validate_inputs_string_is_custom_validation_failed(tmp_path):
    Validating.RESULT, Validating.SEEN = "Invalid image file: z.png", []
    ex, _ = tn.make_executor(tmp_path, v1={"Validating": Validating})
    result = ex.validate({"1": {"class_type": "Validating", "inputs": {"name": "z.png", "strength": 0.5, "count": 1}}})
    assert Validating.SEEN == [{"name": "z.png", "strength": 0.5}]
    assert result.error["type"] == "prompt_outputs_failed_validation"
    [err] = result.node_errors["1"]["errors"]
    assert err["type"] == "custom_validation_failed"
    assert err["message"] == "Custom validation failed for node"
    assert "Invalid image file: z.png" in err["details"]
    assert set(err) == {"type", "message", "details", "extra_info"}


def test_validate_inputs_false_fails_too(tmp_path):
    Validating.RESULT, Validating.SEEN = False, []
    ex, _ = tn.make_executor(tmp_path, v1={"Validating": Validating})
    result = ex.validate({"1": {"class_type": "Validating", "inputs": {"name": "a.png", "strength": 0.5, "count": 1}}})
    assert result.node_errors["1"]["errors"][0]["type"] == "custom_validation_failed"


def test_inputs_named_by_validate_inputs_skip_builtin_checks(tmp_path):
    Validating.RESULT, Validating.SEEN = True, []
    ex, _ = tn.make_executor(tmp_path, v1={"Validating": Validating})
    ok = ex.validate({"1": {"class_type": "Validating", "inputs": {"name": "x.png [output]", "strength": "7.5", "count": 2}}})
    assert ok.ok and ok.node_errors == {}
    assert Validating.SEEN == [{"name": "x.png [output]", "strength": 7.5}]  # coerced, not range-checked
    # `count` is not named: its range is still enforced
    bad = ex.validate({"1": {"class_type": "Validating", "inputs": {"name": "a.png", "strength": 0.5, "count": 9}}})
    assert [e["type"] for e in bad.node_errors["1"]["errors"]] == ["value_bigger_than_max"]
    result = ex.execute({"1": {"class_type": "Validating", "inputs": {"name": "x.png [output]", "strength": 7.5, "count": 2}}})
    assert result.status == "success"
    assert tn.calls("Validating") == [("Validating", "?", {"name": "x.png [output]", "strength": 7.5, "count": 2})]


class KwargsValidating:
    SEEN: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (["a.png"],), "count": ("INT", {"default": 1, "min": 1, "max": 4}), "image": ("FOO",)}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def VALIDATE_INPUTS(cls, **kwargs):
        cls.SEEN.append(kwargs)
        return True

    def run(self, **kwargs):
        return {}


def test_validate_inputs_with_kwargs_receives_all_inputs_and_skips_all_checks(tmp_path):
    """ComfyUI: a `**kwargs` VALIDATE_INPUTS gets every input and turns off min/max/combo checks."""
    KwargsValidating.SEEN = []
    ex, _ = tn.make_executor(tmp_path, v1={"KV": KwargsValidating})
    prompt = {
        "1": {"class_type": "MakeFoo", "inputs": {"value": 1}},
        "2": {"class_type": "KV", "inputs": {"name": "other.png", "count": 99, "image": ["1", 0]}},
    }
    result = ex.validate(prompt)
    assert result.ok, result.node_errors
    assert KwargsValidating.SEEN == [{"name": "other.png", "count": 99, "image": None}]


class Typed:
    SEEN: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"thing": ("BAR",), "n": ("INT", {"default": 0})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def VALIDATE_INPUTS(cls, input_types, n):
        cls.SEEN.append({"input_types": input_types, "n": n})
        return True

    def run(self, thing, n):
        tn.record("Typed", "?", thing=thing, n=n)
        return (f"{thing}-{n}",)


def test_input_types_parameter_receives_linked_types_and_disables_type_check(tmp_path):
    Typed.SEEN = []
    ex, _ = tn.make_executor(tmp_path, v1={"Typed": Typed})
    prompt = {
        "1": {"class_type": "MakeFoo", "inputs": {"value": 4}},
        "2": {"class_type": "Typed", "inputs": {"thing": ["1", 0], "n": 1}},
    }
    validation = ex.validate(prompt)
    assert validation.ok and validation.node_errors == {}
    assert Typed.SEEN == [{"input_types": {"thing": "FOO"}, "n": 1}]
    assert ex.execute(prompt).status == "success"
    assert tn.calls("Typed") == [("Typed", "?", {"thing": "foo4", "n": 1})]


def test_without_input_types_the_link_type_is_checked(tmp_path):
    class Untyped(Typed):
        @classmethod
        def VALIDATE_INPUTS(cls, n):
            return True

    ex, _ = tn.make_executor(tmp_path, v1={"Typed": Untyped})
    prompt = {
        "1": {"class_type": "MakeFoo", "inputs": {"value": 4}},
        "2": {"class_type": "Typed", "inputs": {"thing": ["1", 0], "n": 1}},
    }
    result = ex.validate(prompt)
    assert [e["type"] for e in result.node_errors["2"]["errors"]] == ["return_type_mismatch"]


class UiAndResult:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    def run(self, value):
        return {"ui": {"text": [f"got {value}"]}, "result": (value * 10,)}


def test_dict_return_with_ui_and_result(tmp_path):
    ex, rec = tn.make_executor(tmp_path, v1={"UiAndResult": UiAndResult})
    prompt = {
        "1": {"class_type": "UiAndResult", "inputs": {"value": 4}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    }
    result = ex.execute(prompt)
    assert result.status == "success"
    assert result.ui == {"1": {"text": ["got 4"]}, "2": {"value": [40]}}
    assert [e["node"] for e in rec.of("executed")] == ["1", "2"]
    assert rec.of("executed")[0]["output"] == {"text": ["got 4"]}


class AsyncDouble:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    async def run(self, value):
        await asyncio.sleep(0)
        return (value * 2,)


def test_async_function(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"AsyncDouble": AsyncDouble})
    result = ex.execute({
        "1": {"class_type": "AsyncDouble", "inputs": {"value": 21}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
    })
    assert result.status == "success"
    assert result.ui["2"] == {"value": [42]}


class V1Switch:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"select": ("BOOLEAN", {"default": True}),
                             "on_true": ("*", {"lazy": True}), "on_false": ("*", {"lazy": True})}}

    RETURN_TYPES = ("*",)
    FUNCTION = "run"

    def check_lazy_status(self, select, on_true=None, on_false=None):
        tn.record("V1Switch.check", "?", on_true=on_true, on_false=on_false)
        name = "on_true" if select else "on_false"
        return [name] if (on_true if select else on_false) is None else []

    def run(self, select, on_true=None, on_false=None):
        tn.record("V1Switch", "?", on_true=on_true, on_false=on_false)
        return (on_true if select else on_false,)


def test_check_lazy_status_evaluates_only_the_selected_branch(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"V1Switch": V1Switch})
    prompt = {
        "1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Boom", "inputs": {}},
        "3": {"class_type": "V1Switch", "inputs": {"select": True, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0]}},
    }
    result = ex.execute(prompt)
    assert result.status == "success"
    assert result.executed == ["1", "3", "4"]
    assert tn.call_count("Boom") == 0
    assert [c[2] for c in tn.calls("V1Switch.check")] == [{"on_true": None, "on_false": None}, {"on_true": 1, "on_false": None}]
    assert tn.calls("V1Switch")[0][2] == {"on_true": 1, "on_false": None}
    assert result.ui["4"] == {"value": [1]}


class Impure:
    NOT_IDEMPOTENT = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    def run(self, value):
        tn.record("Impure", "?", value=value)
        return (value,)


class Pure(Impure):
    NOT_IDEMPOTENT = False


def _twins(class_type):
    return {
        "1": {"class_type": class_type, "inputs": {"value": 3}},
        "2": {"class_type": class_type, "inputs": {"value": 3}},
        "3": {"class_type": "Show", "inputs": {"value": ["1", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    }


def test_not_idempotent_puts_node_id_in_key(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"Impure": Impure, "Pure": Pure})
    assert ex.registry.get("Impure").not_idempotent is True
    assert ex.registry.get("Pure").not_idempotent is False
    ex.execute(_twins("Impure"))
    assert tn.call_count("Impure") == 2  # same content, different nodes: both run
    ex.execute(_twins("Impure"))
    assert tn.call_count("Impure") == 2  # but each is cached across runs
    tn.CALLS.clear()
    ex.execute(_twins("Pure"))
    assert tn.call_count("Impure") == 1  # Pure (which records as "Impure") dedupes its twin


def test_unique_id_hidden_input_puts_node_id_in_key(tmp_path):
    """ComfyUI keys nodes that take UNIQUE_ID by node id too: identical V1Show nodes both run."""
    ex, _ = tn.make_executor(tmp_path, v1={"V1Show": tn.V1Show})
    assert ex.registry.get("V1Show").not_idempotent is True
    result = ex.execute({
        "1": {"class_type": "Const", "inputs": {"value": 2}},
        "2": {"class_type": "V1Show", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "V1Show", "inputs": {"value": ["1", 0]}},
    })
    assert sorted(tn.called_ids("V1Show")) == ["2", "3"]
    assert result.ui == {"2": {"text": ["2"]}, "3": {"text": ["2"]}}


class ListIn:
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("INT",), "scale": ("INT", {"default": 1})}, "hidden": {"uid": "UNIQUE_ID"}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    def run(self, values, scale, uid):
        tn.record("ListIn", "?", values=values, scale=scale, uid=uid)
        return (sum(values) * scale[0],)


def test_input_is_list_receives_whole_lists_including_hidden(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"ListIn": ListIn})
    result = ex.execute({
        "1": {"class_type": "Range", "inputs": {"count": 4}},
        "2": {"class_type": "ListIn", "inputs": {"values": ["1", 0], "scale": 10}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
    })
    assert tn.calls("ListIn") == [("ListIn", "?", {"values": [0, 1, 2, 3], "scale": [10], "uid": ["2"]})]
    assert result.ui["3"] == {"value": [60]}


class ListOut:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 3})}}

    RETURN_TYPES = ("INT", "STRING")
    OUTPUT_IS_LIST = (True, False)
    FUNCTION = "run"

    def run(self, n):
        return (list(range(n)), "whole")


def test_output_is_list_fans_out(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"ListOut": ListOut})
    result = ex.execute({
        "1": {"class_type": "ListOut", "inputs": {"n": 3}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 100}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["1", 1]}},
    })
    assert result.status == "success"
    assert [c[2] for c in tn.calls("Add")] == [{"a": 0, "b": 100}, {"a": 1, "b": 100}, {"a": 2, "b": 100}]
    assert result.ui["3"] == {"value": [100, 101, 102]}
    assert result.ui["4"] == {"value": ["whole"]}


class ReturnsBlocker:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})}}

    RETURN_TYPES = ("INT", "INT")
    FUNCTION = "run"

    def run(self, value):
        return ExecutionBlocker(None)


def test_function_may_return_a_bare_execution_blocker(tmp_path):
    """ComfyUI replicates a returned ExecutionBlocker onto every output."""
    ex, _ = tn.make_executor(tmp_path, v1={"RB": ReturnsBlocker})
    result = ex.execute({
        "1": {"class_type": "RB", "inputs": {"value": 1}},
        "2": {"class_type": "Show", "inputs": {"value": ["1", 1]}},
    })
    assert result.status == "success"
    assert tn.call_count("Show") == 0
    assert result.failures == {}


class WrongReturn:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    def run(self):
        return 5


def test_non_tuple_return_is_a_node_error(tmp_path):
    ex, rec = tn.make_executor(tmp_path, v1={"WrongReturn": WrongReturn})
    result = ex.execute({"1": {"class_type": "WrongReturn", "inputs": {}}, "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}})
    assert result.status == "error"
    assert result.failures["1"].exception_type == "TypeError"
    assert "must return a tuple or a dict" in result.failures["1"].message
    assert result.failures["2"].caused_by == "1"


def _load(mapping):
    module = types.ModuleType("badpack")
    module.NODE_CLASS_MAPPINGS = mapping
    registry = Registry()
    added = registry.add_module(module, source="badpack")
    return registry, added


def test_missing_function_is_a_load_error():
    class NoFunction:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        RETURN_TYPES = ()
        FUNCTION = "does_not_exist"

    registry, added = _load({"NoFunction": NoFunction, "Good": tn.V1Const})
    assert added == ["Good"]
    [err] = registry.errors
    assert (err.source, err.node) == ("badpack", "NoFunction")
    assert "FUNCTION names 'does_not_exist'" in err.message
    assert "Traceback" in err.traceback
    assert err.to_json() == {"source": "badpack", "node": "NoFunction", "message": err.message, "traceback": err.traceback}


@pytest.mark.parametrize(
    "attrs, fragment",
    [
        ({"RETURN_TYPES": ("INT",), "FUNCTION": "f"}, "neither an @node class nor a ComfyUI node class"),  # no INPUT_TYPES
        ({"INPUT_TYPES": classmethod(lambda cls: {"required": {}}), "RETURN_TYPES": ("INT", "INT"), "RETURN_NAMES": ("a",),
          "FUNCTION": "f", "f": lambda self: (1,)}, "do not match RETURN_TYPES"),
        ({"INPUT_TYPES": classmethod(lambda cls: ["nope"]), "RETURN_TYPES": (), "FUNCTION": "f", "f": lambda self: ()},
         "must return a dict"),
        ({"INPUT_TYPES": classmethod(lambda cls: {"required": {"x": 5}}), "RETURN_TYPES": (), "FUNCTION": "f",
          "f": lambda self: ()}, "expected a (type, options) tuple"),
    ],
)
def test_malformed_classes_are_load_errors(attrs, fragment):
    cls = type("Broken", (), attrs)
    registry, added = _load({"Broken": cls})
    assert added == []
    assert len(registry.errors) == 1 and fragment in registry.errors[0].message
    assert "Broken" not in registry


def test_invalid_prompt_for_v1_not_registered(tmp_path):
    ex, _ = tn.make_executor(tmp_path)
    with pytest.raises(PromptInvalid) as info:
        ex.execute({"1": {"class_type": "V1Full", "inputs": {}}})
    assert info.value.validation.error["type"] == "invalid_prompt"


class PickMode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = (["fast", "slow"], "STRING")
    RETURN_NAMES = ("mode", "text")
    FUNCTION = "run"

    def run(self):
        return ("slow", "s")


def test_combo_output_feeds_a_combo_input(tmp_path):
    ex, _ = tn.make_executor(tmp_path, v1={"PickMode": PickMode})
    spec = ex.registry.get("PickMode").spec(ex.folders)
    assert spec.outputs[0].type == ("fast", "slow")
    assert spec.to_object_info()["output"] == [["fast", "slow"], "STRING"]
    result = ex.execute({"1": {"class_type": "PickMode", "inputs": {}}, "2": {"class_type": "Mode", "inputs": {"mode": ["1", 0]}}})
    assert result.ui["2"] == {"mode": ["slow"]}
    bad = ex.validate({"1": {"class_type": "PickMode", "inputs": {}}, "2": {"class_type": "Mode", "inputs": {"mode": ["1", 1]}}})
    assert bad.node_errors["2"]["errors"][0]["details"] == "mode, received_type(STRING) mismatch input_type(COMBO)"


def test_is_changed_omits_absent_optional_inputs(tmp_path):
    """An optional input missing from the prompt is not passed, so the function's default applies."""

    class Defaults(Changing):
        @classmethod
        def IS_CHANGED(cls, linked, constant, absent=41, **kwargs):
            cls.SEEN.append({"linked": linked, "absent": absent, "others": sorted(kwargs)})
            return 0

    Defaults.SEEN = []
    ex, _ = tn.make_executor(tmp_path, v1={"Changing": Defaults})
    assert ex.execute(_changing_prompt()).status == "success"
    assert Defaults.SEEN == [{"linked": None, "absent": 41, "others": []}]
