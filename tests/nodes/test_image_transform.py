"""Image transform nodes on small hand-made tensors."""

import pytest
import torch
import torch.nn.functional as F

from engine import NodeInputError
from nodes.image_transform import (
    EmptyImage,
    ImageBatch,
    ImageCompositeMasked,
    ImageCrop,
    ImageInvert,
    ImagePadForOutpaint,
    ImageScale,
    ImageScaleBy,
    ImageScaleToTotalPixels,
)


def _ramp(batch, height, width, channels=3):
    return torch.arange(batch * height * width * channels, dtype=torch.float32).reshape(batch, height, width, channels) / 100


# ---- scaling --------------------------------------------------------------------------------


def test_image_scale_bilinear(make_context):
    image = _ramp(1, 2, 2)
    out = ImageScale(image=image, upscale_method="bilinear", width=4, height=4, crop="disabled").execute(make_context())
    expected = F.interpolate(image.movedim(-1, 1), size=(4, 4), mode="bilinear").movedim(1, -1)
    assert out.shape == (1, 4, 4, 3) and torch.equal(out, expected)


def test_image_scale_nearest_doubles_pixels(make_context):
    image = torch.tensor([[[[0.0] * 3, [1.0] * 3]]])  # 1 high, 2 wide
    out = ImageScale(image=image, upscale_method="nearest-exact", width=4, height=2, crop="disabled").execute(make_context())
    assert out[..., 0].tolist() == [[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]]


def test_image_scale_zero_keeps_aspect_ratio(make_context):
    image = _ramp(2, 4, 8)
    by_height = ImageScale(image=image, upscale_method="area", width=0, height=2, crop="disabled").execute(make_context())
    assert by_height.shape == (2, 2, 4, 3)
    by_width = ImageScale(image=image, upscale_method="area", width=2, height=0, crop="disabled").execute(make_context())
    assert by_width.shape == (2, 1, 2, 3)
    tiny = ImageScale(image=image, upscale_method="area", width=1, height=0, crop="disabled").execute(make_context())
    assert tiny.shape == (2, 1, 1, 3)  # max(1, round(4 * 1 / 8)) = 1
    same = ImageScale(image=image, upscale_method="area", width=0, height=0, crop="disabled").execute(make_context())
    assert torch.equal(same, image)


def test_image_scale_center_crop(make_context):
    image = _ramp(1, 4, 8)
    out = ImageScale(image=image, upscale_method="nearest-exact", width=4, height=4, crop="center").execute(make_context())
    assert torch.equal(out, image[:, :, 2:6])


def test_image_scale_lanczos(make_context):
    image = torch.full((1, 4, 4, 3), 0.2)
    out = ImageScale(image=image, upscale_method="lanczos", width=8, height=6, crop="disabled").execute(make_context())
    assert out.shape == (1, 6, 8, 3)
    assert torch.allclose(out, torch.full_like(out, 51 / 255))


def test_image_scale_by(make_context):
    image = _ramp(1, 4, 6)
    assert ImageScaleBy(image=image, upscale_method="bilinear", scale_by=0.5).execute(make_context()).shape == (1, 2, 3, 3)
    assert ImageScaleBy(image=image, upscale_method="bicubic", scale_by=1.5).execute(make_context()).shape == (1, 6, 9, 3)
    assert ImageScaleBy(image=image, upscale_method="area", scale_by=0.01).execute(make_context()).shape == (1, 1, 1, 3)


def test_image_scale_to_total_pixels(make_context):
    image = _ramp(1, 32, 64)
    out = ImageScaleToTotalPixels(image=image, upscale_method="nearest-exact", megapixels=0.01).execute(make_context())
    # scale = sqrt(0.01 * 1024 * 1024 / (64 * 32)) ≈ 2.2627 → 144.8 × 72.4
    assert out.shape == (1, 72, 145, 3)


# ---- simple transforms ----------------------------------------------------------------------


