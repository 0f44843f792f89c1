"""Nodes the server tests queue (loaded as a plugin folder, or added to a test runtime).

`Sleep` stands in for slow work: it sleeps in 50 ms steps with progress, then appends its label
to `output/finished.txt`, so a test can count how often a prompt really completed. `Gate` runs
until the test opens it, for tests that need a prompt to be running at a known moment.
"""

from __future__ import annotations

import os
import threading
import time

from engine import Input, Node, NodeContext, NodeResult, node

#: gate name → event; a Gate node waits for its event
GATES: dict[str, threading.Event] = {}


#: gate name → event set once a Gate node with that name has started waiting
ENTERED: dict[str, threading.Event] = {}


def gate(name: str) -> threading.Event:
    return GATES.setdefault(name, threading.Event())


def entered(name: str) -> threading.Event:
    return ENTERED.setdefault(name, threading.Event())


@node(display_name="Sleep", category="test", output_node=True, outputs=[])
class Sleep(Node):
    """Sleep `seconds` in steps (progress after each), then record `label` in output/finished.txt."""

    label: str = Input("")
    seconds: float = Input(0.0, min=0.0, max=600.0)

    def execute(self, ctx: NodeContext) -> NodeResult:
        steps = max(1, round(self.seconds / 0.05))
        for i in range(steps):
            time.sleep(self.seconds / steps)
            ctx.progress(i + 1, steps)
        with open(ctx.folders.root("output") / "finished.txt", "a", encoding="utf-8") as f:
            f.write(self.label + "\n")
            f.flush()
            os.fsync(f.fileno())
        return NodeResult(ui={"text": [self.label]})


@node(display_name="Gate", category="test", output_node=True, outputs=[])
class Gate(Node):
    """Report progress every 10 ms until the test opens gate `name` (gives up after 30 s)."""

    name: str = Input("")

    def execute(self, ctx: NodeContext) -> NodeResult:
        event = gate(self.name)
        entered(self.name).set()
        for i in range(3000):
            if event.wait(0.01):
                break
            ctx.progress(i % 100 + 1, 100)
        return NodeResult(ui={"text": [self.name]})


NODES = [Sleep, Gate]
