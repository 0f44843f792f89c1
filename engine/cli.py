"""The `sdflow` command line: run and convert workflows, list nodes.

    sdflow run WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--out DIR]
    sdflow convert WORKFLOW.json [-o OUT.json] [--object-info FILE]   (UI → API, or API → UI)
    sdflow nodes [--json] [--errors] [NAME]

Other packages add subcommands through the `sdflow.commands` entry-point group.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol, Sequence

from tqdm import tqdm

from engine import events as ev
from engine.devices import VramMode
from engine.events import Event
from engine.executor import ExecutionResult, PromptInvalid
from engine.model_folders import ModelPathsError
from engine.runtime import Runtime, Settings
from engine.spec import NodeSpec
from engine.validation import describe_errors
from engine.workflow.api import ApiPrompt
from engine.workflow.convert import ConversionError, convert_workflow
from engine.workflow.to_ui import prompt_to_workflow
from engine.workflow.ui import is_ui_workflow


COMMAND_GROUP = "sdflow.commands"
_VRAM_HELP = {
    VramMode.HIGH: "keep every model on the GPU",
    VramMode.NORMAL: "keep models on the GPU until room is needed (default with a GPU)",
    VramMode.LOW: "move a model to the GPU only while it runs",
    VramMode.NONE: "keep weights in RAM; stream layers through the GPU",
    VramMode.CPU: "run everything on the CPU",
}


class CliError(Exception):
    """A problem to report in one line, with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CliError as exc:
        print(f"sdflow: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=Path, default=Path.cwd(), help="folder holding input/, output/, temp/ and custom_nodes/ (default: .)")
    common.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR", help="another folder of plugins (repeatable)")
    common.add_argument("--no-plugins", action="store_true", help="load built-in nodes only")
    common.add_argument("--models-dir", type=Path, help="the models folder (default: BASE/models)")
    common.add_argument("--extra-model-paths", type=Path, action="append", default=[], metavar="YAML",
                        help="an extra_model_paths.yaml adding model folders, as ComfyUI's (repeatable)")
    common.add_argument("--preview-method", choices=["none", "auto", "latent2rgb", "taesd"],
                        help="step previews while sampling (auto: TAESD when in models/vae_approx, else latent2rgb; "
                             "default: auto, but none for `run`, which shows no previews)")
    memory = common.add_mutually_exclusive_group()
    for mode in VramMode:
        memory.add_argument(f"--{mode.value}", dest="vram_mode", action="store_const", const=mode, help=_VRAM_HELP[mode])
    parser = argparse.ArgumentParser(prog="sdflow", description="Run Stable Diffusion node workflows (ComfyUI-compatible).")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run a workflow (API or UI format)")
    run.add_argument("workflow", type=Path)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                     help="override an input; NODE is a node id or title, VALUE is JSON or plain text (repeatable)")
    run.add_argument("--out", type=Path, help="output folder (default: BASE/output)")
    run.add_argument("--input", type=Path, help="input folder (default: BASE/input)")
    run.set_defaults(handler=_run)

    convert = sub.add_parser("convert", parents=[common], help="convert a UI workflow to an API prompt, or an API prompt to a UI workflow")
    convert.add_argument("workflow", type=Path)
    convert.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    convert.add_argument("--object-info", type=Path, help="object_info JSON describing node types that are not installed here")
    convert.set_defaults(handler=_convert)

    nodes = sub.add_parser("nodes", parents=[common], help="list node types")
    nodes.add_argument("name", nargs="?", help="show one node type")
    nodes.add_argument("--json", action="store_true", help="print ComfyUI's object_info JSON")
    nodes.add_argument("--errors", action="store_true", help="show plugins and nodes that failed to load")
    nodes.set_defaults(handler=_nodes)
    for command in plugin_commands():
        extra = sub.add_parser(command.name, parents=[common], help=command.help)
        command.configure(extra)
        extra.set_defaults(handler=command.run)
    return parser


class Command(Protocol):
    """A subcommand contributed by a package under the `sdflow.commands` entry-point group."""

    name: str
    help: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def plugin_commands() -> list[Command]:
    """Subcommands other packages add (the Stable Diffusion package adds `demo-models`)."""
    commands = []
    for entry_point in importlib.metadata.entry_points(group=COMMAND_GROUP):
        try:
            commands.append(entry_point.load())
        except Exception as exc:  # a broken command must not take the CLI down
            print(f"warning: command {entry_point.name} is unavailable: {exc}", file=sys.stderr)
    return commands


