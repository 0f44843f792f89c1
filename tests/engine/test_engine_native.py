"""engine.native: the typed node style, mapped onto NodeSpec, and its call convention."""

import types
from typing import Annotated, Any, Literal, Optional

import pytest
import torch

from engine.definition import NodeResult
from engine.folders import Folders
from engine.native import Input, Node, Output, Socket, node
from engine.registry import Registry
from engine.types import Image, Mask


@node(display_name="Everything", category="test/native", outputs=[Output("IMAGE", "picture"), "INT"])
class Everything(Node):
    """Shows every annotation kind.

    This second paragraph is not part of the description.
    """

    count: int = Input(3, min=0, max=10, step=1, tooltip="how many")
    ratio: float = 0.5
    text: str = Input("hi", multiline=True)
    flag: bool = False
    mode: Literal["a", "b", "c"] = "b"
    image: Image
    tensor: Annotated[torch.Tensor, Socket("LATENT")]
    anything: Any
    maybe: Optional[int] = None
    maybe_mask: Mask | None = None
    opt_in: int = Input(1, optional=True)
    seed: int = Input(0, control_after_generate=True)
    later: Any = Input(None, lazy=True)
    linked_only: float = Input(1.0, force_input=True)
    picked: str = Input("x", options=["x", "y"])

    def execute(self, ctx):
        return self.image, self.count


def _by_name(spec):
    return {i.name: i for i in spec.inputs}


def test_annotations_map_to_wire_types(folders):
    spec = Everything.definition.spec(folders)
    inputs = _by_name(spec)
    assert [i.name for i in spec.inputs] == [
        "count", "ratio", "text", "flag", "mode", "image", "tensor", "anything", "maybe", "maybe_mask",
        "opt_in", "seed", "later", "linked_only", "picked",
    ]
    assert {n: i.type for n, i in inputs.items()} == {
        "count": "INT", "ratio": "FLOAT", "text": "STRING", "flag": "BOOLEAN", "mode": "COMBO", "image": "IMAGE",
        "tensor": "LATENT", "anything": "*", "maybe": "INT", "maybe_mask": "MASK", "opt_in": "INT", "seed": "INT",
        "later": "*", "linked_only": "FLOAT", "picked": "COMBO",
    }
    optional = {n for n, i in inputs.items() if i.section == "optional"}
    assert optional == {"maybe", "maybe_mask", "opt_in"}
    assert {i.section for i in spec.inputs} == {"required", "optional"}


def test_input_options_and_defaults(folders):
    inputs = _by_name(Everything.definition.spec(folders))
    count = inputs["count"]
    assert (count.default, count.min, count.max, count.step, count.tooltip) == (3, 0, 10, 1, "how many")
    assert inputs["ratio"].default == 0.5 and inputs["ratio"].min is None
    assert inputs["text"].multiline is True and inputs["text"].default == "hi"
    assert inputs["flag"].default is False
    assert inputs["mode"].options == ("a", "b", "c") and inputs["mode"].default == "b"
    assert inputs["image"].default is None and inputs["image"].options is None
    assert inputs["seed"].extra == {"control_after_generate": True}
    assert inputs["seed"].frontend_only_values == 1
    assert inputs["later"].lazy is True
    assert inputs["linked_only"].force_input is True and not inputs["linked_only"].is_widget
    assert inputs["picked"].options == ("x", "y")
    assert inputs["count"].to_object_info() == ["INT", {"default": 3, "min": 0, "max": 10, "step": 1, "tooltip": "how many"}]


def test_node_level_metadata(folders):
    spec = Everything.definition.spec(folders)
    assert spec.class_type == "Everything"
    assert spec.display_name == "Everything"
    assert spec.category == "test/native"
    assert spec.description == "Shows every annotation kind."
    assert spec.python_module == __name__
    assert spec.output_node is False
    assert [(o.name, o.type, o.is_list) for o in spec.outputs] == [("picture", "IMAGE", False), ("INT", "INT", False)]
    assert Everything.definition.class_type == "Everything"
    assert Everything.definition.not_idempotent is False


