"""The denoiser's arithmetic, with a fake UNet whose prediction is known: ε = mean of the
cross-attention input (so each conditioning entry predicts its own constant)."""

from __future__ import annotations

import pytest
import torch

from diffusion import conditioning
from diffusion.denoiser import Denoiser, denoised_from
from diffusion.families import FAMILIES
from diffusion.schedules import DiscreteSchedule

SCHEDULE = DiscreteSchedule()


class FakeUnet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.calls: list[dict] = []

    def forward(self, sample, timestep, encoder_hidden_states, return_dict=False, **kwargs):
        self.calls.append({"sample": sample, "timestep": timestep, "cross": encoder_hidden_states, **kwargs})
        eps = encoder_hidden_states.mean(dim=(1, 2)).reshape(-1, 1, 1, 1) * self.weight
        return (eps.expand(-1, 4, *sample.shape[2:]),)


def cond(value: float, tokens: int = 77, **options) -> list:
    return [torch.full((1, tokens, 8), value), options]


def make(positive, negative=(), cfg=1.0, family="sd15", shape=(1, 4, 16, 16), **prepare):
    unet = FakeUnet()
    fam = FAMILIES[family]
    pos = conditioning.prepare(list(positive), fam, SCHEDULE, torch.Size(shape), **prepare)
    neg = conditioning.prepare(list(negative), fam, SCHEDULE, torch.Size(shape), negative=True, **prepare)
    return Denoiser(unet, "eps", SCHEDULE, pos, neg, cfg), unet


X = torch.zeros(1, 4, 16, 16)
SIGMA = torch.tensor([2.0])


def test_single_entry_and_guidance() -> None:
    denoise, unet = make([cond(0.5)], [cond(0.25)], cfg=3.0)
    out = denoise(X, SIGMA)
    cond_x0, uncond_x0 = -2.0 * 0.5, -2.0 * 0.25
    assert torch.allclose(out, torch.full_like(X, uncond_x0 + (cond_x0 - uncond_x0) * 3.0))
    [call] = unet.calls  # positive and negative in one batch
    assert call["sample"].shape[0] == 2
    assert torch.allclose(call["sample"], X.repeat(2, 1, 1, 1) / (1 + 4) ** 0.5)
    assert call["timestep"].tolist() == [float(SCHEDULE.timestep(SIGMA))] * 2


def test_area_entries_average_with_feathered_edges() -> None:
    # a full-latent entry (0) and an area entry (1) covering x in [4, 16) whole height
    area = cond(1.0, area=(16, 12, 0, 4), strength=1.0)
    denoise, unet = make([cond(0.0), area])
    eps = -denoise(X, SIGMA) / 2.0  # the weighted mean of the entries' predictions
    assert torch.allclose(eps[..., :4], torch.zeros(1, 4, 16, 4))
    # inside the area its weight ramps 1/8, 2/8, ... from its left edge (not on the border); right edge is the border
    for column in range(12):
        weight = min(column + 1, 8) / 8
        assert torch.allclose(eps[..., 4 + column], torch.full((1, 4, 16), weight / (1 + weight)))
    assert len(unet.calls) == 2  # different region sizes: two calls


def test_percentage_areas_resolve_against_the_latent() -> None:
    entry = conditioning.prepare([cond(1.0, area=("percentage", 0.5, 0.25, 0.5, 0.0))], FAMILIES["sd15"], SCHEDULE, torch.Size((1, 4, 16, 16)))[0]
    assert entry.area == (8, 4, 8, 0)


def test_masks_weigh_predictions_and_can_set_the_area() -> None:
    mask = torch.zeros(1, 128, 128)
    mask[:, 64:, :] = 1.0  # the lower half, in pixels
    masked = cond(1.0, mask=mask, mask_strength=0.5, set_area_to_bounds=False)
    denoise, _ = make([cond(0.0), masked])
    eps = -denoise(X, SIGMA) / 2.0
    assert torch.allclose(eps[..., :8, :], torch.zeros(1, 4, 8, 16))
    assert torch.allclose(eps[..., 8:, :], torch.full((1, 4, 8, 16), 0.5 / 1.5))  # weights 1 and 0.5
    bounded = conditioning.prepare([cond(1.0, mask=mask, set_area_to_bounds=True)], FAMILIES["sd15"], SCHEDULE, torch.Size((1, 4, 16, 16)))[0]
    assert bounded.area == (8, 16, 8, 0)  # the lower half: rows 8..15 of the 16-row latent


