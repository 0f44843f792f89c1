"""SDXL's added conditions, with ComfyUI's defaults, fed to a tiny diffusers UNet."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel

from diffusion.sdxl_conditions import added_conditions, time_ids

POOLED = 32
TIME_DIM = 8
SIZE = (640, 384)  # the image being sampled (width, height): a 80x48 latent


def test_base_defaults():
    assert time_ids({}, SIZE) == [384.0, 640.0, 0.0, 0.0, 384.0, 640.0]
    assert time_ids({"width": 1024, "height": 512}, SIZE) == [512.0, 1024.0, 0.0, 0.0, 512.0, 1024.0]
    assert time_ids({"width": 1024}, SIZE) == [384.0, 1024.0, 0.0, 0.0, 384.0, 1024.0]
    entry = {"width": 1024, "height": 512, "crop_w": 8, "crop_h": 16, "target_width": 2048, "target_height": 4096}
    assert time_ids(entry, SIZE) == [512.0, 1024.0, 16.0, 8.0, 4096.0, 2048.0]


def test_refiner_defaults():
    assert time_ids({}, SIZE, refiner=True) == [384.0, 640.0, 0.0, 0.0, 6.0]
    assert time_ids({}, SIZE, refiner=True, negative=True) == [384.0, 640.0, 0.0, 0.0, 2.5]
    assert time_ids({"aesthetic_score": 3, "width": 512}, SIZE, refiner=True, negative=True) == [384.0, 512.0, 0.0, 0.0, 3.0]


def test_shapes_follow_the_pooled_batch():
    pooled = torch.randn(2, POOLED)
    conditions = added_conditions({"pooled_output": pooled, "width": 1024}, SIZE)
    assert conditions["text_embeds"] is pooled
    assert conditions["time_ids"].shape == (2, 6) and conditions["time_ids"].dtype == torch.float32
    assert added_conditions({"pooled_output": pooled}, SIZE, refiner=True)["time_ids"].shape == (2, 5)
    with pytest.raises(ValueError):
        added_conditions({}, SIZE)


def tiny_unet(time_ids_count: int) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
        cross_attention_dim=16,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_DIM,
        projection_class_embeddings_input_dim=POOLED + time_ids_count * TIME_DIM,
    ).eval()


@pytest.mark.parametrize(
    ("refiner", "entry", "by_hand"),
    [
        (False, {}, [384, 640, 0, 0, 384, 640]),
        (False, {"width": 1024, "height": 832, "crop_w": 4}, [832, 1024, 0, 4, 832, 1024]),
        (True, {}, [384, 640, 0, 0, 6.0]),
    ],
)
def test_unet_takes_them_as_added_cond_kwargs(refiner, entry, by_hand):
    unet = tiny_unet(len(by_hand))
    torch.manual_seed(1)
    pooled, sample, context = torch.randn(1, POOLED), torch.randn(1, 4, 8, 8), torch.randn(1, 77, 16)

    def predict(added):
        with torch.no_grad():
            return unet(sample, 500, encoder_hidden_states=context, added_cond_kwargs=added).sample

    ours = predict(added_conditions({**entry, "pooled_output": pooled}, SIZE, refiner=refiner))
    expected = predict({"text_embeds": pooled, "time_ids": torch.tensor([by_hand], dtype=torch.float32)})
    assert torch.equal(ours, expected)
    other = list(by_hand)
    other[0] += 256
    moved = predict({"text_embeds": pooled, "time_ids": torch.tensor([other], dtype=torch.float32)})
    assert not torch.allclose(ours, moved)