def test_image_invert(make_context):
    image = torch.tensor([[[[0.0, 0.25, 1.0]]]])
    out = ImageInvert(image=image).execute(make_context())
    assert out.tolist() == [[[[1.0, 0.75, 0.0]]]] and image.tolist() == [[[[0.0, 0.25, 1.0]]]]


def test_image_batch_same_size(make_context):
    a, b = _ramp(1, 2, 2), _ramp(2, 2, 2) + 1
    out = ImageBatch(image1=a, image2=b).execute(make_context())
    assert out.shape == (3, 2, 2, 3) and torch.equal(out[0], a[0]) and torch.equal(out[1:], b)


def test_image_batch_resizes_second_image(make_context):
    a = torch.zeros(1, 2, 2, 3)
    b = torch.ones(1, 4, 8, 3)
    out = ImageBatch(image1=a, image2=b).execute(make_context())
    assert out.shape == (2, 2, 2, 3) and torch.equal(out[1], torch.ones(2, 2, 3))


def test_image_batch_rejects_channel_mismatch(make_context):
    with pytest.raises(NodeInputError, match="image2"):
        ImageBatch(image1=torch.zeros(1, 2, 2, 3), image2=torch.zeros(1, 2, 2, 4)).execute(make_context())


def test_empty_image_colour(make_context):
    out = EmptyImage(width=4, height=3, batch_size=2, color=0xFF8000).execute(make_context())
    assert out.shape == (2, 3, 4, 3) and out.dtype == torch.float32
    assert torch.equal(out[1, 2, 3], torch.tensor([1.0, 128 / 255, 0.0]))
    assert torch.equal(out, out[:1, :1, :1].expand_as(out))


def test_image_crop(make_context):
    image = _ramp(1, 4, 5)
    out = ImageCrop(image=image, width=2, height=3, x=1, y=1).execute(make_context())
    assert torch.equal(out, image[:, 1:4, 1:3])
    out[:] = 0  # a new tensor, not a view of the input
    assert image.sum() > 0
    clipped = ImageCrop(image=image, width=10, height=10, x=50, y=50).execute(make_context())
    assert torch.equal(clipped, image[:, 3:, 4:])


# ---- outpainting ----------------------------------------------------------------------------


def _reference_feather(h, w, left, top, right, bottom, feathering):
    """The per-pixel rule written as plain loops, to check the vectorised node."""
    t = torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            d = min(i if top else h, h - i if bottom else h, j if left else w, w - j if right else w)
            if d < feathering:
                v = (feathering - d) / feathering
                t[i, j] = v * v
    return t


def test_pad_for_outpaint_image_and_mask_values(make_context):
    image = torch.rand(2, 10, 10, 3)
    padded, mask = ImagePadForOutpaint(image=image, left=4, top=0, right=0, bottom=2, feathering=3).execute(make_context())
    assert padded.shape == (2, 12, 14, 3) and mask.shape == (1, 12, 14)
    assert torch.equal(padded[:, :10, 4:], image)
    assert (padded[:, :, :4] == 0.5).all() and (padded[:, 10:] == 0.5).all()
    assert (mask[0, :, :4] == 1).all() and (mask[0, 10:] == 1).all()
    # inside: distance to the left padding (column j) or the bottom padding (10 - row)
    assert mask[0, 0, 4].item() == 1.0  # j = 0
    assert mask[0, 0, 5].item() == pytest.approx((2 / 3) ** 2)  # j = 1
    assert mask[0, 0, 6].item() == pytest.approx((1 / 3) ** 2)  # j = 2
    assert mask[0, 0, 7].item() == 0.0  # j = 3 ≥ feathering
    assert mask[0, 9, 9].item() == pytest.approx((2 / 3) ** 2)  # row 9: d = 10 - 9 = 1
    assert mask[0, 5, 9].item() == 0.0
    assert torch.equal(mask[0, :10, 4:], _reference_feather(10, 10, 4, 0, 0, 2, 3))


