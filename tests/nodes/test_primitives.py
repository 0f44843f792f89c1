"""Primitive value nodes return their widget value unchanged."""

import sys

import pytest

from nodes.primitives import PrimitiveBoolean, PrimitiveFloat, PrimitiveInt, PrimitiveString, PrimitiveStringMultiline


@pytest.mark.parametrize(
    "cls, value",
    [
        (PrimitiveInt, -(2**40)),
        (PrimitiveFloat, 2.5),
        (PrimitiveString, "a cat"),
        (PrimitiveStringMultiline, "line 1\nline 2"),
        (PrimitiveBoolean, True),
    ],
)
def test_primitive_returns_its_value(cls, value, make_context):
    assert cls(value=value).execute(make_context()) == value


def test_primitive_specs(folders):
    int_value = PrimitiveInt.definition.spec(folders).inputs[0]
    assert (int_value.type, int_value.default, int_value.min, int_value.max) == ("INT", 0, -sys.maxsize, sys.maxsize)
    assert int_value.extra == {"control_after_generate": True}
    float_value = PrimitiveFloat.definition.spec(folders).inputs[0]
    assert (float_value.type, float_value.min, float_value.max) == ("FLOAT", -sys.maxsize, sys.maxsize)
    assert PrimitiveStringMultiline.definition.spec(folders).inputs[0].multiline is True
    assert PrimitiveString.definition.spec(folders).inputs[0].multiline is False
    assert PrimitiveBoolean.definition.spec(folders).inputs[0].default is False
    names = {cls.definition.spec(folders).display_name for cls in (PrimitiveInt, PrimitiveFloat, PrimitiveString, PrimitiveStringMultiline, PrimitiveBoolean)}
    assert names == {"Int", "Float", "String", "String (Multiline)", "Boolean"}
    assert {o.type for o in PrimitiveBoolean.definition.spec(folders).outputs} == {"BOOLEAN"}
