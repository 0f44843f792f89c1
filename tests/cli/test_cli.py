"""The `sdflow` command line, end to end on model-free workflows."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from engine import cli
from engine.cli import main
from tests.conftest import COMFY_WORKFLOWS, REPO

SUMMARY = re.compile(r"^executed (\d+) nodes, cached (\d+), failed (\d+) in [\d.]+ s$", re.M)
UTILITY = COMFY_WORKFLOWS / "utility_interpolation_image_upscale.json"


def summary(text: str) -> tuple[int, int, int]:
    match = SUMMARY.search(text)
    assert match, text
    return tuple(map(int, match.groups()))  # type: ignore[return-value]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A base folder whose input/ holds the image the shared utility workflow loads."""
    (tmp_path / "input").mkdir()
    Image.new("RGBA", (24, 16), (200, 100, 50, 255)).save(tmp_path / "input" / "pray.png")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_the_shared_ui_workflow_and_caches_nothing_twice(base: Path, capsys) -> None:
    code, out, err = run(capsys, "run", str(UTILITY), "--base-dir", str(base), "--no-plugins")
    assert code == 0, err
    assert summary(out) == (4, 0, 0)
    saved = base / "output" / "ComfyUI_00001_.png"
    assert f"saved {saved}" in out
    with Image.open(saved) as image:
        assert image.size == (48, 32)  # ImageScaleBy lanczos x2
        metadata = image.text
    assert json.loads(metadata["prompt"])["3"]["class_type"] == "ImageScaleBy"
    assert json.loads(metadata["workflow"])["nodes"]  # the UI workflow travels in the PNG
    assert len(list((base / "temp").glob("*.png"))) == 2  # Image Compare's two previews


def test_set_overrides_by_id_and_title(base: Path, capsys) -> None:
    code, out, err = run(
        capsys, "run", str(UTILITY), "--base-dir", str(base), "--no-plugins",
        "--set", "3.scale_by=0.5", "--set", "Save Image.filename_prefix=half/small",
    )
    assert code == 0, err
    with Image.open(base / "output" / "half" / "small_00001_.png") as image:
        assert image.size == (12, 8)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("3.scale=2", "has no input 'scale'"),
        ("99.scale_by=2", "no node with id or title '99'"),
        ("scale_by", "expected NODE.INPUT=VALUE"),
    ],
)
def test_bad_overrides_are_explained(base: Path, capsys, override: str, message: str) -> None:
    code, _, err = run(capsys, "run", str(UTILITY), "--base-dir", str(base), "--no-plugins", "--set", override)
    assert code == 2
    assert message in err


def test_validation_errors_name_node_input_and_reason(base: Path, capsys) -> None:
    code, out, err = run(capsys, "run", str(UTILITY), "--base-dir", str(base), "--no-plugins", "--set", "3.scale_by=100")
    assert code == 1
    assert "node 3 (ImageScaleBy), input 'scale_by': Value 100.0 bigger than max of 8" in err
    assert summary(out) == (0, 0, 0)  # the whole prompt was rejected: nothing ran


def test_an_invalid_output_gives_a_nonzero_status_while_others_finish(tmp_path: Path, capsys) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fine"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../escape"}},
    }
    path = tmp_path / "prompt.json"
    path.write_text(json.dumps(prompt))
    code, out, err = run(capsys, "run", str(path), "--base-dir", str(tmp_path), "--no-plugins")
    assert code == 1
    assert summary(out) == (2, 0, 0)
    assert (tmp_path / "output" / "fine_00001_.png").exists()
    assert "node 3 (SaveImage), input 'filename_prefix'" in err and "output node(s) 3 did not run" in err


def test_unreadable_and_unknown_workflows_fail_cleanly(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    code, _, err = run(capsys, "run", str(bad), "--base-dir", str(tmp_path))
    assert code == 2 and "is not valid JSON" in err
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"nodes": [{"id": 7, "type": "FancyUpscaler"}], "links": []}))
    code, _, err = run(capsys, "run", str(unknown), "--base-dir", str(tmp_path), "--no-plugins")
    assert code == 2 and "node types that are not installed: FancyUpscaler (node 7)" in err


def test_convert_with_object_info_for_uninstalled_nodes(tmp_path: Path, capsys) -> None:
    target = tmp_path / "api.json"
    code, _, err = run(
        capsys, "convert", str(COMFY_WORKFLOWS / "default.json"), "-o", str(target), "--no-plugins",
        "--object-info", str(REPO / "tests" / "data" / "comfyui_sd_object_info.json"),
    )
    assert code == 0, err
    assert json.loads(target.read_text()) == json.loads((REPO / "tests" / "data" / "api" / "default.json").read_text())


def test_nodes_lists_json_and_errors(tmp_path: Path, capsys) -> None:
    plugins = tmp_path / "custom_nodes"
    plugins.mkdir()
    (plugins / "broken.py").write_text("raise RuntimeError('missing dependency foo')\n")
    code, out, _ = run(capsys, "nodes", "--json", "--base-dir", str(tmp_path))
    info = json.loads(out)
    assert code == 0 and info["LoadImage"]["input"]["required"]["image"][1]["image_upload"] is True
    code, out, _ = run(capsys, "nodes", "--errors", "--base-dir", str(tmp_path))
    assert "broken.py: import failed: RuntimeError('missing dependency foo')" in out
    assert "Traceback" in out
    code, out, _ = run(capsys, "nodes", "ImageScale", "--base-dir", str(tmp_path))
    assert "in  width: INT" in out


