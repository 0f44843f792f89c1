"""ComfyUI's prompt weighting syntax."""

from __future__ import annotations

import pytest

from diffusion.prompt_weights import (
    escape,
    parse_parentheses,
    split_embedding_references,
    token_weights,
    unescape,
    weighted_segments,
)


def test_parse_parentheses_top_level_items():
    assert parse_parentheses("a (b (c)) d") == ["a ", "(b (c))", " d"]
    assert parse_parentheses("(a)(b)") == ["(a)", "(b)"]
    assert parse_parentheses("plain") == ["plain"]
    assert parse_parentheses("") == []


def test_parse_parentheses_unbalanced():
    assert parse_parentheses("a (b") == ["a ", "(b"]
    assert parse_parentheses("a) (b)") == ["a) (b)"]  # the stray ")" leaves the depth at -1
    assert parse_parentheses("((a)") == ["((a)"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("(a)", [("a", 1.1)]),
        ("((a))", [("a", 1.1 * 1.1)]),
        ("(a:1.3)", [("a", 1.3)]),
        ("((a:0.5))", [("a", 0.5)]),  # an absolute weight replaces the outer one
        ("x (a (b:0.5)) y", [("x ", 1.0), ("a ", 1.1), ("b", 0.5), (" y", 1.0)]),
        ("(a:b)", [("a:b", 1.1)]),  # no number after the colon: kept as text
        ("(a:1:2)", [("a:1", 2.0)]),  # the last colon counts
        ("(:2)", [(":2", 1.1)]),  # a colon at position 0 is text
        ("(a: 1.5 )", [("a", 1.5)]),
        ("()", []),
        ("(", [("(", 1.0)]),
        ("a)", [("a)", 1.0)]),
    ],
)
def test_weights(prompt, expected):
    assert token_weights(escape(prompt), 1.0) == expected


def test_escaped_parentheses_are_literal():
    assert weighted_segments(r"\(a\) (b \(c\):1.2)") == [("(a) ", 1.0), ("b (c)", 1.2)]
    assert weighted_segments(r"(\(x\))") == [("(x)", 1.1)]
    assert unescape(escape(r"\(\)")) == "()"


def test_split_embedding_references():
    assert split_embedding_references("a embedding:foo cat") == ["a", "embedding:foo cat"]
    assert split_embedding_references("embedding:foo, x\nembedding:bar") == ["embedding:foo, x", "embedding:bar"]
    assert split_embedding_references("a,embedding:foo") == ["a,embedding:foo"]  # needs a space or newline before
    assert split_embedding_references(" embedding:x") == ["embedding:x"]
    assert split_embedding_references("") == []
