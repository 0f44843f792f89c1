"""Prompt syntax as ComfyUI reads it: `(text)`, `(text:1.3)`, `\\(` escapes, `embedding:name` references.

`(text)` multiplies the weight by 1.1 per level of nesting; `(text:w)` sets the weight to exactly
`w` (replacing the outer weight). There is no `[text]` de-emphasis and no `BREAK`.
"""

from __future__ import annotations

import re

EMBEDDING_PREFIX = "embedding:"
_EMBEDDING_SPLIT = re.compile(f" {EMBEDDING_PREFIX}|\n{EMBEDDING_PREFIX}")
_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))
EMPHASIS = 1.1


def escape(text: str) -> str:
    """Hide escaped parentheses from the parser behind private placeholders."""
    for literal, placeholder in _ESCAPES:
        text = text.replace(literal, placeholder)
    return text


def unescape(text: str) -> str:
    """Turn the placeholders left by `escape` into literal parentheses."""
    for literal, placeholder in _ESCAPES:
        text = text.replace(placeholder, literal[1])
    return text


def parse_parentheses(text: str) -> list[str]:
    """Split `text` into top-level items: plain runs and parenthesised groups (with their parentheses)."""
    items: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    items.append(current)
                current = "("
            else:
                current += char
            depth += 1
        elif char == ")":
            depth -= 1
            current += char
            if depth == 0:
                items.append(current)
                current = ""
        else:
            current += char
    if current:
        items.append(current)
    return items


def token_weights(text: str, weight: float) -> list[tuple[str, float]]:
    """Weighted segments of an escaped prompt, each still escaped."""
    segments: list[tuple[str, float]] = []
    for item in parse_parentheses(text):
        if len(item) < 2 or item[0] != "(" or item[-1] != ")":
            segments.append((item, weight))
            continue
        inner = item[1:-1]
        inner_weight = weight * EMPHASIS
        colon = inner.rfind(":")
        if colon > 0:
            try:
                inner_weight = float(inner[colon + 1 :])
                inner = inner[:colon]
            except ValueError:
                pass
        segments.extend(token_weights(inner, inner_weight))
    return segments


def weighted_segments(prompt: str) -> list[tuple[str, float]]:
    """The prompt's segments with their weights, escapes resolved to literal parentheses."""
    return [(unescape(text), weight) for text, weight in token_weights(escape(prompt), 1.0)]


def split_embedding_references(text: str) -> list[str]:
    """Cut text before each ` embedding:` / newline `embedding:`; empty pieces are dropped."""
    first, *rest = _EMBEDDING_SPLIT.split(text)
    return [piece for piece in (first, *(EMBEDDING_PREFIX + r for r in rest)) if piece]
