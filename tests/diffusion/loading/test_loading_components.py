"""Standalone VAE, UNet and text encoder files in the layouts users' files come in."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffusion.demo_models import build_tiny, write_vae
from diffusion.families import ModelFormatError
from diffusion.ldm_keys import clip_to_ldm, open_clip_to_ldm
from diffusion.loading import load_text_encoder_file, load_unet_file, load_vae_file
from diffusion.model_files import unet_handle
from engine.devices import DevicePolicy
from engine.models import ModelManager
from tests.diffusion.conftest import unet_inputs
from tests.diffusion.loading.test_loading_checkpoints import assert_same_text_encoder, assert_same_unet, assert_same_vae


@pytest.mark.parametrize("original_keys", [True, False])
def test_standalone_vae_in_original_and_diffusers_names(tmp_path, original_keys: bool) -> None:
    file = tmp_path / "vae.safetensors"
    vae = write_vae(file, original_keys=original_keys)
    assert ("encoder.down.0.block.0.conv1.weight" in load_file(file)) is original_keys
    assert_same_vae(vae, load_vae_file(file, torch.float32))


def test_a_file_without_vae_tensors_is_not_taken_for_a_vae(tmp_path, written) -> None:
    with pytest.raises(ModelFormatError, match="no VAE encoder/decoder tensors"):
        only_unet = tmp_path / "unet.safetensors"
        save_file({k: v for k, v in load_file(written["sd15"].file).items() if k.startswith("model.")}, only_unet)
        load_vae_file(only_unet, torch.float32)


@pytest.mark.parametrize("prefixed", [True, False])
def test_unet_only_files_with_or_without_the_checkpoint_prefix(tmp_path, written, prefixed: bool) -> None:
    state = {k: v for k, v in load_file(written["sd2"].file).items() if k.startswith("model.diffusion_model.")}
    if not prefixed:
        state = {k.removeprefix("model.diffusion_model."): v for k, v in state.items()}
    file = tmp_path / "unet.safetensors"
    save_file(state, file)
    detection, unet = load_unet_file(file, torch.float32)
    assert detection.family.id == "sd2"
    assert_same_unet(written["sd2"].tiny.unet, unet)


def test_fp8_weight_storage_computes_close_to_full_precision(tmp_path, written) -> None:
    state = {k: v for k, v in load_file(written["sd15"].file).items() if k.startswith("model.diffusion_model.")}
    file = tmp_path / "unet.safetensors"
    save_file(state, file)
    manager = ModelManager(DevicePolicy.detect())
    handle = unet_handle(file, manager, "fp8_e4m3fn")
    assert handle.unet.conv_in.weight.dtype == torch.float8_e4m3fn
    inputs = unet_inputs(handle.unet)
    with torch.no_grad():
        exact = written["sd15"].tiny.unet(**inputs).sample
        stored = handle.unet(**inputs).sample
    assert not torch.equal(stored, exact)  # 8-bit weights are rounded...
    assert torch.cosine_similarity(stored.flatten(), exact.flatten(), dim=0) > 0.98  # ...in the same computation


@pytest.mark.parametrize("layout", ["transformers4", "transformers5", "checkpoint_prefix"])
def test_clip_l_files(tmp_path, layout: str) -> None:
    model = build_tiny("sd15").text_encoders["clip_l"]
    flat = model.state_dict()  # transformers 5 names: embeddings..., encoder...
    state = {
        "transformers4": {"text_model." + k: v for k, v in flat.items()},
        "transformers5": flat,
        "checkpoint_prefix": clip_to_ldm(flat, "cond_stage_model.transformer."),
    }[layout]
    file = tmp_path / "clip_l.safetensors"
    save_file(state, file)
    slot, loaded = load_text_encoder_file(file, torch.float32, sdxl=False)
    assert slot.key == "clip_l" and slot.default_layer is None and slot.norm_hidden_layer
    assert_same_text_encoder(model, loaded)


def test_open_clip_h_file_is_sd2s_encoder(tmp_path) -> None:
    model = build_tiny("sd2").text_encoders["clip_h"]
    file = tmp_path / "clip_h.safetensors"
    save_file(open_clip_to_ldm(model.state_dict(), ""), file)
    slot, loaded = load_text_encoder_file(file, torch.float32, sdxl=False)
    assert (slot.key, slot.default_layer, slot.norm_hidden_layer) == ("clip_h", -2, True)
    assert_same_text_encoder(model, loaded)


@pytest.mark.parametrize("open_clip", [True, False])
def test_clip_g_files_for_sdxl(tmp_path, open_clip: bool) -> None:
    model = build_tiny("sdxl").text_encoders["clip_g"]
    state = open_clip_to_ldm(model.state_dict(), "") if open_clip else model.state_dict()
    file = tmp_path / "clip_g.safetensors"
    save_file(state, file)
    slot, loaded = load_text_encoder_file(file, torch.float32, sdxl=True)
    assert (slot.key, slot.projected, slot.default_layer, slot.norm_hidden_layer) == ("clip_g", True, -2, False)
    assert_same_text_encoder(model, loaded)


def test_not_a_text_encoder(tmp_path) -> None:
    file = tmp_path / "x.safetensors"
    save_file({"weight": torch.zeros(1)}, file)
    with pytest.raises(ModelFormatError, match=r"x\.safetensors: not a CLIP text encoder"):
        load_text_encoder_file(file, torch.float32, sdxl=False)
