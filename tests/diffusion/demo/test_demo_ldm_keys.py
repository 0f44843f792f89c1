"""Original-format files read back through diffusers' own single-file converters, tensor for tensor."""

from __future__ import annotations

import pytest
import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
    create_diffusers_clip_model_from_ldm,
)
from safetensors.torch import load_file

from diffusion import ldm_keys
from diffusion.demo_models import write_vae

from tests.diffusion.demo.conftest import Demo, assert_same_tensors

# family -> (encoder key, prefix in the file, OpenCLIP layout?)
TEXT_LAYOUTS = {
    "sd15": [("clip_l", "cond_stage_model.transformer.", False)],
    "sd2": [("clip_h", "cond_stage_model.model.", True)],
    "sdxl": [("clip_l", "conditioner.embedders.0.transformer.", False), ("clip_g", "conditioner.embedders.1.model.", True)],
    "sdxl-refiner": [("clip_g", "conditioner.embedders.0.model.", True)],
}
TEXT_LAYOUTS |= {"sd15-inpaint": TEXT_LAYOUTS["sd15"], "sd2-v": TEXT_LAYOUTS["sd2"], "sd2-inpaint": TEXT_LAYOUTS["sd2"]}


def test_unet_round_trip(demo: Demo) -> None:
    unet = demo.tiny.unet
    assert_same_tensors(convert_ldm_unet_checkpoint(demo.checkpoint, unet.config), unet.state_dict())


def test_vae_round_trip(demo: Demo) -> None:
    vae = demo.tiny.vae
    assert demo.checkpoint["first_stage_model.decoder.mid.attn_1.proj_out.weight"].shape == (32, 32, 1, 1)
    assert_same_tensors(convert_ldm_vae_checkpoint(demo.checkpoint, vae.config), vae.state_dict())


def test_text_encoders_round_trip(demo: Demo) -> None:
    for key, prefix, open_clip in TEXT_LAYOUTS[demo.tiny.family]:
        model = demo.tiny.text_encoders[key]
        if open_clip:
            converted = convert_open_clip_checkpoint(model, demo.checkpoint, prefix=prefix)
        else:
            converted = convert_ldm_clip_checkpoint(demo.checkpoint)
        if not hasattr(model, "text_model"):  # transformers 5's CLIPTextModel has no `text_model.` level
            converted = {name.removeprefix("text_model."): value for name, value in converted.items()}
        assert_same_tensors(converted, model.state_dict())


def test_diffusers_picks_each_encoder_from_the_file(demo: Demo) -> None:
    """diffusers tells an SDXL file's two encoders apart (and finds the refiner's) by their widths."""
    for subfolder, key in _encoders_by_subfolder(demo.tiny.family).items():
        expected = demo.tiny.text_encoders[key]
        loaded = create_diffusers_clip_model_from_ldm(
            type(expected), demo.checkpoint, subfolder=subfolder, config=str(demo.folder), local_files_only=True
        )
        assert_same_tensors(loaded.state_dict(), expected.state_dict())


def _encoders_by_subfolder(family: str) -> dict[str, str]:
    if family == "sdxl":
        return {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
    if family == "sdxl-refiner":
        return {"text_encoder_2": "clip_g"}
    return {"text_encoder": "clip_l" if family.startswith("sd15") else "clip_h"}


def test_unet_loads_with_from_single_file(demo: Demo) -> None:
    unet = UNet2DConditionModel.from_single_file(demo.file, config=str(demo.folder), subfolder="unet", local_files_only=True)
    assert_same_tensors(unet.state_dict(), demo.tiny.unet.state_dict())


@pytest.mark.parametrize("original_keys", [True, False])
def test_standalone_vae(tmp_path, original_keys: bool) -> None:
    path = tmp_path / "vae.safetensors"
    vae = write_vae(path, original_keys=original_keys)
    state = load_file(path)
    assert ("encoder.mid.attn_1.q.weight" in state) == original_keys
    got = convert_ldm_vae_checkpoint(state, vae.config) if original_keys else state
    assert_same_tensors(got, vae.state_dict())


def test_unet_numbering_follows_layers_per_block() -> None:
    """Three levels, two resnets each, attention in the middle level only."""
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        norm_num_groups=8,
        cross_attention_dim=16,
        attention_head_dim=4,
    )
    state = ldm_keys.unet_to_ldm(unet.state_dict(), unet.config)
    assert "model.diffusion_model.input_blocks.6.0.op.weight" in state  # 1 + level 1 * 3 + 2
    assert "model.diffusion_model.input_blocks.4.1.proj_in.weight" in state
    assert "model.diffusion_model.output_blocks.5.2.conv.weight" in state  # after attention
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in state  # no attention at up level 0
    assert_same_tensors(convert_ldm_unet_checkpoint(state, unet.config), unet.state_dict())


def test_vae_levels_are_reversed_in_the_decoder() -> None:
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64),
        layers_per_block=2,
        norm_num_groups=8,
    )
    state = ldm_keys.vae_to_ldm(vae.state_dict(), vae.config)
    assert state["first_stage_model.decoder.up.1.block.0.conv1.weight"].shape[0] == 64
    assert "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight" in state
    assert_same_tensors(convert_ldm_vae_checkpoint(state, vae.config), vae.state_dict())


def test_open_clip_concatenates_q_k_v() -> None:
    config = transformers.CLIPTextConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1, projection_dim=4, vocab_size=10)
    model = transformers.CLIPTextModelWithProjection(config)
    state = ldm_keys.open_clip_to_ldm(model.state_dict(), prefix="")
    layer = model.text_model.encoder.layers[0].self_attn
    parts = [layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight]
    assert torch.equal(state["transformer.resblocks.0.attn.in_proj_weight"], torch.cat(parts))
    assert torch.equal(state["text_projection"], model.text_projection.weight.T)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError, match="controlnet_cond_embedding"):
        ldm_keys.unet_to_ldm({"controlnet_cond_embedding.conv_in.weight": torch.zeros(1)}, {"layers_per_block": 1})
