"""Single files and diffusers folders load through the user's path and compute like the originals."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from diffusion.demo_models import FAMILIES, TinyModel, build_tiny, write_diffusers_folder, write_single_file
from diffusion.loading import Dtypes, load_checkpoint
from tests.diffusion.conftest import max_difference, unet_inputs

TOLERANCE = 1e-5
EXPECTED_ENCODERS = {
    "sd15": ["clip_l"], "sd15-inpaint": ["clip_l"], "sd2": ["clip_h"], "sd2-v": ["clip_h"], "sd2-inpaint": ["clip_h"],
    "sdxl": ["clip_l", "clip_g"], "sdxl-refiner": ["clip_g"],
}


def assert_same_unet(expected: UNet2DConditionModel, actual: UNet2DConditionModel) -> None:
    inputs = unet_inputs(expected)
    with torch.no_grad():
        assert max_difference(expected(**inputs).sample, actual(**inputs).sample) <= TOLERANCE


def assert_same_vae(expected: AutoencoderKL, actual: AutoencoderKL) -> None:
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        latents = expected.encode(pixels).latent_dist.mean
        assert max_difference(latents, actual.encode(pixels).latent_dist.mean) <= TOLERANCE
        assert max_difference(expected.decode(latents).sample, actual.decode(latents).sample) <= TOLERANCE


def assert_same_text_encoder(expected, actual) -> None:
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70])
    with torch.no_grad():
        a, b = expected(ids, output_hidden_states=True), actual(ids, output_hidden_states=True)
    for layer in range(len(a.hidden_states)):
        assert max_difference(a.hidden_states[layer], b.hidden_states[layer]) <= TOLERANCE
    assert max_difference(a.last_hidden_state, b.last_hidden_state) <= TOLERANCE
    if isinstance(expected, CLIPTextModelWithProjection):
        assert max_difference(a.text_embeds, b.text_embeds) <= TOLERANCE


def assert_same_checkpoint(tiny, checkpoint) -> None:
    assert_same_unet(tiny.unet, checkpoint.unet)
    assert_same_vae(tiny.vae, checkpoint.vae)
    assert sorted(checkpoint.encoders) == sorted(tiny.text_encoders)
    for key, (slot, model) in checkpoint.encoders.items():
        assert slot.key == key
        assert_same_text_encoder(tiny.text_encoders[key], model)


@pytest.mark.parametrize("family", FAMILIES)
def test_single_file_matches_diffusers_models(written, family: str) -> None:
    checkpoint = load_checkpoint(written[family].file, Dtypes())
    assert checkpoint.detection.family.id == family
    assert checkpoint.detection.prediction == ("v" if family == "sd2-v" else "eps")
    assert list(checkpoint.encoders) == EXPECTED_ENCODERS[family]
    assert_same_checkpoint(written[family].tiny, checkpoint)


@pytest.mark.parametrize("family", ["sd2-v", "sdxl"])
def test_diffusers_folder_loads_and_round_trips_through_a_single_file(tmp_path, family: str) -> None:
    tiny = build_tiny(family)
    folder = write_diffusers_folder(tiny, tmp_path / "diffusers")
    from_folder = load_checkpoint(folder, Dtypes())
    assert from_folder.detection.family.id == family
    assert from_folder.detection.prediction == ("v" if family == "sd2-v" else "eps")
    assert_same_checkpoint(tiny, from_folder)
    # folder → (reloaded by diffusers) → single file with original names → our loader
    reloaded = TinyModel(
        family,
        UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True),
        AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True),
        {key: type(model).from_pretrained(folder / ("text_encoder_2" if key == "clip_g" else "text_encoder"), local_files_only=True)
         for key, model in tiny.text_encoders.items()},
    )
    file = tmp_path / "round-trip.safetensors"
    write_single_file(reloaded, file)
    assert_same_checkpoint(tiny, load_checkpoint(file, Dtypes()))


@pytest.mark.parametrize("stored", [torch.float16, torch.bfloat16])
def test_half_precision_files_load_into_the_chosen_dtype(tmp_path, written, stored) -> None:
    file = tmp_path / "half.safetensors"
    write_single_file(written["sdxl"].tiny, file, dtype=stored)
    checkpoint = load_checkpoint(file, Dtypes())
    assert {p.dtype for p in checkpoint.unet.parameters()} == {torch.float32}
    assert {p.dtype for p in checkpoint.vae.parameters()} == {torch.float32}
    half = load_checkpoint(file, Dtypes(unet=torch.float16, vae=torch.bfloat16, text=torch.float16))
    assert {p.dtype for p in half.unet.parameters()} == {torch.float16}
    assert {p.dtype for p in half.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for _, m in half.encoders.values() for p in m.parameters()} == {torch.float16}
    # the values are the stored (rounded) ones, nothing else changed
    original = written["sdxl"].tiny.unet.conv_in.weight.to(stored).float()
    assert torch.equal(checkpoint.unet.conv_in.weight, original)


def test_sd2_keeps_its_last_text_layer(tmp_path) -> None:
    """Real SD2 files hold 24 text layers; the 24th must load too (CLIP skip -1 uses it)."""
    tiny = build_tiny("sd2")
    config = tiny.text_encoders["clip_h"].config
    config.num_hidden_layers = 24
    torch.manual_seed(0)
    tiny.text_encoders["clip_h"] = CLIPTextModel(config).eval()
    file = tmp_path / "sd2-24.safetensors"
    write_single_file(tiny, file)
    (slot, model), = load_checkpoint(file, Dtypes()).encoders.values()
    assert model.config.num_hidden_layers == 24
    assert_same_text_encoder(tiny.text_encoders["clip_h"], model)