def test_installed_console_script(base: Path) -> None:
    """The real `sdflow` executable, in a separate process, as a user runs it."""
    executable = shutil.which("sdflow", path=str(Path(sys.executable).parent))
    assert executable, "the sdflow console script is not installed in this environment"
    done = subprocess.run([executable, "run", str(UTILITY), "--base-dir", str(base)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout) == (4, 0, 0)
    assert "nodes" in done.stderr  # the tqdm bar


def test_outputs_dropped_by_validation_make_the_run_fail(tmp_path: Path, capsys) -> None:
    """One output has a bad input: the valid one still runs, but the exit status says not all did."""
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ok"}},
        "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "scale_by": 99}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "big"}},
    }
    path = tmp_path / "prompt.json"
    path.write_text(json.dumps(prompt))
    code, out, err = run(capsys, "run", str(path), "--base-dir", str(tmp_path), "--no-plugins")
    assert code == 1
    assert (tmp_path / "output" / "ok_00001_.png").exists()
    assert "node 3 (ImageScaleBy), input 'scale_by': Value 99.0 bigger than max of 8" in err
    assert "output node(s) 4 did not run" in err


SLOW_PLUGIN = '''
import time
from engine import Input, Node, NodeContext, node


@node(category="test", outputs=["INT"])
class SlowCount(Node):
    steps: int = Input(5, min=1, max=10000)
    delay: float = Input(0.0, min=0.0, max=10.0)

    def execute(self, ctx: NodeContext) -> int:
        (ctx.folders.base / "started").touch()
        for step in range(1, self.steps + 1):
            time.sleep(self.delay)
            ctx.progress(step, self.steps)
        return self.steps


NODE_CLASS_MAPPINGS = {"SlowCount": SlowCount}
'''


def _slow_prompt(base: Path, steps: int, delay: float) -> Path:
    (base / "custom_nodes").mkdir(exist_ok=True)
    (base / "custom_nodes" / "slow.py").write_text(SLOW_PLUGIN)
    prompt = {
        "1": {"class_type": "SlowCount", "inputs": {"steps": steps, "delay": delay}},
        "2": {"class_type": "PrimitiveInt", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": ["2", 0], "height": 4, "batch_size": 1, "color": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    path = base / "slow.json"
    path.write_text(json.dumps(prompt))
    return path


def _sdflow() -> str:
    executable = shutil.which("sdflow", path=str(Path(sys.executable).parent))
    assert executable, "the sdflow console script is not installed in this environment"
    return executable


def test_step_progress_bar(tmp_path: Path) -> None:
    path = _slow_prompt(tmp_path, steps=7, delay=0.0)
    done = subprocess.run([_sdflow(), "run", str(path), "--base-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "node 1:" in done.stderr and "/7 " in done.stderr and "step" in done.stderr  # the step bar, total 7
    assert summary(done.stdout) == (4, 0, 0)


def test_ctrl_c_interrupts_the_run_cleanly(tmp_path: Path) -> None:
    path = _slow_prompt(tmp_path, steps=10000, delay=0.01)
    process = subprocess.Popen([_sdflow(), "run", str(path), "--base-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "interrupted" in err and "Traceback" not in err
    assert summary(out)[0] == 0  # nothing finished: SlowCount was stopped between steps


def test_models_folder_flags(tmp_path: Path, capsys) -> None:
    """--models-dir and --extra-model-paths decide what the loader nodes offer."""
    (tmp_path / "mine" / "checkpoints").mkdir(parents=True)
    (tmp_path / "mine" / "checkpoints" / "a.safetensors").write_bytes(b"x")
    (tmp_path / "webui" / "models" / "Stable-diffusion").mkdir(parents=True)
    (tmp_path / "webui" / "models" / "Stable-diffusion" / "b.safetensors").write_bytes(b"x")
    extra = tmp_path / "extra_model_paths.yaml"
    extra.write_text("a111:\n    base_path: webui\n    checkpoints: models/Stable-diffusion\n")
    code, out, _ = run(capsys, "nodes", "CheckpointLoaderSimple", "--json", "--no-plugins", "--cpu",
                       "--base-dir", str(tmp_path), "--models-dir", str(tmp_path / "mine"), "--extra-model-paths", str(extra))
    assert code == 0
    assert json.loads(out)["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["a.safetensors", "b.safetensors"]
    extra.write_text("a111: [broken\n")
    code, _, err = run(capsys, "nodes", "--base-dir", str(tmp_path), "--extra-model-paths", str(extra))
    assert code == 2 and "cannot read" in err


def test_run_computes_no_previews_unless_asked(tmp_path: Path, monkeypatch, capsys) -> None:
    """`run` shows no previews, so by default it computes none; the other commands (the server) default to auto."""
    chosen = []

    def stop(args, **paths):
        chosen.append(args.preview_method)
        raise cli.CliError("stopped")

    with monkeypatch.context() as patch:
        patch.setattr(cli, "runtime_from_args", stop)
        main(["run", "w.json"])
        main(["run", "w.json", "--preview-method", "auto"])
    assert chosen == ["none", "auto"]
    args = cli._parser().parse_args(["serve", "--base-dir", str(tmp_path), "--no-plugins"])
    assert cli.runtime_from_args(args).settings.preview_method == "auto"
