"""Loader and conditioning nodes, run through the engine on the demo models folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from diffusion.clip_encoding import encode
from diffusion.demo_models import build_tiny
from diffusion.ldm_keys import clip_to_ldm, open_clip_to_ldm, unet_to_ldm
from engine.runtime import Runtime, Settings
from tests.capture import CAPTURED, with_capture
from safetensors.torch import load_file, save_file


@pytest.fixture
def runtime(tmp_path: Path, models_dir: Path) -> Runtime:
    """A runtime whose models folder is a private copy of the demo models."""
    shutil.copytree(models_dir, tmp_path / "models")
    return with_capture(Runtime(Settings(base_dir=tmp_path, load_plugins=False)))


def run(runtime: Runtime, prompt: dict) -> Any:
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    return result


def checkpoint_prompt(ckpt: str, text: str = "a photo of a cat", extra: dict | None = None) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["1", 1]}},
        "3": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "Capture", "inputs": {"value": ["1", 0]}},
        **(extra or {}),
    }


def test_checkpoint_combo_lists_the_models_folder(runtime) -> None:
    info = runtime.registry.object_info(runtime.folders)
    options = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert "sdflow-tiny-sd15.safetensors" in options and "sdflow-tiny-sdxl-refiner.safetensors" in options
    assert info["VAELoader"]["input"]["required"]["vae_name"][0] == ["sdflow-tiny-vae.safetensors"]
    assert info["CheckpointLoaderSimple"]["output"] == ["MODEL", "CLIP", "VAE"]


@pytest.mark.parametrize(
    ("ckpt", "family", "prediction", "width"),
    [("sdflow-tiny-sd15.safetensors", "sd15", "eps", 64), ("sdflow-tiny-sd2-v.safetensors", "sd2-v", "v", 64),
     ("sdflow-tiny-sdxl.safetensors", "sdxl", "eps", 64 + 80), ("sdflow-tiny-sdxl-refiner.safetensors", "sdxl-refiner", "eps", 80)],
)
def test_load_checkpoint_and_encode(runtime, ckpt: str, family: str, prediction: str, width: int) -> None:
    run(runtime, checkpoint_prompt(ckpt))
    model = CAPTURED["4"]
    assert (model.family.id, model.prediction) == (family, prediction)
    [[cond, options]] = CAPTURED["3"]
    assert cond.shape == (1, 77, width) and cond.dtype == torch.float32
    assert options["pooled_output"].shape[0] == 1


def test_same_file_is_loaded_once_across_nodes_and_prompts(runtime) -> None:
    run(runtime, checkpoint_prompt("sdflow-tiny-sd15.safetensors", "one"))
    run(runtime, checkpoint_prompt("sdflow-tiny-sd15.safetensors", "two"))
    runtime.executor.cache.clear()  # even when the loader node runs again, the file is not re-read
    run(runtime, checkpoint_prompt("sdflow-tiny-sd15.safetensors", "three"))
    assert runtime.models.loads == 1


def test_replacing_a_file_loads_it_again(runtime) -> None:
    run(runtime, checkpoint_prompt("sdflow-tiny-sd15.safetensors"))
    checkpoints = runtime.folders.models.root / "checkpoints"
    shutil.copy(checkpoints / "sdflow-tiny-sd2.safetensors", checkpoints / "sdflow-tiny-sd15.safetensors")
    result = run(runtime, checkpoint_prompt("sdflow-tiny-sd15.safetensors"))
    assert "1" in result.executed and CAPTURED["4"].family.id == "sd2"


def test_clip_skip_selects_an_earlier_layer(runtime) -> None:
    prompt = checkpoint_prompt("sdflow-tiny-sd15.safetensors", extra={
        "5": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["1", 1], "stop_at_clip_layer": -2}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a cat", "clip": ["5", 0]}},
        "7": {"class_type": "Capture", "inputs": {"value": ["6", 0]}},
        "8": {"class_type": "Capture", "inputs": {"value": ["5", 0]}},
    })
    run(runtime, prompt)
    clip = CAPTURED["8"]
    assert clip.layer == -2
    default, skipped = CAPTURED["3"][0][0], CAPTURED["7"][0][0]
    assert not torch.allclose(default, skipped)
    assert torch.equal(skipped, encode(clip.encoders, "a photo of a cat", -2)[0])


def test_sdxl_encoders_with_size_and_aesthetic_conditions(runtime) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdflow-tiny-sdxl.safetensors"}},
        "2": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "clip": ["1", 1], "width": 1024, "height": 768, "crop_w": 8, "crop_h": 16, "target_width": 1024,
            "target_height": 768, "text_g": "a castle", "text_l": "oil painting"}},
        "3": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdflow-tiny-sdxl-refiner.safetensors"}},
        "5": {"class_type": "CLIPTextEncodeSDXLRefiner", "inputs": {"ascore": 2.5, "width": 1024, "height": 1024, "text": "blurry", "clip": ["4", 1]}},
        "6": {"class_type": "Capture", "inputs": {"value": ["5", 0]}},
        "7": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["5", 0]}},
        "8": {"class_type": "Capture", "inputs": {"value": ["7", 0]}},
    }
    run(runtime, prompt)
    [[cond, options]] = CAPTURED["3"]
    assert cond.shape == (1, 77, 144) and options["pooled_output"].shape == (1, 32)
    assert {k: options[k] for k in ("width", "height", "crop_w", "crop_h", "target_width", "target_height")} == \
        {"width": 1024, "height": 768, "crop_w": 8, "crop_h": 16, "target_width": 1024, "target_height": 768}
    [[refiner_cond, refiner]] = CAPTURED["6"]
    assert refiner_cond.shape == (1, 77, 80) and (refiner["aesthetic_score"], refiner["width"]) == (2.5, 1024)
    [[zero, zero_options]] = CAPTURED["8"]
    assert not zero.any() and not zero_options["pooled_output"].any() and zero_options["aesthetic_score"] == 2.5


def test_sdxl_encode_refuses_a_single_encoder_clip(runtime) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdflow-tiny-sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncodeSDXL", "inputs": {"clip": ["1", 1], "width": 1024, "height": 1024, "crop_w": 0,
              "crop_h": 0, "target_width": 1024, "target_height": 1024, "text_g": "a", "text_l": "b"}},
        "3": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
    }
    failure = runtime.executor.execute(prompt).failures["2"]
    assert failure.message == "CLIP Text Encode (SDXL) (node 2): input 'clip': needs SDXL's two text encoders (clip_l and clip_g), got clip_l"


def test_a_broken_checkpoint_is_a_clear_node_error(runtime) -> None:
    (runtime.folders.models.root / "checkpoints" / "broken.safetensors").write_bytes(b"\x00" * 100)
    result = runtime.executor.execute(checkpoint_prompt("broken.safetensors"))
    assert result.failures["1"].message.startswith(
        "Load Checkpoint (node 1): input 'ckpt_name': broken.safetensors: not a readable safetensors file"
    )
    assert result.failures["2"].caused_by == "1"


def test_a_checkpoint_without_vae_blocks_what_needs_it(runtime, written) -> None:
    state = {k: v for k, v in load_file(written["sd15"].file).items() if not k.startswith("first_stage_model.")}
    save_file(state, runtime.folders.models.root / "checkpoints" / "novae.safetensors")
    prompt = checkpoint_prompt("novae.safetensors", extra={"5": {"class_type": "Capture", "inputs": {"value": ["1", 2]}}})
    result = runtime.executor.execute(prompt)
    assert "3" not in result.failures  # the prompt's text encoding still worked
    assert result.failures["5"].message == "novae.safetensors contains no VAE; load one separately"


def test_unknown_names_fail_validation(runtime) -> None:
    validation = runtime.executor.validate(checkpoint_prompt("nope.safetensors"))
    [error] = validation.node_errors["1"]["errors"]
    assert error["type"] == "value_not_in_list" and error["extra_info"]["input_name"] == "ckpt_name"


def test_component_loaders(runtime) -> None:
    models = runtime.folders.models.root
    sd15, sdxl = build_tiny("sd15"), build_tiny("sdxl")
    (models / "diffusion_models").mkdir()
    (models / "text_encoders").mkdir()
    save_file(unet_to_ldm(sd15.unet.state_dict(), sd15.unet.config), models / "diffusion_models" / "unet.safetensors")
    save_file(clip_to_ldm(sd15.text_encoders["clip_l"].state_dict(), ""), models / "text_encoders" / "clip_l.safetensors")
    save_file(clip_to_ldm(sdxl.text_encoders["clip_l"].state_dict(), ""), models / "text_encoders" / "xl_l.safetensors")
    save_file(open_clip_to_ldm(sdxl.text_encoders["clip_g"].state_dict(), ""), models / "text_encoders" / "xl_g.safetensors")
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "unet.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "sdflow-tiny-vae.safetensors"}},
        "3": {"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l.safetensors", "type": "stable_diffusion", "device": "cpu"}},
        "4": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "xl_g.safetensors", "clip_name2": "xl_l.safetensors", "type": "sdxl"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 0]}},
        **{str(10 + i): {"class_type": "Capture", "inputs": {"value": [str(i), 0]}} for i in range(1, 6)},
    }
    run(runtime, prompt)
    assert CAPTURED["11"].family.id == "sd15" and CAPTURED["12"].vae.config.latent_channels == 4
    assert CAPTURED["13"].keys == ("clip_l",) and CAPTURED["13"].device == "cpu"
    assert CAPTURED["14"].keys == ("clip_l", "clip_g")  # in SDXL's order whatever the file order
    assert CAPTURED["15"][0][0].shape == (1, 77, 144)


def test_checkpoint_loader_with_a_config_forces_v_prediction(runtime) -> None:
    configs = runtime.folders.models.root / "configs"
    configs.mkdir()
    (configs / "v2-inference-v.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    prompt = {
        "1": {"class_type": "CheckpointLoader", "inputs": {"config_name": "v2-inference-v.yaml", "ckpt_name": "sdflow-tiny-sd2.safetensors"}},
        "2": {"class_type": "Capture", "inputs": {"value": ["1", 0]}},
    }
    run(runtime, prompt)
    assert (CAPTURED["2"].family.id, CAPTURED["2"].prediction) == ("sd2-v", "v")
