"""Mask nodes on small worked examples."""

import pytest
import torch

from engine import NodeInputError
from nodes.mask import (
    FeatherMask,
    GrowMask,
    ImageToMask,
    InvertMask,
    MaskComposite,
    MaskToImage,
    SolidMask,
    ThresholdMask,
)


def test_solid_mask(make_context):
    out = SolidMask(value=0.25, width=3, height=2).execute(make_context())
    assert out.shape == (1, 2, 3) and out.dtype == torch.float32 and (out == 0.25).all()


def test_invert_mask_accepts_a_single_mask(make_context):
    out = InvertMask(mask=torch.tensor([[0.0, 0.25], [1.0, 0.5]])).execute(make_context())
    assert out.tolist() == [[[1.0, 0.75], [0.0, 0.5]]]


def test_mask_to_image(make_context):
    mask = torch.tensor([[[0.0, 0.5]], [[1.0, 0.25]]])
    out = MaskToImage(mask=mask).execute(make_context())
    assert out.shape == (2, 1, 2, 3)
    assert out[1, 0].tolist() == [[1.0, 1.0, 1.0], [0.25, 0.25, 0.25]]
    out[:] = 0  # an independent tensor
    assert mask.sum() > 0


def test_image_to_mask(make_context):
    image = torch.tensor([[[[0.1, 0.2, 0.3, 0.4]]]])
    for channel, value in (("red", 0.1), ("green", 0.2), ("blue", 0.3), ("alpha", 0.4)):
        out = ImageToMask(image=image, channel=channel).execute(make_context())
        assert out.shape == (1, 1, 1) and out.item() == pytest.approx(value)
    with pytest.raises(NodeInputError, match="channel"):
        ImageToMask(image=image[..., :3], channel="alpha").execute(make_context())


@pytest.mark.parametrize(
    "operation, expected",
    [
        ("multiply", [0.0, 0.3, 0.5, 0.6]),
        ("add", [0.0, 1.0, 1.0, 1.0]),
        ("subtract", [0.0, 0.0, 0.5, 0.0]),
        # logical operations round first: 0.3 → 0, 0.6 → 1, 0.5 → 0 (round half to even)
        ("and", [0.0, 0.0, 0.0, 1.0]),
        ("or", [0.0, 1.0, 1.0, 1.0]),
        ("xor", [0.0, 1.0, 1.0, 0.0]),
    ],
)
def test_mask_composite_operations(operation, expected, make_context):
    destination = torch.tensor([[[0.0, 0.3, 1.0, 0.6]]])
    source = torch.tensor([[[0.0, 1.0, 0.5, 1.0]]])
    out = MaskComposite(destination=destination, source=source, x=0, y=0, operation=operation).execute(make_context())
    assert torch.allclose(out[0, 0], torch.tensor(expected))
    assert torch.equal(destination, torch.tensor([[[0.0, 0.3, 1.0, 0.6]]]))


def test_mask_composite_position_and_clipping(make_context):
    destination = torch.zeros(3, 4)
    source = torch.ones(1, 2, 2)
    out = MaskComposite(destination=destination, source=source, x=3, y=1, operation="add").execute(make_context())
    expected = torch.zeros(1, 3, 4)
    expected[0, 1:3, 3] = 1
    assert torch.equal(out, expected)
    outside = MaskComposite(destination=destination, source=source, x=9, y=9, operation="add").execute(make_context())
    assert not outside.any()


def test_feather_mask_ramps(make_context):
    mask = torch.ones(1, 4, 6)
    out = FeatherMask(mask=mask, left=2, top=0, right=3, bottom=1).execute(make_context())
    columns = [1 / 2, 2 / 2, 1.0, 3 / 3, 2 / 3, 1 / 3]  # i-th from an edge × (i + 1) / width of the ramp
    assert out[0, 0].tolist() == pytest.approx(columns)
    assert out[0, 3].tolist() == pytest.approx(columns)  # bottom = 1: the last row × 1 / 1
    top = FeatherMask(mask=mask, left=0, top=4, right=0, bottom=0).execute(make_context())
    assert top[0, :, 0].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert torch.equal(FeatherMask(mask=mask, left=0, top=0, right=0, bottom=0).execute(make_context()), mask)