def runtime_from_args(args: argparse.Namespace, **paths: Path | None) -> Runtime:
    """The Runtime the common options describe (for subcommands, also those of other packages)."""
    settings = Settings(
        base_dir=args.base_dir,
        plugin_dirs=args.plugins,
        load_plugins=not args.no_plugins,
        models_dir=args.models_dir,
        extra_model_paths=args.extra_model_paths,
        vram_mode=args.vram_mode,
        preview_method=args.preview_method or "auto",
        **paths,
    )
    try:
        return Runtime(settings)
    except ModelPathsError as exc:
        raise CliError(str(exc)) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def _to_api(data: Any, specs: dict[str, NodeSpec]) -> dict[str, Any]:
    """The API prompt (JSON) of a file's content: UI workflows are converted, API prompts kept."""
    if is_ui_workflow(data):
        try:
            return convert_workflow(data, specs).to_json()
        except ConversionError as exc:
            raise CliError(str(exc)) from None
    if not isinstance(data, dict):
        raise CliError("the file holds neither a UI workflow nor an API prompt")
    return data


# ---- run ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    args.preview_method = args.preview_method or "none"  # nothing shows them: compute none unless asked
    runtime = runtime_from_args(args, output_dir=args.out, input_dir=args.input)
    for error in runtime.registry.errors:
        print(f"warning: {error.source}: {error.message}", file=sys.stderr)
    data = _read_json(args.workflow)
    specs = runtime.registry.specs(runtime.folders)
    prompt = _to_api(data, specs)
    for override in args.overrides:
        apply_override(prompt, override, specs)
    extra_data = {"extra_pnginfo": {"workflow": data}} if is_ui_workflow(data) else {}

    progress = _Progress()
    unsubscribe = runtime.bus.subscribe(progress.on_event)
    started = time.monotonic()
    try:
        result = _execute_interruptibly(runtime, prompt, extra_data)
    except PromptInvalid as exc:
        progress.close()
        for line in describe_errors(exc.validation.node_errors, exc.validation.error):
            print(f"error: {line}", file=sys.stderr)
        _summary(0, 0, 0, time.monotonic() - started)
        return 1
    finally:
        unsubscribe()
    progress.close()
    return _report(runtime, result)


def apply_override(prompt: dict[str, Any], override: str, specs: dict[str, NodeSpec]) -> None:
    """Apply `NODE.INPUT=VALUE` to an API prompt (JSON) in place."""
    target, sep, text = override.partition("=")
    ref, dot, name = target.rpartition(".")
    if not sep or not dot or not ref or not name:
        raise CliError(f"--set {override!r}: expected NODE.INPUT=VALUE")
    try:
        matches = ApiPrompt.model_validate(prompt).find(ref)
    except ValueError as exc:
        raise CliError(f"--set {override!r}: the prompt is malformed: {exc}") from None
    if not matches:
        raise CliError(f"--set {override!r}: no node with id or title {ref!r}")
    if len(matches) > 1:
        raise CliError(f"--set {override!r}: {ref!r} matches nodes {', '.join(matches)}; use a node id")
    node = prompt[matches[0]]
    spec = specs.get(node["class_type"])
    if spec is not None and spec.input(name) is None:
        known = ", ".join(i.name for i in spec.inputs if i.section != "hidden")
        raise CliError(f"--set {override!r}: node {matches[0]} ({node['class_type']}) has no input {name!r}; inputs: {known}")
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        value = text
    node.setdefault("inputs", {})[name] = value