def test_decorator_options():
    @node(class_type="Renamed", display_name="Nice Name", output_node=True, not_idempotent=True, version="7",
          description="explicit", deprecated=True, experimental=True, outputs=[Output("INT", is_list=True, tooltip="t")])
    class Whatever(Node):
        """docstring"""

        def execute(self, ctx):
            return [1]

    spec = Whatever.definition.spec(Folders("."))
    assert (spec.class_type, spec.display_name, spec.version, spec.description) == ("Renamed", "Nice Name", "7", "explicit")
    assert spec.output_node and spec.deprecated and spec.experimental
    assert spec.outputs[0].is_list and spec.outputs[0].tooltip == "t" and spec.outputs[0].name == "INT"
    assert Whatever.definition.not_idempotent is True
    assert Whatever.definition.class_type == "Renamed"


def test_options_provider_is_evaluated_per_spec_call(tmp_path):
    def listing(folders: Folders):
        return sorted(p.name for p in folders.root("input").iterdir())

    @node(outputs=["STRING"])
    class PickFile(Node):
        name: str = Input(options=listing)

        def execute(self, ctx):
            return self.name

    folders = Folders(tmp_path)
    assert PickFile.definition.spec(folders).input("name").options == ()
    (folders.root("input") / "b.png").write_bytes(b"")
    (folders.root("input") / "a.png").write_bytes(b"")
    first = PickFile.definition.spec(folders).input("name")
    assert first.type == "COMBO" and first.options == ("a.png", "b.png")
    (folders.root("input") / "c.png").write_bytes(b"")
    assert PickFile.definition.spec(folders).input("name").options == ("a.png", "b.png", "c.png")
    other = Folders(tmp_path / "elsewhere")
    assert PickFile.definition.spec(other).input("name").options == ()


def test_validated_by_node_and_hooks(make_context):
    @node(outputs=["STRING"])
    class Checked(Node):
        name: str = Input("a", options=["a"], validated_by_node=True)
        other: int = 0

        def check_inputs(self, ctx):
            return None if self.name.endswith(".png") else f"bad name {self.name}"

        def fingerprint(self, ctx):
            return ("fp", self.name)

        def execute(self, ctx):
            return self.name

    definition = Checked.definition
    assert definition.validated_inputs == frozenset({"name"})
    ctx = make_context()
    assert definition.validate({"name": "x.png"}, {}, ctx) is None
    assert definition.validate({"name": "x.txt"}, {}, ctx) == "bad name x.txt"
    assert definition.fingerprint({"name": "q"}, ctx) == ("fp", "q")
    # defaults of the base class mean "nothing to add"
    assert Everything.definition.fingerprint({}, ctx) is None
    assert Everything.definition.validate({}, {}, ctx) is None
    assert Everything.definition.validated_inputs == frozenset()


@node(outputs=["INT"])
class One(Node):
    value: Any = None

    def execute(self, ctx):
        return self.value


@node(outputs=["INT", "INT"])
class Two(Node):
    value: Any = None

    def execute(self, ctx):
        return self.value


@node(output_node=True)
class NoOutputs(Node):
    value: Any = None

    def execute(self, ctx):
        return self.value


def test_single_output_is_wrapped(make_context):
    assert One.definition.call({"value": 5}, make_context()) == NodeResult(values=(5,))
    # a tuple for a single output is the value itself, not unpacked
    assert One.definition.call({"value": (1, 2)}, make_context()) == NodeResult(values=((1, 2),))


def test_tuple_for_several_outputs(make_context):
    assert Two.definition.call({"value": (1, 2)}, make_context()) == NodeResult(values=(1, 2))


@pytest.mark.parametrize("value", [(1,), (1, 2, 3), [1, 2], 7])
def test_wrong_arity_raises(make_context, value):
    with pytest.raises(TypeError, match="tuple of 2 values"):
        Two.definition.call({"value": value}, make_context())


def test_no_outputs(make_context):
    assert NoOutputs.definition.call({}, make_context()) == NodeResult()
    with pytest.raises(TypeError, match="no outputs"):
        NoOutputs.definition.call({"value": 3}, make_context())


def test_node_result_passes_through(make_context):
    result = NodeResult(values=(1, 2), ui={"text": ["x"]})
    assert Two.definition.call({"value": result}, make_context()) is result