def test_timestep_ranges_switch_entries_on_and_off() -> None:
    early = cond(1.0, start_percent=0.0, end_percent=0.5)
    late = cond(3.0, start_percent=0.5, end_percent=1.0)
    denoise, _ = make([early, late])
    middle = SCHEDULE.percent_to_sigma(0.5)
    high, low = torch.tensor([middle * 2]), torch.tensor([middle / 2])
    assert torch.allclose(denoise(X, high), -high * 1.0)
    assert torch.allclose(denoise(X, low), -low * 3.0)


def test_unequal_prompt_lengths_batch_by_repetition_when_cheap() -> None:
    denoise, unet = make([cond(0.5, tokens=154)], [cond(0.25, tokens=77)], cfg=2.0)
    denoise(X, SIGMA)
    [call] = unet.calls
    assert call["cross"].shape == (2, 154, 8)
    denoise, unet = make([cond(0.5, tokens=77)], [cond(0.25, tokens=75)], cfg=2.0)
    denoise(X, SIGMA)
    assert [c["cross"].shape[1] for c in unet.calls] == [75, 77]


def test_control_patches_add_unet_inputs_to_their_batch() -> None:
    seen = []

    def control(sample, timestep, sigma, cross, added):
        seen.append(sample.shape)
        return {"mid_block_additional_residual": "residual"}

    denoise, unet = make([cond(0.5, control=control)], [cond(0.25)], cfg=2.0)
    denoise(X, SIGMA)
    with_control = [c for c in unet.calls if "mid_block_additional_residual" in c]
    assert len(unet.calls) == 2 and len(with_control) == 1 and seen == [(1, 4, 16, 16)]


def test_sdxl_added_conditions_and_inpainting_channels() -> None:
    pooled = torch.ones(1, 32)
    denoise, unet = make([cond(0.5, pooled_output=pooled, width=1024, height=768)], family="sdxl")
    denoise(X, SIGMA)
    added = unet.calls[0]["added_cond_kwargs"]
    assert added["time_ids"].tolist() == [[768.0, 1024.0, 0.0, 0.0, 768.0, 1024.0]]
    assert torch.equal(added["text_embeds"], pooled)
    # a plain CLIPTextEncode entry (no sizes) gets the image's size: the latent's × 8, as in ComfyUI
    shape = (1, 4, 12, 20)
    for family, expected in (("sdxl", [[96.0, 160.0, 0.0, 0.0, 96.0, 160.0]] * 2), ("sdxl-refiner", [[96.0, 160.0, 0.0, 0.0, 6.0], [96.0, 160.0, 0.0, 0.0, 2.5]])):
        denoise, unet = make([cond(0.5, pooled_output=pooled)], [cond(0.25, pooled_output=pooled)], cfg=2.0, family=family, shape=shape)
        denoise(torch.zeros(shape), SIGMA)
        assert unet.calls[0]["added_cond_kwargs"]["time_ids"].tolist() == expected
    latent = torch.full((1, 4, 16, 16), 2.0)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 8:] = 1
    denoise, unet = make([cond(0.5)], family="sd15-inpaint", latent_image=latent, denoise_mask=mask.expand(1, 4, 16, 16))
    denoise(X, SIGMA)
    sample = unet.calls[0]["sample"]
    assert sample.shape == (1, 9, 16, 16)
    assert torch.equal(sample[:, 4:5], mask) and torch.equal(sample[:, 5:], latent)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_prediction_formulas(prediction: str) -> None:
    sigma = torch.tensor(3.0).reshape(1, 1, 1, 1)
    x0, noise = torch.randn(2, 4, 2, 2), torch.randn(2, 4, 2, 2)
    x = x0 + noise * sigma
    if prediction == "eps":
        output = noise
    else:  # v = α ε - σ_vp x0 in the variance-preserving scaling
        alpha, sigma_vp = 1 / (1 + sigma**2).sqrt(), sigma / (1 + sigma**2).sqrt()
        output = alpha * noise - sigma_vp * x0
    assert torch.allclose(denoised_from(prediction, sigma, output, x), x0, atol=1e-5)


def test_areas_outside_the_latent_contribute_nothing() -> None:
    outside = cond(1.0, area=(8, 8, 0, 40))  # starts right of a 16-wide latent
    partly = cond(1.0, area=(8, 64, 0, 12))  # clipped to columns 12..15
    denoise, unet = make([cond(0.0), outside, partly])
    eps = -denoise(X, SIGMA) / 2.0
    assert torch.equal(eps[..., :12], torch.zeros(1, 4, 16, 12))
    assert eps[..., :8, 12:].gt(0).all() and len(unet.calls) == 2
