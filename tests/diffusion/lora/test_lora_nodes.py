"""The LoRA nodes through the engine: stacking, base branches untouched, no reloads, warnings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from diffusion.demo_lora import save_layers, write_lora
from diffusion.demo_models import build_tiny
from engine.cli import main
from engine.models import ModelManager
from engine.runtime import Runtime, Settings
from engine.workflow.convert import convert_workflow
from tests.capture import run_captured, with_capture
from tests.conftest import COMFY_WORKFLOWS

LORA = "sdflow-tiny-lora-sd15.safetensors"
LOCON = "sdflow-tiny-locon-sd15.safetensors"
CKPT = {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdflow-tiny-sd15.safetensors"}}}


@pytest.fixture
def runtime(tmp_path: Path, models_dir: Path) -> Runtime:
    shutil.copytree(models_dir, tmp_path / "models")
    return with_capture(Runtime(Settings(base_dir=tmp_path, load_plugins=False, preview_method="none")))


def sampler(name: str, model: list, clip: list, seed: int = 3) -> dict:
    """Nodes that encode two prompts with `clip`, sample two steps with `model` and capture the latent as `name`."""
    return {
        f"{name}_pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": clip}},
        f"{name}_neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": clip}},
        f"{name}_empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        f"{name}_k": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": model,
            "positive": [f"{name}_pos", 0], "negative": [f"{name}_neg", 0], "latent_image": [f"{name}_empty", 0]}},
        name: {"class_type": "Capture", "inputs": {"value": [f"{name}_k", 0]}},
    }


def lora(node_id: str, name: str, model: list, clip: list, strength_model: float, strength_clip: float) -> dict:
    return {node_id: {"class_type": "LoraLoader", "inputs": {"lora_name": name, "strength_model": strength_model,
                                                            "strength_clip": strength_clip, "model": model, "clip": clip}}}


def stacked(strengths: tuple[float, float, float, float]) -> dict:
    return {**lora("a", LORA, ["ckpt", 0], ["ckpt", 1], *strengths[:2]), **lora("b", LOCON, ["a", 0], ["a", 1], *strengths[2:])}


def samples(captured: dict, name: str) -> torch.Tensor:
    return captured[name]["samples"]


def test_stacked_loras_change_the_image_and_leave_a_base_branch_exact(runtime: Runtime) -> None:
    base_alone = samples(run_captured(runtime, {**CKPT, **sampler("base", ["ckpt", 0], ["ckpt", 1])}), "base")
    runtime.executor.cache.clear()
    both = run_captured(runtime, {**CKPT, **stacked((0.8, 1.0, -0.5, 0.5)),
                                  **sampler("lora", ["b", 0], ["b", 1]), **sampler("base", ["ckpt", 0], ["ckpt", 1])})
    assert torch.equal(samples(both, "base"), base_alone)  # same prompt: the base never sees the LoRA
    assert (samples(both, "lora") - base_alone).abs().max() > 1e-3
    only_model = run_captured(runtime, {**CKPT, **stacked((0.8, 0.0, -0.5, 0.0)), **sampler("m", ["b", 0], ["ckpt", 1])})
    only_clip = run_captured(runtime, {**CKPT, **stacked((0.0, 1.0, 0.0, 0.5)), **sampler("c", ["ckpt", 0], ["b", 1])})
    assert not torch.equal(samples(only_model, "m"), samples(only_clip, "c"))
    assert not torch.equal(samples(only_model, "m"), base_alone) and not torch.equal(samples(only_clip, "c"), base_alone)


def test_switching_loras_never_reloads_the_checkpoint(runtime: Runtime) -> None:
    manager = runtime.services.get(ModelManager)

    def with_lora(name: str) -> torch.Tensor:
        runtime.executor.cache.clear()  # every node runs again; only the model manager remembers
        return samples(run_captured(runtime, {**CKPT, **lora("a", name, ["ckpt", 0], ["ckpt", 1], 1.0, 1.0), **sampler("x", ["a", 0], ["a", 1])}), "x")

    first = with_lora(LORA)
    loads = manager.loads
    second, again = with_lora(LOCON), with_lora(LORA)
    assert manager.loads == loads + 1  # only the LoCon file was read
    assert not torch.equal(first, second) and torch.equal(first, again)


def test_strength_zero_passes_the_handles_through(runtime: Runtime) -> None:
    captured = run_captured(runtime, {**CKPT, **lora("a", LORA, ["ckpt", 0], ["ckpt", 1], 0.0, 0.0),
                                      "m": {"class_type": "Capture", "inputs": {"value": ["a", 0]}},
                                      "c": {"class_type": "Capture", "inputs": {"value": ["a", 1]}},
                                      "m0": {"class_type": "Capture", "inputs": {"value": ["ckpt", 0]}},
                                      "c0": {"class_type": "Capture", "inputs": {"value": ["ckpt", 1]}}})
    assert captured["m"] is captured["m0"] and captured["c"] is captured["c0"]


def partial_lora(folder: Path) -> Path:
    """A LoRA for the tiny SD1.5 model with two layers that fit nothing."""
    path = folder / "partial.safetensors"
    layers = write_lora(build_tiny("sd15"), path, text=False)
    layers["lora_unet_no_such_block"] = layers["lora_unet_down_blocks_0_attentions_0_proj_in"]
    layers["lora_unet_other_block"] = layers["lora_unet_down_blocks_0_attentions_0_proj_in"]
    save_layers(layers, path)
    return path


def test_layers_that_fit_nothing_are_a_warning_event_and_a_cli_line(runtime: Runtime, tmp_path: Path, capsys) -> None:
    partial_lora(tmp_path / "models" / "loras")
    prompt = {**CKPT, "a": {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "partial.safetensors", "strength_model": 1.0,
                                                                            "model": ["ckpt", 0]}},
              **sampler("x", ["a", 0], ["ckpt", 1])}
    result = runtime.executor.execute(prompt)
    [warning] = [data for event, data in result.messages if event == "node_warning"]
    assert warning["node"] == "a"
    assert warning["message"].startswith("partial.safetensors: 2 layers match nothing in this model (e.g. lora_unet_no_such_block, lora_unet_other_block)")
    prompt.pop("x")
    prompt["x_save"] = {"class_type": "PreviewImage", "inputs": {"images": ["x_img", 0]}}
    prompt["x_img"] = {"class_type": "VAEDecode", "inputs": {"samples": ["x_k", 0], "vae": ["ckpt", 2]}}
    (tmp_path / "prompt.json").write_text(json.dumps(prompt))
    assert main(["run", str(tmp_path / "prompt.json"), "--base-dir", str(tmp_path), "--no-plugins"]) == 0
    assert "warning: node a: partial.safetensors: 2 layers match nothing in this model" in capsys.readouterr().err


def test_a_lora_for_another_family_fails_its_node_clearly(runtime: Runtime, tmp_path: Path) -> None:
    write_lora(build_tiny("sdxl"), tmp_path / "models" / "loras" / "xl.safetensors", original_unet_names=True)
    result = runtime.executor.execute({**CKPT, **lora("a", "xl.safetensors", ["ckpt", 0], ["ckpt", 1], 1.0, 1.0), **sampler("x", ["a", 0], ["a", 1])})
    assert result.failed["a"].message.startswith("Load LoRA (node a): input 'lora_name': xl.safetensors: none of its layers fit this model")


def test_the_shared_lora_workflow_runs_with_its_bypassed_lora(runtime: Runtime) -> None:
    """ComfyUI's two-LoRA example (the second one bypassed), pointed at the demo files."""
    workflow = json.loads((COMFY_WORKFLOWS / "lora.json").read_text())
    prompt = convert_workflow(workflow, runtime.registry.specs(runtime.folders)).to_json()
    assert [n["class_type"] for n in prompt.values()].count("LoraLoader") == 1
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = "sdflow-tiny-sd15.safetensors"
        if node["class_type"] == "LoraLoader":
            inputs["lora_name"] = LORA
        if node["class_type"] == "KSampler":
            inputs["steps"] = 2
        if node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = 64
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    assert [data for event, data in result.messages if event == "node_warning"] == []
