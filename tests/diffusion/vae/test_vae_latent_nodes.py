"""Latent operations and the latent nodes, on small hand-made tensors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from diffusion.latents import bislerp, composite, feather_mask, slerp
from nodes.latent import (
    EmptyLatentImage,
    LatentBlend,
    LatentComposite,
    LatentFromBatch,
    LatentUpscale,
    LatentUpscaleBy,
    RepeatLatentBatch,
    SetLatentNoiseMask,
)


def run(node_class, ctx, **inputs):
    """Run a node on inputs, checking that it leaves them unchanged."""
    before = copy.deepcopy(inputs)
    result = node_class.model_construct(**inputs).execute(ctx)
    for name, value in inputs.items():
        assert _same(value, before[name]), f"{node_class.__name__} changed its input {name}"
    return result


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def numbered(batch: int, height: int = 2, width: int = 3) -> torch.Tensor:
    """Latents whose every value is the index of its batch entry."""
    return torch.arange(batch, dtype=torch.float32).reshape(-1, 1, 1, 1).expand(batch, 4, height, width).clone()


# ---- bislerp ---------------------------------------------------------------------------------


def test_slerp_of_orthogonal_vectors_by_hand() -> None:
    v1, v2 = torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0.0, 3, 0, 0]])
    half = slerp(v1, v2, torch.tensor([[0.5]]))
    # direction halfway along the arc, (e1 + e2)/√2; length halfway between 1 and 3
    assert torch.allclose(half, torch.tensor([[math.sqrt(2), math.sqrt(2), 0, 0]]), atol=1e-6)
    quarter = slerp(v1, v2, torch.tensor([[0.25]]))
    angle = math.pi / 8
    assert torch.allclose(quarter, 1.5 * torch.tensor([[math.cos(angle), math.sin(angle), 0, 0]]), atol=1e-6)


def test_slerp_edge_cases_give_no_nan() -> None:
    v1 = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 0, 0, 0], [0.0, 0, 0, 0]])
    v2 = torch.tensor([[2.0, 0, 0, 0], [-1.0, 0, 0, 0], [0.0, 2, 0, 0], [0.0, 0, 0, 0]])
    result = slerp(v1, v2, torch.full((4, 1), 0.5))
    assert torch.allclose(result[0], v1[0])  # parallel: the first vector
    assert torch.allclose(result[1], torch.zeros(4))  # opposite: the linear mix
    # zero and e2: no direction from the zero vector, a quarter turn's weight for e2, length 1
    assert torch.allclose(result[2], torch.tensor([0, math.sin(math.pi / 4), 0, 0]), atol=1e-6)
    assert torch.equal(result[3], torch.zeros(4))


def test_bislerp_by_hand() -> None:
    samples = torch.zeros(1, 4, 1, 2)
    samples[0, :, 0, 0] = torch.tensor([1.0, 0, 0, 0])
    samples[0, :, 0, 1] = torch.tensor([0.0, 3, 0, 0])
    wider = bislerp(samples, 3, 1)
    # bilinear sampling of 2 → 3 takes source positions 0 (clamped), 0.5 and 1 (clamped)
    assert torch.allclose(wider[0, :, 0, 0], samples[0, :, 0, 0])
    assert torch.allclose(wider[0, :, 0, 1], torch.tensor([math.sqrt(2), math.sqrt(2), 0, 0]), atol=1e-6)
    assert torch.allclose(wider[0, :, 0, 2], samples[0, :, 0, 1])
    # the height pass works the same way
    taller = bislerp(samples.transpose(-1, -2), 1, 3)
    assert torch.allclose(taller.transpose(-1, -2), wider, atol=1e-6)


def test_bislerp_interpolates_lengths_linearly_and_directions_on_the_sphere() -> None:
    samples = torch.randn(2, 4, 3, 4, generator=torch.Generator().manual_seed(0))
    resized = bislerp(samples, 7, 3)
    bilinear = F.interpolate(samples, size=(3, 7), mode="bilinear")
    lengths = F.interpolate(samples.norm(dim=1, keepdim=True), size=(3, 7), mode="bilinear")
    assert resized.shape == (2, 4, 3, 7) and not resized.isnan().any()
    assert torch.allclose(resized.norm(dim=1, keepdim=True), lengths, atol=1e-5)
    assert not torch.allclose(resized, bilinear, atol=1e-3)


def test_bislerp_turns_directions_at_a_constant_rate() -> None:
    """Doubling 2 → 4 samples source positions 0, 0.25, 0.75 and 1: the directions in between lie
    a quarter and three quarters of the way along the arc from the first vector to the second."""
    pair = torch.randn(3, 4, 1, 2, generator=torch.Generator().manual_seed(1))
    resized = bislerp(pair, 4, 1)

    def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.acos((F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).clamp(-1, 1))

    first, second = pair[..., 0], pair[..., 1]
    total = angle(first, second)
    for column, ratio in ((1, 0.25), (2, 0.75)):
        assert torch.allclose(angle(first, resized[..., column]), ratio * total, atol=1e-4)
        assert torch.allclose(angle(resized[..., column], second), (1 - ratio) * total, atol=1e-4)
    assert torch.allclose(resized[..., 0], first, atol=1e-6) and torch.allclose(resized[..., 3], second, atol=1e-6)


# ---- compositing -------------------------------------------------------------------------------


def test_feather_mask_by_hand() -> None:
    mask = feather_mask(3, 4, 2, (True, True, True, True))
    assert torch.allclose(mask, torch.tensor([0.5, 1.0, 0.5])[:, None] * torch.tensor([0.5, 1.0, 1.0, 0.5])[None, :])
    assert torch.equal(feather_mask(3, 4, 2, (False, False, False, False)), torch.ones(3, 4))


def test_latent_composite_feathers_inner_sides_only(ctx) -> None:
    destination = {"samples": torch.zeros(1, 4, 6, 8), "batch_index": [7]}
    source = {"samples": torch.ones(1, 4, 3, 4)}
    out = run(LatentComposite, ctx, samples_to=destination, samples_from=source, x=16, y=8, feather=16)
    expected = torch.zeros(6, 8)
    expected[1:4, 2:6] = torch.tensor([0.5, 1.0, 0.5])[:, None] * torch.tensor([0.5, 1.0, 1.0, 0.5])[None, :]
    assert torch.allclose(out["samples"][0, 2], expected)
    assert out["batch_index"] == [7]
    # at the top-left corner the top and left sides are the destination's border: no fade there
    corner = run(LatentComposite, ctx, samples_to=destination, samples_from=source, x=0, y=0, feather=16)
    faded = torch.tensor([1.0, 1.0, 0.5])[:, None] * torch.tensor([1.0, 1.0, 1.0, 0.5])[None, :]
    assert torch.allclose(corner["samples"][0, 0, :3, :4], faded)


def test_latent_composite_clips_to_the_destination(ctx) -> None:
    destination = {"samples": torch.zeros(2, 4, 4, 4)}
    source = {"samples": torch.arange(36.0).reshape(1, 1, 6, 6).expand(1, 4, 6, 6)}
    out = run(LatentComposite, ctx, samples_to=destination, samples_from=source, x=16, y=8, feather=0)
    assert out["samples"].shape == (2, 4, 4, 4)
    assert torch.equal(out["samples"][:, :, 1:, 2:], source["samples"][:, :, :3, :2].expand(2, 4, 3, 2))
    assert out["samples"][:, :, :1].abs().sum() == 0 and out["samples"][:, :, :, :2].abs().sum() == 0
    assert torch.equal(composite(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), 5, 5), torch.zeros(1, 1, 2, 2))


def test_latent_blend(ctx) -> None:
    one = {"samples": torch.full((1, 4, 4, 4), 2.0), "noise_mask": torch.ones(1, 1, 4, 4)}
    other = {"samples": torch.full((1, 4, 4, 4), 4.0)}
    out = run(LatentBlend, ctx, samples1=one, samples2=other, blend_factor=0.25)
    assert torch.allclose(out["samples"], torch.full((1, 4, 4, 4), 2 * 0.25 + 4 * 0.75))
    assert "noise_mask" in out
    small = {"samples": torch.randn(1, 4, 2, 3, generator=torch.Generator().manual_seed(0))}
    out = run(LatentBlend, ctx, samples1=one, samples2=small, blend_factor=0.5)
    # the centre crop from 3:2 to 1:1 would cut half a column on each side, which rounds to none
    resized = F.interpolate(small["samples"], size=(4, 4), mode="bicubic")
    assert torch.allclose(out["samples"], one["samples"] * 0.5 + resized * 0.5, atol=1e-6)


# ---- sizes ----------------------------------------------------------------------------------------


def test_empty_latent_image(ctx) -> None:
    out = run(EmptyLatentImage, ctx, width=72, height=40, batch_size=3)
    assert out.keys() == {"samples"} and torch.equal(out["samples"], torch.zeros(3, 4, 5, 9))


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (96, 64, (8, 12)),  # both given: pixels // 8
        (0, 96, (12, 20)),  # keep the aspect ratio of 80 × 48: round(10 · 96 / 6) = 160 wide
        (32, 0, (8, 8)),  # width raised to 64, height max(64, round(6 · 64 / 10) = 38) = 64
        (0, 0, (6, 10)),  # unchanged
    ],
)
def test_latent_upscale_sizes(ctx, width: int, height: int, size: tuple[int, int]) -> None:
    latent = {"samples": torch.randn(1, 4, 6, 10, generator=torch.Generator().manual_seed(0)), "batch_index": [2]}
    out = run(LatentUpscale, ctx, samples=latent, upscale_method="bilinear", width=width, height=height, crop="disabled")
    assert out["samples"].shape[-2:] == size and out["batch_index"] == [2]
    if (width, height) != (0, 0):
        assert torch.allclose(out["samples"], F.interpolate(latent["samples"], size=size, mode="bilinear"))


def test_latent_upscale_bislerp_with_centre_crop(ctx) -> None:
    latent = {"samples": torch.randn(1, 4, 4, 8, generator=torch.Generator().manual_seed(0))}
    out = run(LatentUpscale, ctx, samples=latent, upscale_method="bislerp", width=64, height=64, crop="center")
    assert torch.allclose(out["samples"], bislerp(latent["samples"][..., 2:6], 8, 8))


def test_latent_upscale_by(ctx) -> None:
    latent = {"samples": torch.randn(1, 4, 6, 10, generator=torch.Generator().manual_seed(0))}
    out = run(LatentUpscaleBy, ctx, samples=latent, upscale_method="nearest-exact", scale_by=1.5)
    assert torch.equal(out["samples"], F.interpolate(latent["samples"], size=(9, 15), mode="nearest-exact"))
    assert run(LatentUpscaleBy, ctx, samples=latent, upscale_method="area", scale_by=0.01)["samples"].shape[-2:] == (1, 1)


# ---- batches ----------------------------------------------------------------------------------------


def test_latent_from_batch_indices(ctx) -> None:
    latent = {"samples": numbered(5)}
    out = run(LatentFromBatch, ctx, samples=latent, batch_index=3, length=4)  # only 2 are left
    assert out["samples"][:, 0, 0, 0].tolist() == [3, 4] and out["batch_index"] == [3, 4]
    assert run(LatentFromBatch, ctx, samples=latent, batch_index=63, length=1)["batch_index"] == [4]
    picked = run(LatentFromBatch, ctx, samples={"samples": numbered(5), "batch_index": [10, 11, 12, 13, 14]}, batch_index=1, length=2)
    assert picked["batch_index"] == [11, 12]


def test_latent_from_batch_noise_masks(ctx) -> None:
    single = torch.rand(1, 1, 4, 4)
    out = run(LatentFromBatch, ctx, samples={"samples": numbered(5), "noise_mask": single}, batch_index=2, length=2)
    assert out["noise_mask"] is single  # one mask for the whole batch stays as it is
    pair = torch.stack([torch.zeros(4, 4), torch.ones(4, 4)])  # [2, H, W], repeated to 0 1 0 1 0
    out = run(LatentFromBatch, ctx, samples={"samples": numbered(5), "noise_mask": pair}, batch_index=3, length=2)
    assert out["noise_mask"][:, 0, 0].tolist() == [1, 0]


def test_repeat_latent_batch(ctx) -> None:
    latent = {"samples": numbered(2), "batch_index": [3, 5], "noise_mask": torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])}
    out = run(RepeatLatentBatch, ctx, samples=latent, amount=3)
    assert out["samples"][:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert out["batch_index"] == [3, 5, 6, 8, 9, 11]  # offset = 5 - 3 + 1
    assert out["noise_mask"][:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    plain = run(RepeatLatentBatch, ctx, samples={"samples": numbered(2), "noise_mask": torch.ones(1, 1, 4, 4)}, amount=2)
    assert "batch_index" not in plain and plain["noise_mask"].shape == (1, 1, 4, 4)


def test_set_latent_noise_mask(ctx) -> None:
    latent = {"samples": torch.zeros(2, 4, 2, 2), "noise_mask": torch.zeros(1, 1, 2, 2)}
    mask = torch.rand(2, 16, 16)
    out = run(SetLatentNoiseMask, ctx, samples=latent, mask=mask)
    assert out["samples"] is latent["samples"] and torch.equal(out["noise_mask"], mask[:, None])
    assert run(SetLatentNoiseMask, ctx, samples=latent, mask=torch.rand(16, 16))["noise_mask"].shape == (1, 1, 16, 16)
