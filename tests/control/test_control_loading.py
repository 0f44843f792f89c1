"""Every ControlNet and T2I-Adapter layout loads into modules that compute what the written ones do.

Outputs are compared through the same call the denoiser makes (`Control.for_run(...)(...)`),
against the written diffusers module called directly: equal within 1e-5 (fp32; the loaded weights
are bit-identical, except a diff ControlNet's, which went through a subtraction and an addition).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import T2IAdapter
from safetensors.torch import load_file, save_file

from diffusion.control import Control
from diffusion.controlnet import control_model, diff_control_model, load_control_model
from diffusion.demo_control import build_tiny_controlnet, write_controlnet, write_t2i_adapter
from diffusion.demo_models import _randomized, build_tiny
from diffusion.families import FAMILIES, ModelFormatError
from diffusion.handles import ModelHandle
from diffusion.schedules import DiscreteSchedule
from engine.devices import DevicePolicy, VramMode
from engine.models import ModelManager
from nodes.control import RESIZE_HINT
from tests.diffusion.conftest import max_difference, unet_inputs

TOLERANCE = 1e-5


@pytest.fixture
def manager() -> ModelManager:
    return ModelManager(DevicePolicy.detect(VramMode.CPU))


@pytest.fixture
def folder(tiny_models) -> Path:
    return tiny_models[0] / "controlnet"


def run_control(model, unet, manager: ModelManager, hint: torch.Tensor, strength: float = 0.7) -> tuple[dict, dict]:
    """What the bound control hands the UNet for one call, and the inputs of that call."""
    inputs = unet_inputs(unet)
    inputs["sample"] = inputs["sample"][:, :4]
    control = Control(model, hint, strength, 0.0, 1.0, place=manager.use, resize=RESIZE_HINT)
    bound = control.for_run(DiscreteSchedule(), inputs["sample"].shape)
    sigma = torch.tensor([3.0])
    extras = bound(inputs["sample"], inputs["timestep"].float(), sigma, inputs["encoder_hidden_states"], inputs.get("added_cond_kwargs"))
    return extras, inputs


def hint_image(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["cn-sd15.safetensors", "cn-sd15-diffusers", "cn-sd15-diffusers-names.safetensors", "cn-sdxl.safetensors"])
def test_controlnet_layouts_compute_like_the_written_module(name: str, tiny, folder: Path, manager: ModelManager) -> None:
    family = "sdxl" if "sdxl" in name else "sd15"
    written = tiny.controls[f"cn-{family}"]
    extras, inputs = run_control(control_model(folder / name, manager), tiny.models[family].unet, manager, hint_image())
    down, mid = written(**inputs, controlnet_cond=hint_image(), conditioning_scale=0.7, return_dict=False)
    assert len(extras["down_block_additional_residuals"]) == len(down)
    for ours, theirs in zip(extras["down_block_additional_residuals"], down):
        assert max_difference(ours, theirs) <= TOLERANCE
    assert max_difference(extras["mid_block_additional_residual"], mid) <= TOLERANCE
    assert mid.abs().max() > 1e-3  # random zero convolutions: the residuals are not trivially zero


def test_sd2_controlnet_in_the_original_layout(tmp_path: Path, manager: ModelManager) -> None:
    unet = build_tiny("sd2").unet
    written = build_tiny_controlnet("sd2", unet=unet)
    path = write_controlnet(written, tmp_path / "sd2.safetensors")
    loaded = control_model(path, manager).module
    assert loaded.config.use_linear_projection and list(loaded.config.attention_head_dim) == [1, 2]
    inputs = unet_inputs(unet)
    assert max_difference(loaded(**inputs, controlnet_cond=hint_image(), return_dict=False)[1],
                          written(**inputs, controlnet_cond=hint_image(), return_dict=False)[1]) <= TOLERANCE


@pytest.mark.parametrize("name", ["t2i-sd15.safetensors", "t2i-sd15-diffusers-names.safetensors", "t2i-sdxl.safetensors"])
def test_t2i_adapter_layouts_compute_like_the_written_module(name: str, tiny, folder: Path, manager: ModelManager) -> None:
    family = "sdxl" if "sdxl" in name else "sd15"
    model = control_model(folder / name, manager)
    assert model.is_adapter and model.module.config.adapter_type == ("full_adapter_xl" if family == "sdxl" else "full_adapter")
    extras, _ = run_control(model, tiny.models[family].unet, manager, hint_image(), strength=0.5)
    features = tiny.controls[f"t2i-{family}"](hint_image())
    ours = extras["down_intrablock_additional_residuals"]
    assert len(ours) == len(features)
    for a, b in zip(ours, features):
        assert max_difference(a, b * 0.5) <= TOLERANCE


@pytest.mark.parametrize("original_keys", [True, False])
def test_light_t2i_adapter(tmp_path: Path, original_keys: bool) -> None:
    written = _randomized(T2IAdapter(channels=[32, 64], num_res_blocks=3, adapter_type="light_adapter"), torch.Generator().manual_seed(0))
    path = write_t2i_adapter(written, tmp_path / "light.safetensors", original_keys)
    loaded = load_control_model(path, torch.float32).module
    assert loaded.config.adapter_type == "light_adapter" and loaded.config.num_res_blocks == 3
    for ours, theirs in zip(loaded(hint_image()), written(hint_image()), strict=True):
        assert max_difference(ours, theirs) <= TOLERANCE


def test_diff_controlnet_equals_the_full_one(tiny, folder: Path, manager: ModelManager) -> None:
    model = ModelHandle(tiny.models["sd15"].unet, FAMILIES["sd15"], "eps")
    diff = diff_control_model(folder / "cn-sd15-diff.safetensors", model, manager).module
    written = tiny.controls["cn-sd15"].state_dict()
    assert max(max_difference(diff.state_dict()[k], written[k]) for k in written) <= TOLERANCE
    assert diff_control_model(folder / "cn-sd15-diff.safetensors", model, manager).module is diff
    assert diff_control_model(folder / "cn-sd15.safetensors", model, manager) is control_model(folder / "cn-sd15.safetensors", manager)


def test_diff_controlnet_alone_asks_for_the_diff_loader(folder: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"cn-sd15-diff.safetensors: .*DiffControlNetLoader"):
        load_control_model(folder / "cn-sd15-diff.safetensors", torch.float32)


def test_loaded_once_in_the_unet_dtype(folder: Path, manager: ModelManager) -> None:
    first = control_model(folder / "cn-sd15.safetensors", manager)
    assert control_model(folder / "cn-sd15.safetensors", manager) is first and manager.loads == 1
    assert load_control_model(folder / "t2i-sd15.safetensors", torch.float16).module.dtype == torch.float16


def bad_file(tmp_path: Path, kind: str, folder: Path) -> Path:
    path = tmp_path / f"{kind}.safetensors"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01not a model at all" * 10)
    elif kind == "truncated":
        path.write_bytes((folder / "cn-sd15.safetensors").read_bytes()[:5000])
    elif kind == "unrelated":
        save_file({"encoder.layer.weight": torch.zeros(2, 2)}, str(path))
    elif kind == "control-lora":
        save_file({"lora_controlnet": torch.zeros(1), "input_blocks.0.0.weight": torch.zeros(2, 2)}, str(path))
    elif kind == "checkpoint":
        path = folder.parent / "checkpoints" / "sd15.safetensors"
    else:  # T2I-Adapters diffusers' adapter cannot represent
        state = load_file(str(folder / "t2i-sd15.safetensors"))
        if kind == "t2i-skip-conv":
            state["body.0.skep.weight"] = torch.zeros(32, 32, 1, 1)
        else:  # a 3×3 second convolution
            state["body.0.block2.weight"] = torch.zeros(32, 32, 3, 3)
        save_file(state, str(path))
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("garbage", "not a readable safetensors file"),
    ("truncated", "not a readable safetensors file"),
    ("unrelated", r"not a ControlNet or T2I-Adapter \(top-level keys: encoder\)"),
    ("control-lora", "a Control-LoRA, which sdflow does not load"),
    ("checkpoint", "put it in the checkpoints folder"),
    ("t2i-skip-conv", r"layout diffusers cannot represent: .*body\.0\.skep\.weight"),
    ("t2i-3x3", r"layout diffusers cannot represent: body\.0\.block2\.weight is \(32, 32, 3, 3\)"),
])
def test_bad_files_are_refused_with_the_reason(kind: str, message: str, tmp_path: Path, folder: Path) -> None:
    path = bad_file(tmp_path, kind, folder)
    with pytest.raises(ModelFormatError, match=rf"{path.name}: .*{message}"):
        load_control_model(path, torch.float32)


def test_loader_node_reports_a_bad_file(runtime, tiny_models) -> None:
    (tiny_models[0] / "controlnet" / "broken.safetensors").write_bytes(b"nonsense")
    try:
        prompt = {"1": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "broken.safetensors"}},
                  "2": {"class_type": "Capture", "inputs": {"value": ["1", 0]}}}
        result = runtime.executor.execute(prompt)
    finally:
        (tiny_models[0] / "controlnet" / "broken.safetensors").unlink()
    assert not result.ok and "broken.safetensors: not a readable safetensors file" in result.failures["1"].message
