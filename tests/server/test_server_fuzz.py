"""Hypothesis fuzzing of `POST /prompt` against one live server per test.

Every answer is a 200 for a prompt that really is valid (an oracle in each group says which are)
or a 4xx whose JSON body names the problem (`error.message`, `node_errors`); never a 5xx or a
dropped connection. After each group the server still answers reads and runs a good prompt to the
end. Only model-free nodes are used (1x1 images, `Sleep` for 0 seconds), so accepted prompts are
cheap to run.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from http_api.prompts import MAX_JSON_DEPTH
from tests.server.helpers import sleep_prompt, wait_for

FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
GOOD_BODY = json.dumps({"prompt": sleep_prompt("cut")}).encode()

# ---- requests and the contract every answer keeps ---------------------------------------------------


def post(server, body: Any) -> Any:
    """POST `body` to /prompt: bytes as they are, anything else as JSON (NaN and Infinity included)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.call("POST", "/prompt", raw=raw, headers={"Content-Type": "application/json"})


def check(reply, valid: bool) -> dict[str, Any]:
    """A 200 exactly when the prompt is valid, else a 4xx; JSON either way. Returns the body."""
    assert reply.status == 200 or 400 <= reply.status < 500, (reply.status, reply.body[:500])
    assert reply.headers.get_content_type() == "application/json"
    body = json.loads(reply.body)
    assert isinstance(body["node_errors"], dict)
    if valid:
        assert reply.status == 200, body
        assert isinstance(body["prompt_id"], str) and isinstance(body["number"], (int, float))
    else:
        assert reply.status != 200, f"accepted an invalid prompt: {body}"
        assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip()
    return body


def assert_still_serving(server) -> None:
    """Reads answer, and a good prompt is accepted and runs to the end."""
    assert "queue_remaining" in server.get("/prompt").json()["exec_info"]
    assert server.get("/queue").status == 200 and server.get("/history").status == 200
    label = f"alive-{uuid.uuid4().hex}"
    prompt_id = check(post(server, {"prompt": sleep_prompt(label)}), valid=True)["prompt_id"]
    entry = wait_for(lambda: server.get(f"/history/{prompt_id}").json().get(prompt_id))
    assert entry["status"]["status_str"] == "success" and entry["outputs"] == {"1": {"text": [label]}}


# ---- prompts ------------------------------------------------------------------------------------------


def image_prompt() -> dict[str, Any]:
    """A 1x1 image, scaled by 1, previewed: nodes "1" → "2" → "3"."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 1, "height": 1, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 1.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


def with_input(prompt: dict[str, Any], node_id: str, name: str, value: Any) -> dict[str, Any]:
    prompt[node_id]["inputs"][name] = value
    return prompt


# ---- the oracle: what validation must accept ----------------------------------------------------------


def is_link(value: Any) -> bool:
    """`[str, whole number]` is a link; in these prompts no link into a widget is ever a good one."""
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
        return False
    slot = value[1]
    return slot.is_integer() if isinstance(slot, float) else isinstance(slot, int) and not isinstance(slot, bool)


def literal(value: Any) -> Any:
    """The value a widget receives: `{"__value__": v}` is v."""
    return value["__value__"] if isinstance(value, dict) and set(value) == {"__value__"} else value


def int_between(low: int, high: int) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        try:
            return low <= int(value) <= high
        except (TypeError, ValueError, OverflowError):
            return False

    return accepts


def float_between(low: float, high: float) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        try:
            return low <= float(value) <= high  # False for NaN
        except (TypeError, ValueError, OverflowError):
            return False

    return accepts


def any_text(value: Any) -> bool:
    return True


def option_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: value in options


#: (prompt, node id, input name, which values the input accepts)
WIDGETS = [
    (image_prompt, "1", "width", int_between(1, 16384)),
    (image_prompt, "1", "height", int_between(1, 16384)),
    (image_prompt, "1", "color", int_between(0, 0xFFFFFF)),
    (image_prompt, "2", "scale_by", float_between(0.01, 8.0)),
    (image_prompt, "2", "upscale_method", option_of(UPSCALE_METHODS)),
    (lambda: sleep_prompt("x"), "1", "label", any_text),
]


def widget_accepts(accepts: Callable[[Any], bool], value: Any) -> bool:
    return not is_link(value) and accepts(literal(value))


def preview_chain_is_valid(prompt: dict[str, Any], preview: str) -> bool:
    """Follow a preview's image links back; valid when they reach the EmptyImage "0" without a loop."""
    seen: set[str] = set()
    node_id = prompt[preview]["inputs"]["images"][0]
    while node_id != "0":
        if node_id in seen:
            return False
        seen.add(node_id)
        node_id = prompt[node_id]["inputs"]["image"][0]
    return True


