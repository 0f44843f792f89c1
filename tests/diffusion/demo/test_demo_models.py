"""The tiny demo models: what the single files, diffusers folders and extra files hold."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
import yaml
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file

from diffusion.demo_models import FAMILIES, HIDDEN_SIZE, build_tiny, write_embedding, write_single_file
from engine.cli import main
from engine.plugins import run_setup_hooks
from engine.runtime import Runtime, Settings
from tests.diffusion.demo.conftest import Demo, assert_same_tensors

UNET = "model.diffusion_model."
VAE = "first_stage_model."
TEXT_PREFIXES = {
    "sd15": {"cond_stage_model.transformer.text_model."},
    "sd2": {"cond_stage_model.model."},
    "sdxl": {"conditioner.embedders.0.transformer.text_model.", "conditioner.embedders.1.model."},
    "sdxl-refiner": {"conditioner.embedders.0.model."},
}
PIPELINES = {
    "sd15": "StableDiffusionPipeline",
    "sd15-inpaint": "StableDiffusionInpaintPipeline",
    "sd2": "StableDiffusionPipeline",
    "sd2-v": "StableDiffusionPipeline",
    "sd2-inpaint": "StableDiffusionInpaintPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
}


def base(family: str) -> str:
    return family if family.startswith("sdxl") else family.split("-")[0]


def test_single_file_key_prefixes(demo: Demo) -> None:
    expected = {UNET, VAE} | TEXT_PREFIXES[base(demo.tiny.family)]
    prefixes = {next((p for p in expected if key.startswith(p)), key) for key in demo.checkpoint}
    assert prefixes == expected


def test_single_file_follows_the_family_rules(demo: Demo) -> None:
    family, ck = demo.tiny.family, demo.checkpoint
    assert ck[UNET + "input_blocks.0.0.weight"].shape[1] == (9 if family.endswith("inpaint") else 4)
    if family.startswith("sdxl"):
        time_ids = 6 if family == "sdxl" else 5
        assert ck[UNET + "label_emb.0.0.weight"].shape[1] == 32 + time_ids * 8
        clip_g = "conditioner.embedders.1.model." if family == "sdxl" else "conditioner.embedders.0.model."
        assert ck[clip_g + "text_projection"].shape == (HIDDEN_SIZE["clip_g"], 32)
    else:
        assert not any("label_emb" in key or "text_projection" in key for key in ck)
    linear = ck[UNET + "middle_block.1.proj_in.weight"].ndim == 2
    assert linear == (not family.startswith("sd15"))


def test_every_tensor_is_random(demo: Demo) -> None:
    constant = [key for key, value in demo.checkpoint.items() if value.numel() > 1 and value.float().std() == 0]
    assert not constant


def test_v_prediction_marks(demo: Demo) -> None:
    """SD2-v is recognised by its sidecar yaml and by the spread of one LayerNorm bias."""
    pattern = re.compile(re.escape(UNET) + r"output_blocks\.(\d+)\.1\.transformer_blocks\.0\.norm1\.bias")
    last = max((int(m[1]), key) for key in demo.checkpoint if (m := pattern.fullmatch(key)))[1]
    is_v = demo.tiny.family == "sd2-v"
    assert (demo.checkpoint[last].std() > 0.09) == is_v
    sidecar = demo.file.with_suffix(".yaml")
    assert sidecar.exists() == is_v
    if is_v:
        assert yaml.safe_load(sidecar.read_text())["model"]["params"]["parameterization"] == "v"
    else:
        norm_biases = [value for key, value in demo.checkpoint.items() if re.search(r"norm\d?\.bias$", key)]
        assert max(value.std() for value in norm_biases) < 0.05


@pytest.mark.parametrize(("dtype", "stored"), [(torch.float16, "F16"), (torch.bfloat16, "BF16")])
def test_single_file_dtype(tmp_path, dtype: torch.dtype, stored: str) -> None:
    path = tmp_path / "half.safetensors"
    write_single_file(build_tiny("sd15"), path, dtype=dtype)
    with safe_open(path, "pt") as f:
        assert {f.get_slice(key).get_dtype() for key in f.keys()} == {stored}


def test_diffusers_folder_reloads(demo: Demo) -> None:
    folder, tiny = demo.folder, demo.tiny
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == PIPELINES[tiny.family]
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "EulerDiscreteScheduler"
    assert scheduler["prediction_type"] == ("v_prediction" if tiny.family == "sd2-v" else "epsilon")
    assert (scheduler["beta_schedule"], scheduler["beta_start"], scheduler["beta_end"]) == ("scaled_linear", 0.00085, 0.012)
    assert not any(path.name.startswith("tokenizer") for path in folder.iterdir())

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True)
    assert_same_tensors(unet.state_dict(), tiny.unet.state_dict())
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True)
    assert_same_tensors(vae.state_dict(), tiny.vae.state_dict())
    subfolders = {"clip_l": "text_encoder", "clip_h": "text_encoder", "clip_g": "text_encoder_2"}
    for key, expected in tiny.text_encoders.items():
        loaded = type(expected).from_pretrained(folder / subfolders[key], local_files_only=True)
        assert_same_tensors(loaded.state_dict(), expected.state_dict())

    tokenizers = {"tokenizer": None, "tokenizer_2": None} if tiny.family.startswith("sdxl") else {"tokenizer": None}
    pipeline = DiffusionPipeline.from_pretrained(folder, local_files_only=True, **tokenizers)
    assert type(pipeline).__name__ == PIPELINES[tiny.family]


def test_builds_are_reproducible_and_leave_the_global_seed_alone() -> None:
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    first, again, other = build_tiny("sd15"), build_tiny("sd15"), build_tiny("sd15", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert_same_tensors(again.unet.state_dict(), first.unet.state_dict())
    assert not torch.equal(other.unet.conv_in.weight, first.unet.conv_in.weight)
    with pytest.raises(ValueError, match="sd15-inpaint"):
        build_tiny("sd3")


def test_text_encoder_activations() -> None:
    tiny = build_tiny("sdxl")
    assert tiny.text_encoders["clip_l"].config.hidden_act == "quick_gelu"
    assert tiny.text_encoders["clip_g"].config.hidden_act == "gelu"
    assert isinstance(tiny.text_encoders["clip_g"], transformers.CLIPTextModelWithProjection)


def test_embedding_files(tmp_path) -> None:
    vectors = write_embedding(tmp_path / "a1111.pt")
    data = torch.load(tmp_path / "a1111.pt", weights_only=True)
    assert data["name"] == "a1111" and data["step"] == 0
    assert torch.equal(data["string_to_param"]["*"], vectors["clip_l"])
    assert data["string_to_param"]["*"].shape == (2, 64)

    write_embedding(tmp_path / "xl.safetensors", dims={"clip_l": 64, "clip_g": 80}, vectors=3)
    assert {key: tuple(value.shape) for key, value in load_file(tmp_path / "xl.safetensors").items()} == {"clip_l": (3, 64), "clip_g": (3, 80)}

    with pytest.raises(ValueError):
        write_embedding(tmp_path / "xl.pt", dims={"clip_l": 64, "clip_g": 80})


@pytest.mark.parametrize("target", ["models", "models/checkpoints"])
def test_demo_models_command(tmp_path, capsys, target: str) -> None:
    assert main(["demo-models", str(tmp_path / target)]) == 0
    models = tmp_path / "models"
    names = [f"checkpoints/sdflow-tiny-{family}.safetensors" for family in FAMILIES]
    names += ["checkpoints/sdflow-tiny-sd2-v.yaml", "vae/sdflow-tiny-vae.safetensors", "embeddings/sdflow-tiny-embedding.safetensors",
              "loras/sdflow-tiny-lora-sd15.safetensors", "loras/sdflow-tiny-locon-sd15.safetensors"]
    written = {str(p.relative_to(models)) for p in models.rglob("*") if p.is_file()}
    assert set(names) <= written
    assert set(capsys.readouterr().out.split()) == {str(models / name) for name in written}
    assert sum((models / name).stat().st_size for name in written) < 150e6
    with safe_open(models / "checkpoints" / "sdflow-tiny-sdxl.safetensors", "pt") as f:
        assert f.get_slice(next(iter(f.keys()))).get_dtype() == "F16"


def test_serve_start_up_writes_the_demo_models_into_an_empty_models_folder_once(tmp_path) -> None:
    """`sdflow serve` runs the `sdflow.setup` entry points; ours writes the demo models when no
    checkpoint is installed, says where, and leaves an installation with checkpoints alone."""
    folders = Runtime(Settings(base_dir=tmp_path, load_plugins=False)).folders
    models = tmp_path / "models"
    [message] = run_setup_hooks(folders)
    assert "demo models" in message and str(models / "checkpoints") in message
    checkpoints = {f"sdflow-tiny-{family}.safetensors" for family in FAMILIES} | {"sdflow-tiny-sd2-v.yaml"}
    assert checkpoints <= {p.name for p in (models / "checkpoints").iterdir()}
    assert (models / "vae" / "sdflow-tiny-vae.safetensors").is_file()
    assert (models / "embeddings" / "sdflow-tiny-embedding.safetensors").is_file()
    before = {p: p.stat().st_mtime_ns for p in models.rglob("*")}
    assert run_setup_hooks(folders) == []
    assert {p: p.stat().st_mtime_ns for p in models.rglob("*")} == before