def test_missing_optional_input_uses_field_default(make_context):
    @node(outputs=["INT"])
    class Defaults(Node):
        a: int = 4
        b: Optional[int] = Input(9, optional=True)

        def execute(self, ctx):
            return self.a * 10 + self.b

    assert Defaults.definition.call({}, make_context()).values == (49,)
    assert Defaults.definition.call({"b": 1}, make_context()).values == (41,)


def test_input_is_list_fields():
    @node(outputs=["INT"], input_is_list=True)
    class Listy(Node):
        values: list[int]
        images: list[Image]

        def execute(self, ctx):
            return 0

    spec = Listy.definition.spec(Folders("."))
    assert spec.input_is_list is True
    assert [(i.name, i.type) for i in spec.inputs] == [("values", "INT"), ("images", "IMAGE")]

    with pytest.raises(TypeError, match="list"):
        @node(input_is_list=True)
        class NotListy(Node):
            value: int

    with pytest.raises(TypeError, match="cannot map"):
        @node()
        class ListWithoutFlag(Node):
            values: list[int]


@pytest.mark.parametrize("annotation", [dict, torch.Tensor, int | str, object])
def test_bad_annotation_raises_at_decoration(annotation):
    namespace = {"__annotations__": {"field": annotation}, "__module__": __name__}
    cls = type(Node)("Bad", (Node,), namespace)
    with pytest.raises(TypeError, match="input 'field': cannot map type"):
        node()(cls)


def test_decorator_rejects_non_nodes():
    with pytest.raises(TypeError, match="subclass of Node"):
        node()(int)


def test_undecorated_node_is_rejected_by_registry():
    class Plain(Node):
        def execute(self, ctx):
            return None

    class Subclass(One):  # inherits One.definition but is not decorated itself
        pass

    module = types.ModuleType("pack")
    module.NODES = [Plain, Subclass, One]
    registry = Registry()
    assert registry.add_module(module, source="pack") == ["One"]
    assert [(e.node, e.source) for e in registry.errors] == [(None, "pack"), (None, "pack")]
    assert "Plain is a Node but lacks the @node decorator" in registry.errors[0].message
    assert "Subclass is a Node but lacks the @node decorator" in registry.errors[1].message
    assert all(e.traceback for e in registry.errors)
    assert "Plain" not in registry and "Subclass" not in registry


def test_mapping_key_must_match_native_class_type():
    module = types.ModuleType("pack")
    module.NODE_CLASS_MAPPINGS = {"Other": One, "One": One}
    registry = Registry()
    assert registry.add_module(module, source="pack") == ["One"]
    assert len(registry.errors) == 1 and registry.errors[0].node == "Other"
    assert "differs from the node's class_type" in registry.errors[0].message


def test_hooks_see_linked_inputs_as_none(tmp_path):
    """fingerprint/check_inputs run before producers: linked fields are None, absent ones default."""
    seen = []

    @node(outputs=["INT"])
    class Hooked(Node):
        linked: int = Input(0, force_input=True)
        absent: int | None = Input(7)

        def fingerprint(self, ctx):
            seen.append(("fingerprint", self.linked, self.absent))
            return 1

        def check_inputs(self, ctx):
            seen.append(("check", self.linked, self.absent))
            return None

        def execute(self, ctx):
            return self.linked

    @node(outputs=["INT"])
    class One(Node):
        def execute(self, ctx):
            return 1

    @node(outputs=[], output_node=True)
    class Sink(Node):
        value: Any

        def execute(self, ctx):
            return None

    registry = Registry()
    pack = types.ModuleType("hooked")
    pack.NODES = [Hooked, One, Sink]
    registry.add_module(pack, "test")
    from engine.executor import Executor

    result = Executor(registry, Folders(tmp_path)).execute(
        {"1": {"class_type": "One", "inputs": {}}, "2": {"class_type": "Hooked", "inputs": {"linked": ["1", 0]}},
         "3": {"class_type": "Sink", "inputs": {"value": ["2", 0]}}}
    )
    assert result.ok, result.failures
    assert seen == [("check", None, 7), ("fingerprint", None, 7)]
