"""Engine overhead on a synthetic 1,000-node graph: validate + plan, per-node dispatch, cached re-run.

Every node does trivial arithmetic, so the times measure the engine itself. The reference is
the same node functions called directly in topological order (no validation, cache, events),
measured in the same run. Targets: validate + plan ≤ 50 ms, dispatch ≤ 0.1 ms per node.

    python bench/engine_overhead.py [--nodes 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from engine import Input, Node, NodeContext, NodeResult, node
from engine.executor import Executor
from engine.folders import Folders
from engine.plan import ancestors_of, dependency_graph, topological_order
from engine.registry import Registry


@node(category="bench", outputs=["INT"])
class Seed(Node):
    """A constant."""

    value: int = Input(0, min=0, max=1_000_000)

    def execute(self, ctx: NodeContext) -> int:
        return self.value


@node(category="bench", outputs=["INT"])
class Mix(Node):
    """Combine two integers."""

    a: int = Input(0, force_input=True)
    b: int = Input(0, force_input=True)
    salt: int = Input(1, min=0, max=1000)

    def execute(self, ctx: NodeContext) -> int:
        return (self.a * 31 + self.b + self.salt) % 1_000_003


@node(category="bench", outputs=[], output_node=True)
class Sink(Node):
    """An output node."""

    value: int = Input(0, force_input=True)

    def execute(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ui={"value": [self.value]})


def synthetic_prompt(count: int, seed: int = 0) -> dict[str, Any]:
    """A DAG where every node feeds an output: 10% constants, then nodes that each mix their
    predecessor with a random earlier node (the first ones take one constant each), 1% sinks."""
    rng = random.Random(seed)
    prompt: dict[str, Any] = {}
    n_seeds = max(2, count // 10)
    n_sinks = max(1, count // 100)
    for i in range(n_seeds):
        prompt[str(i)] = {"class_type": "Seed", "inputs": {"value": i}}  # distinct, so nothing dedupes
    for i in range(n_seeds, count - n_sinks):
        a, b = i - 1, (i - n_seeds if i < 2 * n_seeds else rng.randrange(i))
        prompt[str(i)] = {"class_type": "Mix", "inputs": {"a": [str(a), 0], "b": [str(b), 0], "salt": rng.randrange(1000)}}
    for i in range(count - n_sinks, count):
        prompt[str(i)] = {"class_type": "Sink", "inputs": {"value": [str(i - n_sinks), 0]}}
    return prompt


def direct_run(prompt: dict[str, Any]) -> None:
    """The reference: the same node functions called in order, with no engine around them."""
    values: dict[str, Any] = {}
    classes = {"Seed": Seed, "Mix": Mix, "Sink": Sink}
    for node_id in sorted(prompt, key=int):
        spec = prompt[node_id]
        inputs = {k: values[v[0]] if isinstance(v, list) else v for k, v in spec["inputs"].items()}
        values[node_id] = classes[spec["class_type"]].model_construct(**inputs).execute(None)  # type: ignore[arg-type]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    registry = Registry()
    pack = types.ModuleType("bench_nodes")
    pack.NODES = [Seed, Mix, Sink]  # type: ignore[attr-defined]
    registry.add_module(pack, source="bench")
    prompt = synthetic_prompt(args.nodes)
    with tempfile.TemporaryDirectory() as tmp:
        folders = Folders(Path(tmp))

        def validate_and_plan() -> None:
            result = Executor(registry, folders).validate(prompt)
            assert result.ok and result.prompt is not None
            graph = dependency_graph(result.prompt.nodes)
            topological_order(graph, ancestors_of(graph, result.outputs))

        plan_s = best(validate_and_plan, args.repeat)

        first_runs, cached_runs = [], []
        for _ in range(args.repeat):
            executor = Executor(registry, folders)
            start = time.perf_counter()
            first = executor.execute(prompt)
            first_runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = executor.execute(prompt)
            cached_runs.append(time.perf_counter() - start)
            assert first.ok and len(first.executed) == args.nodes and not again.executed
        first_s, cached_s = min(first_runs), min(cached_runs)
        direct_s = best(lambda: direct_run(prompt), args.repeat)

    dispatch_ms = (first_s - plan_s) / args.nodes * 1000
    direct_ms = direct_s / args.nodes * 1000
    print(f"graph: {args.nodes} nodes, best of {args.repeat}")
    print(f"validate + plan      {plan_s * 1000:8.2f} ms   target <= 50 ms     ({plan_s * 1000 / 50:.2f} of target)")
    print(f"dispatch per node    {dispatch_ms:8.4f} ms   target <= 0.1 ms    ({dispatch_ms / 0.1:.2f} of target)")
    print(f"  direct call/node   {direct_ms:8.4f} ms   (reference: node functions without the engine; engine/direct = {dispatch_ms / direct_ms:.1f}x)")
    print(f"first run total      {first_s * 1000:8.2f} ms")
    print(f"fully cached re-run  {cached_s * 1000:8.2f} ms   ({cached_s / first_s:.2f} of a first run)")
    ok = plan_s <= 0.050 and dispatch_ms <= 0.1
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