def _execute_interruptibly(runtime: Runtime, prompt: dict[str, Any], extra_data: dict[str, Any]) -> ExecutionResult:
    """Run in a worker thread so Ctrl-C interrupts the prompt cleanly instead of killing it."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = runtime.executor.execute(prompt, extra_data=extra_data)
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="sdflow-run", daemon=True).start()
    # an Event, not Thread.join(): a join interrupted by Ctrl-C may report the thread finished
    while not done.is_set():
        try:
            done.wait(0.1)
        except KeyboardInterrupt:
            runtime.executor.interrupt()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class _Progress:
    """tqdm bars: one over the nodes that run, one over the steps a node reports."""

    def __init__(self) -> None:
        self.nodes: tqdm | None = None
        self.steps: tqdm | None = None
        self.current: str | None = None

    def on_event(self, event: Event) -> None:
        data = event.data
        if event.type == ev.EXECUTION_PLAN and data["nodes"]:
            self.nodes = tqdm(total=len(data["nodes"]), desc="nodes", unit="node", file=sys.stderr, leave=True)
        elif event.type == ev.EXECUTING:
            self._close_steps()
            if self.nodes is not None and self.current is not None:
                self.nodes.update(1)
            self.current = data["node"]
            if self.nodes is not None and self.current is not None:
                self.nodes.set_postfix_str(f"node {self.current}", refresh=False)
        elif event.type == ev.NODE_WARNING:
            tqdm.write(f"warning: node {data['node']}: {data['message']}", file=sys.stderr)
        elif event.type == ev.PROGRESS:
            if self.steps is None:
                self.steps = tqdm(total=data["max"], desc=f"node {data['node']}", unit="step", file=sys.stderr, leave=False)
            self.steps.total = data["max"]
            self.steps.update(data["value"] - self.steps.n)  # tqdm limits how often it redraws

    def _close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None

    def close(self) -> None:
        self._close_steps()
        if self.nodes is not None:
            self.nodes.close()
            self.nodes = None


def _report(runtime: Runtime, result: ExecutionResult) -> int:
    for line in describe_errors(result.node_errors):
        print(f"error: {line}", file=sys.stderr)
    dropped = {out for entry in result.node_errors.values() for out in entry["dependent_outputs"]}
    if dropped:
        print(f"error: output node(s) {', '.join(sorted(dropped))} did not run: their inputs failed validation", file=sys.stderr)
    for failure in result.failures.values():
        if failure.caused_by is None:
            print(f"error: {failure.message}", file=sys.stderr)
        else:
            print(f"skipped: node {failure.node_id} ({failure.class_type}): {failure.message}", file=sys.stderr)
    for ui in result.ui.values():
        for image in ui.get("images", []):
            if image.get("type") == "output":
                print(f"saved {runtime.folders.root('output') / image.get('subfolder', '') / image['filename']}")
    if result.status == "interrupted":
        print("interrupted", file=sys.stderr)
    _summary(len(result.executed), len(result.cached), len(result.failed), result.seconds)
    return 0 if result.ok and not dropped else 1


def _summary(executed: int, cached: int, failed: int, seconds: float) -> None:
    print(f"executed {executed} nodes, cached {cached}, failed {failed} in {seconds:.2f} s")


# ---- convert ----------------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    runtime = runtime_from_args(args)
    specs = runtime.registry.specs(runtime.folders)
    if args.object_info:
        info = _read_json(args.object_info)
        specs = {**{name: NodeSpec.from_object_info(name, entry) for name, entry in info.items()}, **specs}
    data = _read_json(args.workflow)
    if is_ui_workflow(data):
        converted = _to_api(data, specs)
    else:
        try:
            converted = prompt_to_workflow(ApiPrompt.model_validate(_to_api(data, specs)), specs)
        except (ConversionError, ValueError) as exc:
            raise CliError(f"{args.workflow}: {exc}") from None
    text = json.dumps(converted, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


# ---- nodes ------------------------------------------------------------------------------------


def _nodes(args: argparse.Namespace) -> int:
    runtime = runtime_from_args(args)
    registry = runtime.registry
    if args.errors:
        for error in registry.errors:
            where = f"{error.source}" + (f" ({error.node})" if error.node else "")
            print(f"{where}: {error.message}")
            if error.traceback:
                print(error.traceback.rstrip())
        if not registry.errors:
            print("no load errors")
        return 0
    specs = registry.specs(runtime.folders)
    if args.name is not None:
        spec = specs.get(args.name)
        if spec is None:
            raise CliError(f"no node type {args.name!r}")
        specs = {args.name: spec}
    if args.json:
        print(json.dumps({name: spec.to_object_info() for name, spec in specs.items()}, indent=2))
    elif args.name is not None:
        print(_describe_node(specs[args.name]))
    else:
        for name, spec in sorted(specs.items(), key=lambda item: (item[1].category, item[0])):
            print(f"{name:32} {spec.display_name:36} {spec.category}")
        if registry.errors:
            print(f"\n{len(registry.errors)} load problem(s); see `sdflow nodes --errors`", file=sys.stderr)
    return 0


def _describe_node(spec: NodeSpec) -> str:
    lines = [f"{spec.class_type} — {spec.display_name} [{spec.category}]"]
    if spec.description:
        lines.append(spec.description)
    for inp in spec.inputs:
        if inp.section == "hidden":
            continue
        details = [f"default {inp.default!r}"] if inp.default is not None else []
        if inp.min is not None or inp.max is not None:
            details.append(f"range {inp.min}..{inp.max}")
        if inp.options is not None:
            shown = ", ".join(map(str, inp.options[:8])) + (", …" if len(inp.options) > 8 else "")
            details.append(f"one of {shown}")
        optional = " (optional)" if inp.section == "optional" else ""
        lines.append(f"  in  {inp.name}: {inp.type}{optional}" + (f" — {'; '.join(details)}" if details else ""))
    for out in spec.outputs:
        lines.append(f"  out {out.name}: {out.type if isinstance(out.type, str) else 'COMBO'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