def test_feather_mask_ramp_longer_than_the_mask(make_context):
    out = FeatherMask(mask=torch.ones(2, 1, 2), left=10, top=0, right=0, bottom=0).execute(make_context())
    assert out.shape == (2, 1, 2) and out[1, 0].tolist() == [0.5, 1.0]


def _dot(size=5):
    mask = torch.zeros(1, size, size)
    mask[0, size // 2, size // 2] = 1.0
    return mask


def test_grow_mask_tapered_is_a_diamond(make_context):
    out = GrowMask(mask=_dot(), expand=1, tapered_corners=True).execute(make_context())
    assert out[0].tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    out = GrowMask(mask=_dot(), expand=2, tapered_corners=True).execute(make_context())
    assert out[0].tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]


def test_grow_mask_square(make_context):
    out = GrowMask(mask=_dot(), expand=1, tapered_corners=False).execute(make_context())
    expected = torch.zeros(1, 5, 5)
    expected[0, 1:4, 1:4] = 1
    assert torch.equal(out, expected)


def test_grow_mask_grey_values_and_edges(make_context):
    mask = torch.tensor([[0.2, 0.0, 0.0, 0.7]])
    out = GrowMask(mask=mask, expand=1, tapered_corners=True).execute(make_context())
    assert torch.equal(out, torch.tensor([[[0.2, 0.2, 0.7, 0.7]]]))


def test_shrink_mask(make_context):
    mask = torch.zeros(1, 5, 5)
    mask[0, 1:4, 1:4] = 1.0
    for tapered in (True, False):
        out = GrowMask(mask=mask, expand=-1, tapered_corners=tapered).execute(make_context())
        assert torch.equal(out, _dot())
    full = torch.ones(1, 3, 3)  # the border counts as the edge pixels themselves: nothing erodes
    assert torch.equal(GrowMask(mask=full, expand=-2, tapered_corners=True).execute(make_context()), full)
    grey = torch.tensor([[0.2, 0.9, 0.9, 0.9, 0.5]])
    out = GrowMask(mask=grey, expand=-1, tapered_corners=True).execute(make_context())
    assert torch.equal(out, torch.tensor([[[0.2, 0.2, 0.9, 0.5, 0.5]]]))


def test_grow_mask_large_expand_stops_early(make_context):
    out = GrowMask(mask=_dot(), expand=16384, tapered_corners=True).execute(make_context())
    assert torch.equal(out, torch.ones(1, 5, 5))
    same = GrowMask(mask=_dot(), expand=0, tapered_corners=True).execute(make_context())
    assert torch.equal(same, _dot())


def test_threshold_mask(make_context):
    out = ThresholdMask(mask=torch.tensor([[[0.2, 0.5, 0.51, 1.0]]]), value=0.5).execute(make_context())
    assert out.tolist() == [[[0.0, 0.0, 1.0, 1.0]]] and out.dtype == torch.float32


def _reference_grow(mask, expand, tapered):
    """Grey dilation/erosion written as loops over a 3×3 footprint; out-of-bounds neighbours ignored."""
    offsets = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if not (tapered and di and dj)]
    pick = max if expand > 0 else min
    out = mask.clone()
    for _ in range(abs(expand)):
        src = out.clone()
        for b in range(out.shape[0]):
            for i in range(out.shape[1]):
                for j in range(out.shape[2]):
                    values = [
                        src[b, i + di, j + dj].item()
                        for di, dj in offsets
                        if 0 <= i + di < out.shape[1] and 0 <= j + dj < out.shape[2]
                    ]
                    out[b, i, j] = pick(values)
    return out


@pytest.mark.parametrize("expand", [-3, -1, 1, 2, 9])
@pytest.mark.parametrize("tapered", [True, False])
def test_grow_mask_matches_reference(expand, tapered, make_context):
    torch.manual_seed(expand + 10 * tapered)
    mask = torch.rand(2, 5, 6)
    out = GrowMask(mask=mask, expand=expand, tapered_corners=tapered).execute(make_context())
    assert out.shape == (2, 5, 6)
    assert torch.equal(out, _reference_grow(mask, expand, tapered))
