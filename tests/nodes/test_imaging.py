"""nodes.imaging: conversions, ComfyUI's common_upscale, filename prefixes and counters."""

from datetime import datetime

import pytest
import torch
import torch.nn.functional as F

from nodes.imaging import (
    as_mask_batch,
    center_crop,
    common_upscale,
    expand_prefix,
    from_pil,
    next_counter,
    repeat_to_batch_size,
    to_pil,
)


def test_pil_round_trip_truncates_like_comfyui():
    image = torch.tensor([[[0.0, 0.5, 1.0], [0.999, 1.5, -0.2]]])  # [H=1, W=2, C=3]
    pil = to_pil(image)
    assert pil.mode == "RGB" and pil.size == (2, 1)
    back = from_pil(pil)
    expected = torch.tensor([[[0, 127, 255], [254, 255, 0]]], dtype=torch.float32) / 255
    assert torch.equal(back, expected)


def test_single_channel_images_become_grey():
    pil = to_pil(torch.full((2, 3, 1), 1.0))
    assert pil.mode == "L" and from_pil(pil).shape == (2, 3)


def test_mask_batch_and_repeat():
    assert as_mask_batch(torch.zeros(3, 4)).shape == (1, 3, 4)
    assert as_mask_batch(torch.zeros(2, 1, 3, 4)).shape == (2, 3, 4)
    batch = torch.arange(2.0)[:, None]
    assert repeat_to_batch_size(batch, 5)[:, 0].tolist() == [0, 1, 0, 1, 0]
    assert repeat_to_batch_size(batch, 1)[:, 0].tolist() == [0]
    assert repeat_to_batch_size(batch, 2) is batch


def test_center_crop_narrows_to_target_aspect():
    samples = torch.arange(4 * 8.0).reshape(1, 1, 4, 8)
    # wider than 1:1 → x = round((8 - 8 * (1 / 2)) / 2) = 2 columns cut on each side
    assert torch.equal(center_crop(samples, 4, 4), samples[..., 2:6])
    tall = samples.transpose(-1, -2)  # 8 high, 4 wide
    assert torch.equal(center_crop(tall, 4, 4), tall[..., 2:6, :])
    assert torch.equal(center_crop(samples, 2, 1), samples)


def test_common_upscale_uses_interpolate_or_lanczos():
    samples = torch.rand(2, 3, 4, 6)
    out = common_upscale(samples, 3, 2, "bilinear", "disabled")
    assert torch.equal(out, F.interpolate(samples, size=(2, 3), mode="bilinear"))
    constant = torch.full((1, 3, 4, 6), 0.6)
    out = common_upscale(constant, 12, 8, "lanczos", "disabled")
    assert out.shape == (1, 3, 8, 12)
    # goes through 8-bit images, as ComfyUI does
    assert torch.allclose(out, torch.full_like(out, int(0.6 * 255) / 255))


def test_expand_prefix_tokens():
    now = datetime(2024, 3, 7, 9, 5, 2)
    assert expand_prefix("a_%width%x%height%", 640, 480, now) == "a_640x480"
    assert expand_prefix("%year%-%month%-%day% %hour%:%minute%:%second%", 1, 1, now) == "2024-03-07 09:05:02"
    assert expand_prefix("%date:yyyy-MM-dd%/img", 1, 1, now) == "2024-03-07/img"
    assert expand_prefix("%date:yy_M_d_hhmmss%", 1, 1, now) == "24_3_7_090502"
    assert expand_prefix("img_%batch_num%", 1, 1, now) == "img_%batch_num%"


def test_next_counter(tmp_path):
    assert next_counter(tmp_path, "img") == 1
    for name in ("img_00003_.png", "img_00010_.png", "img_x_00099_.png", "imgs_00050_.png", "img_00077.png"):
        (tmp_path / name).touch()
    assert next_counter(tmp_path, "img") == 11
    assert next_counter(tmp_path, "img_x") == 100


def test_next_counter_with_batch_number(tmp_path):
    (tmp_path / "img_0_00004_.png").touch()
    (tmp_path / "img_1_00005_.png").touch()
    assert next_counter(tmp_path, "img_%batch_num%") == 6


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"])
def test_every_upscale_method_runs(method):
    assert common_upscale(torch.rand(1, 3, 5, 7), 4, 3, method, "center").shape == (1, 3, 3, 4)