def test_pad_for_outpaint_matches_the_rule_on_every_side(make_context):
    image = torch.zeros(1, 9, 12, 3)
    _, mask = ImagePadForOutpaint(image=image, left=8, top=8, right=8, bottom=8, feathering=4).execute(make_context())
    assert torch.equal(mask[0, 8:17, 8:20], _reference_feather(9, 12, 8, 8, 8, 8, 4))


def test_pad_for_outpaint_without_feathering(make_context):
    image = torch.zeros(1, 10, 10, 3)
    for feathering in (0, 5):  # 5: 2 × 5 is not below the image size
        _, mask = ImagePadForOutpaint(image=image, left=0, top=8, right=0, bottom=0, feathering=feathering).execute(make_context())
        assert mask.shape == (1, 18, 10)
        assert (mask[0, :8] == 1).all() and (mask[0, 8:] == 0).all()


# ---- compositing ----------------------------------------------------------------------------


def test_composite_pastes_source_at_position(make_context):
    destination = torch.zeros(1, 4, 4, 3)
    source = torch.ones(1, 2, 2, 3)
    out = ImageCompositeMasked(destination=destination, source=source, x=1, y=2, resize_source=False).execute(make_context())
    expected = torch.zeros(4, 4)
    expected[2:4, 1:3] = 1
    assert torch.equal(out[0, ..., 0], expected)
    assert destination.sum() == 0  # inputs untouched


def test_composite_is_clipped_to_the_destination(make_context):
    out = ImageCompositeMasked(
        destination=torch.zeros(1, 4, 4, 3), source=torch.ones(1, 3, 3, 3), x=3, y=3, resize_source=False
    ).execute(make_context())
    assert out.sum() == 3 and out[0, 3, 3].tolist() == [1.0, 1.0, 1.0]
    outside = ImageCompositeMasked(
        destination=torch.zeros(1, 4, 4, 3), source=torch.ones(1, 3, 3, 3), x=10, y=0, resize_source=False
    ).execute(make_context())
    assert outside.sum() == 0


def test_composite_blends_through_mask(make_context):
    destination = torch.zeros(2, 4, 4, 3)
    source = torch.ones(1, 2, 2, 3)
    mask = torch.tensor([[1.0, 0.5], [0.0, 0.25]])
    out = ImageCompositeMasked(destination=destination, source=source, x=0, y=0, resize_source=False, mask=mask).execute(make_context())
    assert out.shape == (2, 4, 4, 3)
    assert out[1, :2, :2, 2].tolist() == [[1.0, 0.5], [0.0, 0.25]]
    big_mask = torch.ones(1, 8, 8)  # resized to the source size
    out = ImageCompositeMasked(destination=destination, source=source, x=2, y=2, resize_source=False, mask=big_mask).execute(make_context())
    assert out[0, 2:, 2:].min() == 1.0 and out.sum() == 2 * 4 * 3


def test_composite_resize_source(make_context):
    out = ImageCompositeMasked(
        destination=torch.zeros(1, 4, 6, 3), source=torch.ones(1, 2, 2, 3), x=0, y=0, resize_source=True
    ).execute(make_context())
    assert torch.equal(out, torch.ones(1, 4, 6, 3))


def test_composite_matches_channels(make_context):
    rgb = ImageCompositeMasked(
        destination=torch.zeros(1, 2, 2, 3), source=torch.full((1, 2, 2, 4), 0.5), x=0, y=0, resize_source=False
    ).execute(make_context())
    assert rgb.shape == (1, 2, 2, 3) and (rgb == 0.5).all()
    rgba = ImageCompositeMasked(
        destination=torch.zeros(1, 2, 2, 4), source=torch.full((1, 1, 1, 3), 0.5), x=0, y=0, resize_source=False
    ).execute(make_context())
    assert rgba[0, 0, 0].tolist() == [0.5, 0.5, 0.5, 1.0] and rgba[0, 1, 1].tolist() == [0.0] * 4