# ---- strategies ---------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12
)
huge_numbers = st.sampled_from([10**30, -(10**30), 2**63, -(2**63) - 1, 10**300, 10**4000, 1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324])
numeric_text = st.sampled_from(["12", " 7 ", "1e3", "0x10", "1_000", "nan", "inf", "-inf", "NaN", "", "true", "0.5", "9" * 5000])
link_like = st.tuples(st.sampled_from(["1", "2", "3", "99", ""]) | json_scalars, st.integers(-2, 8) | st.floats() | json_scalars).map(list)
odd_values = st.one_of(
    json_scalars,
    huge_numbers,
    numeric_text,
    st.sampled_from(UPSCALE_METHODS),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    json_values.map(lambda value: {"__value__": value}),
    link_like,
)


malformed_bodies = st.one_of(
    st.binary(max_size=500),
    st.text(max_size=200).map(str.encode),
    st.integers(0, len(GOOD_BODY) - 1).map(lambda length: GOOD_BODY[:length]),
    st.sampled_from([GOOD_BODY + b"x", GOOD_BODY.replace(b'"', b"'"), GOOD_BODY.replace(b"cut", b"\xff\xfe"), b"{" * 50, b"NaN", b"{}"]),
)


#: class types no registered node has: unknown names, near misses, JSON that is no string
odd_class_types = st.one_of(
    st.sampled_from(["sleep", "SLEEP", " Sleep", "Sleep ", "", "NoSuchNode", "Sleep\x00"]),
    st.text(max_size=30).map(lambda text: f"Unknown{text}"),
    json_values.filter(lambda value: not isinstance(value, str)),
)


@st.composite
def wrongly_shaped_bodies(draw) -> Any:
    """Valid JSON that is no usable request: wrong top level, wrong `prompt`, nodes or class types."""
    kind = draw(st.sampled_from(["top", "prompt", "node", "class_type", "no_class_type", "inputs", "meta"]))
    if kind == "top":
        return draw(json_values.filter(lambda value: not isinstance(value, dict)))
    if kind == "prompt":
        return {"prompt": draw(json_values.filter(lambda value: not isinstance(value, dict)))}
    good = sleep_prompt("ok")
    if kind == "node":
        good["2"] = draw(json_values.filter(lambda value: not isinstance(value, dict)))
    elif kind == "class_type":
        good["2"] = {"class_type": draw(odd_class_types), "inputs": {}}
    elif kind == "no_class_type":
        good["2"] = {"inputs": {"label": "x", "seconds": 0}}
    elif kind == "inputs":
        good["1"]["inputs"] = draw(json_values.filter(lambda value: not isinstance(value, dict)))
    else:
        good["1"]["_meta"] = draw(json_values.filter(lambda value: value is not None and not isinstance(value, dict)))
    return {"prompt": good}


@st.composite
def image_graphs(draw) -> dict[str, Any]:
    """An EmptyImage "0", transforms "1".."n" each linked to a random node (loops and self-links
    included), and one or two previews "p1", "p2" of random nodes."""
    count = draw(st.integers(1, 5))
    prompt = {"0": image_prompt()["1"]}
    for index in range(1, count + 1):
        source = [str(draw(st.integers(0, count))), 0]
        if draw(st.booleans()):
            prompt[str(index)] = {"class_type": "ImageInvert", "inputs": {"image": source}}
        else:
            prompt[str(index)] = {"class_type": "ImageScaleBy", "inputs": {"image": source, "upscale_method": "area", "scale_by": 1.0}}
    for preview in ("p1", "p2")[: draw(st.integers(1, 2))]:
        prompt[preview] = {"class_type": "PreviewImage", "inputs": {"images": [str(draw(st.integers(0, count))), 0]}}
    return prompt


