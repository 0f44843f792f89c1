"""Exceptions nodes raise to report bad input readably."""

from __future__ import annotations


class NodeInputError(ValueError):
    """A node rejects the value of one of its inputs; the message names the input and the reason."""

    def __init__(self, input_name: str, reason: str) -> None:
        super().__init__(f"input '{input_name}': {reason}")
        self.input_name = input_name
        self.reason = reason