def cycle_of(length: int) -> dict[str, Any]:
    """Transforms "1".."length" feeding each other in a ring, previewed from "1"."""
    prompt = {str(i): {"class_type": "ImageInvert", "inputs": {"image": [str(i % length + 1), 0]}} for i in range(1, length + 1)}
    return {"0": image_prompt()["1"], **prompt, "p1": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


#: where deep nesting goes, and how many levels the body has above it
NESTING_PLACES = {"body": 0, "prompt": 1, "extra_data": 2, "class_type": 3, "label": 4, "seconds": 4}


def nested_text(depth: int, kind: str) -> str:
    return "[" * depth + "0" + "]" * depth if kind == "list" else '{"a":' * depth + "0" + "}" * depth


def nesting_body(place: str, nested: str) -> bytes:
    """A request (as text, since `json.dumps` cannot write it) with `nested` at `place`."""
    if place == "body":
        return nested.encode()
    if place == "prompt":
        return f'{{"prompt": {nested}}}'.encode()
    if place == "extra_data":
        return f'{{"prompt": {json.dumps(sleep_prompt("deep"))}, "extra_data": {{"x": {nested}}}}}'.encode()
    if place == "class_type":
        return f'{{"prompt": {{"1": {{"class_type": {nested}}}}}}}'.encode()
    label = nested if place == "label" else '"deep"'
    seconds = nested if place == "seconds" else "0"
    return f'{{"prompt": {{"1": {{"class_type": "Sleep", "inputs": {{"label": {label}, "seconds": {seconds}}}}}}}}}'.encode()


def nesting_is_valid(place: str, depth: int) -> bool:
    """Nesting within the limit is fine as a label (any text) or in extra_data, wrong elsewhere."""
    return depth + NESTING_PLACES[place] <= MAX_JSON_DEPTH and place in ("label", "extra_data")


@st.composite
def field_values(draw, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> tuple[str, Any]:
    """("absent", None), ("good", value) or ("bad", value) for one top-level field."""
    which = draw(st.sampled_from(["absent", "good", "bad"]))
    return which, None if which == "absent" else draw(good if which == "good" else bad)


not_a_string = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
TOP_LEVEL_FIELDS = {
    "number": field_values(
        st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["abc", "", math.nan, math.inf, -math.inf, 1e400, 10**400]) | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),
    "front": field_values(st.booleans(), st.sampled_from(["maybe", 2, -1, 1.5, None, [], {}, [True]])),
    "prompt_id": field_values(st.just("fresh"), st.sampled_from(["", "x" * 300]) | not_a_string),
    "client_id": field_values(st.text(max_size=40), st.just("c" * 300) | not_a_string),
    "extra_data": field_values(st.dictionaries(st.text(max_size=10), json_values, max_size=4), st.none() | json_scalars | st.lists(json_scalars, max_size=3)),
    "partial_execution_targets": field_values(
        st.sampled_from([["1"], [], None]),
        st.sampled_from(["1", ["99"], ["1", "99"], [1], [None], {}, 5, [["1"]], [""]]),
    ),
}


# ---- the groups ---------------------------------------------------------------------------------------


def test_malformed_bodies_are_refused(server) -> None:
    @FUZZ
    @given(malformed_bodies)
    @example(b"\xff\xfe{")
    @example(b"[" * 100_000)
    def attempt(raw: bytes) -> None:
        check(post(server, raw), valid=False)

    attempt()
    assert_still_serving(server)


def test_wrongly_shaped_json_is_refused(server) -> None:
    @FUZZ
    @given(wrongly_shaped_bodies())
    @example({"prompt": {"1": {"class_type": ["Sleep"], "inputs": {}}}})  # was a 500: unhashable class_type
    @example({"prompt": {"1": {"class_type": {"a": 1}, "inputs": {}}}})
    @example({"prompt": None})
    def attempt(body: Any) -> None:
        check(post(server, body), valid=False)

    attempt()
    assert_still_serving(server)


def test_widget_values_of_every_type_are_accepted_exactly_when_they_convert(server) -> None:
    @FUZZ
    @given(st.sampled_from(WIDGETS), odd_values)
    @example(WIDGETS[3], math.nan)  # was accepted: NaN passes every min/max comparison
    @example(WIDGETS[0], 10**4000)
    @example(WIDGETS[1], ["1", 1.5])
    def attempt(widget, value: Any) -> None:
        make_prompt, node_id, name, accepts = widget
        valid = widget_accepts(accepts, value)
        body = check(post(server, {"prompt": with_input(make_prompt(), node_id, name, value)}), valid)
        if valid:
            assert body["node_errors"] == {}
        else:
            errors = body["node_errors"][node_id]["errors"]
            assert errors and (is_link(value) or name in {e["extra_info"].get("input_name") for e in errors})

    attempt()
    assert_still_serving(server)


def test_bad_links_into_sockets_are_refused(server) -> None:
    @FUZZ
    @given(link_like | json_values.map(lambda value: {"__value__": [value, 0]}))
    @example(["1", math.inf])  # was a 500: int(inf) while parsing the link
    @example(["1", 1.5])  # was read as slot 1
    @example(["1", True])  # was accepted as a constant image
    @example([["1"], 0])
    @example(["99", 0])
    @example(["1", 7])
    @example([1, 0])
    @example(["1", -1])
    @example(["1", 0.0])
    def attempt(link: Any) -> None:
        prompt = with_input(image_prompt(), "3", "images", link)
        valid = is_link(link) and link[0] in ("1", "2") and link[1] == 0  # both give an IMAGE at slot 0
        body = check(post(server, {"prompt": prompt}), valid)
        if not valid:
            assert body["node_errors"]["3"]["errors"][0]["type"] in ("bad_linked_input", "dependency_cycle")

    attempt()
    assert_still_serving(server)


def test_cycles_and_self_links_are_refused_and_other_outputs_still_run(server) -> None:
    @FUZZ
    @given(image_graphs())
    @example(cycle_of(1))
    @example(cycle_of(2))
    @example(cycle_of(3))
    def attempt(prompt: dict[str, Any]) -> None:
        previews = [node_id for node_id in prompt if node_id.startswith("p")]
        valid = {preview: preview_chain_is_valid(prompt, preview) for preview in previews}
        body = check(post(server, {"prompt": prompt}), any(valid.values()))
        if not all(valid.values()):
            assert any(e["type"] == "dependency_cycle" for entry in body["node_errors"].values() for e in entry["errors"])

    attempt()
    assert_still_serving(server)


def test_deep_nesting_is_refused_beyond_the_limit(server) -> None:
    @settings(FUZZ, max_examples=100)
    @given(st.sampled_from(sorted(NESTING_PLACES)), st.integers(1, 400) | st.integers(400, 100_000), st.sampled_from(["list", "object"]))
    @example("label", 975, "list")  # was a 500 on every later GET /history: stored, then too deep to answer
    @example("seconds", 975, "list")
    @example("body", 100_000, "list")
    @example("extra_data", 10_000, "object")
    def attempt(place: str, depth: int, kind: str) -> None:
        check(post(server, nesting_body(place, nested_text(depth, kind))), nesting_is_valid(place, depth))

    attempt()
    assert_still_serving(server)


def test_long_strings_anywhere(server) -> None:
    places = {
        "label": any_text,
        "seconds": float_between(0.0, 600.0),
        "class_type": lambda value: False,
        "node_id": any_text,
        "input_name": any_text,
        "prompt_id": lambda value: False,
        "client_id": lambda value: False,
    }

    @settings(FUZZ, max_examples=40)
    @given(st.sampled_from(sorted(places)), st.integers(10_000, 2_000_000), st.sampled_from(["x", "0", "9", "é", "\u2192", "\x00", '"', "\\"]))
    def attempt(place: str, length: int, char: str) -> None:
        text = char * length
        body: dict[str, Any] = {"prompt": sleep_prompt("long")}
        node = body["prompt"]["1"]
        if place in ("label", "seconds"):
            node["inputs"][place] = text
        elif place == "class_type":
            node["class_type"] = text
        elif place == "node_id":
            body["prompt"] = {text: node}
        elif place == "input_name":
            node["inputs"][text] = 1
        else:
            body[place] = text
        check(post(server, body), places[place](text))

    attempt()
    assert_still_serving(server)


@st.composite
def many_node_prompts(draw) -> tuple[dict[str, Any], bool]:
    """Thousands of nodes: a chain of ImageInverts (valid, or broken by a link to a missing node),
    or islands of constants with no output at all."""
    count = draw(st.integers(1000, 2500))
    kind = draw(st.sampled_from(["chain", "broken chain", "islands"]))
    if kind == "islands":
        return {str(i): {"class_type": "PrimitiveInt", "inputs": {"value": i}} for i in range(count)}, False
    prompt = {"0": image_prompt()["1"]}
    for i in range(1, count):
        prompt[str(i)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}}
    prompt["out"] = {"class_type": "PreviewImage", "inputs": {"images": [str(count - 1), 0]}}
    if kind == "broken chain":
        prompt[str(draw(st.integers(1, count - 1)))]["inputs"]["image"] = ["missing", 0]
    return prompt, kind == "chain"


def test_thousands_of_nodes(server) -> None:
    @settings(FUZZ, max_examples=12)
    @given(many_node_prompts())
    def attempt(case: tuple[dict[str, Any], bool]) -> None:
        prompt, valid = case
        check(post(server, {"prompt": prompt}), valid)

    attempt()
    assert_still_serving(server)


def test_odd_top_level_fields(server) -> None:
    @FUZZ
    @given(st.fixed_dictionaries(TOP_LEVEL_FIELDS))
    @example({**{name: ("absent", None) for name in TOP_LEVEL_FIELDS}, "partial_execution_targets": ("bad", ["99"])})
    @example({**{name: ("absent", None) for name in TOP_LEVEL_FIELDS}, "number": ("bad", math.nan)})
    def attempt(fields: dict[str, tuple[str, Any]]) -> None:
        body: dict[str, Any] = {"prompt": sleep_prompt("fields")}
        for name, (which, value) in fields.items():
            if which != "absent":
                body[name] = f"id-{uuid.uuid4().hex}" if (name, which) == ("prompt_id", "good") else value
        check(post(server, body), valid=all(which != "bad" for which, _ in fields.values()))

    attempt()
    assert_still_serving(server)
