"""The training schedule and every scheduler, against closed forms, table entries or hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from diffusion.schedules import (
    DISCARD_PENULTIMATE,
    SCHEDULERS,
    DiscreteSchedule,
    calculate_sigmas,
    exponential_sigmas,
    karras_sigmas,
    sigmas_for,
)

COMFY_SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal"]


def _closed_form_sigmas(zero_terminal_snr: bool = False) -> np.ndarray:
    betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    if zero_terminal_snr:
        root = np.sqrt(alphas_cumprod)
        root = (root - root[-1]) * root[0] / (root[0] - root[-1])
        alphas_cumprod = root**2
        alphas_cumprod[-1] = 4.8973451890853435e-08
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


def test_training_sigmas_follow_the_linear_beta_schedule(schedule: DiscreteSchedule) -> None:
    assert schedule.sigmas.dtype == torch.float32 and schedule.log_sigmas.dtype == torch.float32
    np.testing.assert_allclose(schedule.sigmas.numpy(), _closed_form_sigmas(), rtol=1e-6)
    np.testing.assert_allclose(schedule.log_sigmas.numpy(), np.log(_closed_form_sigmas()), rtol=1e-6, atol=1e-7)
    assert float(schedule.sigma_min) == pytest.approx(0.0291675, abs=1e-6)
    assert float(schedule.sigma_max) == pytest.approx(14.614642, abs=1e-5)
    assert torch.all(schedule.sigmas[1:] > schedule.sigmas[:-1])


def test_zero_terminal_snr_makes_the_last_sigma_huge() -> None:
    rescaled = DiscreteSchedule(zero_terminal_snr=True)
    np.testing.assert_allclose(rescaled.sigmas.numpy(), _closed_form_sigmas(zero_terminal_snr=True), rtol=1e-6)
    assert float(rescaled.sigma_max) == pytest.approx(4518.76, rel=1e-4)
    assert float(rescaled.sigma_min) == pytest.approx(float(DiscreteSchedule().sigma_min), rel=1e-6)


def test_timestep_and_sigma_are_inverse_on_integer_timesteps(schedule: DiscreteSchedule) -> None:
    timesteps = torch.arange(1000, dtype=torch.float32)
    torch.testing.assert_close(schedule.sigma(timesteps), schedule.sigmas, rtol=1e-6, atol=0)  # exp(log σ): an ulp off
    assert torch.equal(schedule.timestep(schedule.sigma(timesteps)), timesteps)
    assert schedule.timestep(schedule.sigmas[:3]).dtype == torch.float32


def test_timestep_is_the_nearest_in_log_sigma(schedule: DiscreteSchedule) -> None:
    low, high = schedule.sigmas[500], schedule.sigmas[501]
    just_below_middle = (0.51 * low.log() + 0.49 * high.log()).exp()
    assert schedule.timestep(just_below_middle.reshape(1)).tolist() == [500.0]
    assert schedule.timestep(torch.tensor([100.0, 1e-4])).tolist() == [999.0, 0.0]


def test_sigma_interpolates_log_sigmas_and_clamps(schedule: DiscreteSchedule) -> None:
    expected = math.exp(0.75 * float(schedule.log_sigmas[10]) + 0.25 * float(schedule.log_sigmas[11]))
    assert float(schedule.sigma(torch.tensor(10.25))) == pytest.approx(expected, rel=1e-6)
    assert float(schedule.sigma(torch.tensor(-5.0))) == pytest.approx(float(schedule.sigma_min), rel=1e-6)
    assert float(schedule.sigma(torch.tensor(1500.0))) == pytest.approx(float(schedule.sigma_max), rel=1e-6)


def test_percent_to_sigma(schedule: DiscreteSchedule) -> None:
    assert schedule.percent_to_sigma(0.0) == 999999999.9
    assert schedule.percent_to_sigma(-1.0) == 999999999.9
    assert schedule.percent_to_sigma(1.0) == 0.0
    assert schedule.percent_to_sigma(0.5) == float(schedule.sigma(torch.tensor(499.5)))
    assert schedule.percent_to_sigma(0.25) > schedule.percent_to_sigma(0.5) > schedule.percent_to_sigma(0.75)


def test_scheduler_names_and_order_are_comfyuis() -> None:
    assert list(SCHEDULERS) == COMFY_SCHEDULERS
    assert DISCARD_PENULTIMATE == {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}


@pytest.mark.parametrize("name", COMFY_SCHEDULERS)
@pytest.mark.parametrize("steps", [1, 2, 4, 10, 25])
def test_every_scheduler_gives_decreasing_float32_sigmas_ending_in_zero(schedule: DiscreteSchedule, name: str, steps: int) -> None:
    sigmas = calculate_sigmas(schedule, name, steps)
    assert sigmas.dtype == torch.float32
    assert sigmas[-1] == 0.0 and torch.isfinite(sigmas).all()
    assert torch.all(sigmas[1:] < sigmas[:-1])
    assert float(sigmas[0]) <= float(schedule.sigma_max) * (1 + 1e-6)
    if name not in ("ddim_uniform", "beta"):  # see their own tests for their lengths
        assert len(sigmas) == steps + 1


def test_unknown_scheduler_is_an_error(schedule: DiscreteSchedule) -> None:
    with pytest.raises(ValueError, match="unknown scheduler"):
        calculate_sigmas(schedule, "nope", 4)


def test_karras_closed_form(schedule: DiscreteSchedule) -> None:
    lo, hi = float(schedule.sigma_min), float(schedule.sigma_max)
    ramp = np.linspace(0, 1, 7)
    expected = (hi ** (1 / 7) + ramp * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7
    np.testing.assert_allclose(calculate_sigmas(schedule, "karras", 7)[:-1].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(karras_sigmas(3, 0.5, 8.0, rho=1.0).numpy(), [8.0, 4.25, 0.5, 0.0], rtol=1e-6)


def test_exponential_closed_form(schedule: DiscreteSchedule) -> None:
    lo, hi = float(schedule.sigma_min), float(schedule.sigma_max)
    expected = np.exp(np.linspace(math.log(hi), math.log(lo), 6))
    np.testing.assert_allclose(calculate_sigmas(schedule, "exponential", 6)[:-1].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(exponential_sigmas(3, 1.0, 16.0).numpy(), [16.0, 4.0, 1.0, 0.0], rtol=1e-6)


def test_simple_picks_every_nth_table_entry_from_the_top(schedule: DiscreteSchedule) -> None:
    table = schedule.sigmas
    assert torch.equal(calculate_sigmas(schedule, "simple", 4), torch.stack([table[999], table[749], table[499], table[249], torch.tensor(0.0)]))
    three = calculate_sigmas(schedule, "simple", 3)  # stride 333.33: indices -1, -334, -667
    assert torch.equal(three[:-1], torch.stack([table[999], table[666], table[333]]))


def test_ddim_uniform_picks_table_entries_from_index_one(schedule: DiscreteSchedule) -> None:
    table = schedule.sigmas
    assert torch.equal(calculate_sigmas(schedule, "ddim_uniform", 4), torch.stack([table[751], table[501], table[251], table[1], torch.tensor(0.0)]))
    # 1000 // 7 = 142 leaves room for an eighth index (995): ComfyUI's extra step
    seven = calculate_sigmas(schedule, "ddim_uniform", 7)
    assert len(seven) == 9 and seven[0] == table[995]


def test_normal_runs_from_sigma_max_to_sigma_min(schedule: DiscreteSchedule) -> None:
    sigmas = calculate_sigmas(schedule, "normal", 5)
    torch.testing.assert_close(sigmas[[0, -2]], torch.stack([schedule.sigma_max, schedule.sigma_min]), rtol=1e-6, atol=0)
    # evenly spaced timesteps 999, 749.25, ...: the second is interpolated in log sigma
    assert float(sigmas[1]) == pytest.approx(float(schedule.sigma(torch.tensor(749.25))), rel=1e-6)


def test_sgm_uniform_leaves_out_the_end_timestep(schedule: DiscreteSchedule) -> None:
    sigmas = calculate_sigmas(schedule, "sgm_uniform", 4)
    expected = [float(schedule.sigma(torch.tensor(t))) for t in (999.0, 749.25, 499.5, 249.75)]
    np.testing.assert_allclose(sigmas[:-1].numpy(), expected, rtol=1e-6)


def test_beta_follows_the_beta_quantiles_without_duplicates(schedule: DiscreteSchedule) -> None:
    steps = 8
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    indices = np.rint(scipy.stats.beta.ppf(quantiles, 0.6, 0.6) * 999).astype(int)
    sigmas = calculate_sigmas(schedule, "beta", steps)
    assert torch.equal(sigmas[:-1], schedule.sigmas[indices])
    many = calculate_sigmas(schedule, "beta", 200)  # quantiles crowd the ends: repeats are dropped
    assert len(many) < 201 and len(torch.unique(many)) == len(many)


def test_linear_quadratic_by_hand(schedule: DiscreteSchedule) -> None:
    # 4 steps: linear part 0, 0.0125; then 0.025 + 0.25·(i - 2)² ... fitted so the curve reaches 1
    fractions = [1.0, 0.9875, 0.975, 0.725, 0.0]
    sigmas = calculate_sigmas(schedule, "linear_quadratic", 4)
    np.testing.assert_allclose(sigmas.numpy(), np.array(fractions) * float(schedule.sigma_max), rtol=1e-6)
    # 5 steps: 2 linear (0, 0.0125), then 3 on the quadratic 0.025, 0.141667, 0.466667
    fractions = [1.0, 0.9875, 0.975, 0.858333, 0.533333, 0.0]
    np.testing.assert_allclose(calculate_sigmas(schedule, "linear_quadratic", 5).numpy(), np.array(fractions) * float(schedule.sigma_max), rtol=1e-5)
    assert torch.equal(calculate_sigmas(schedule, "linear_quadratic", 1), torch.stack([schedule.sigma_max, torch.tensor(0.0)]))


def test_kl_optimal_is_even_in_arctan(schedule: DiscreteSchedule) -> None:
    sigmas = calculate_sigmas(schedule, "kl_optimal", 5)
    angles = np.arctan(sigmas[:-1].double().numpy())
    np.testing.assert_allclose(np.diff(angles), np.full(4, (math.atan(float(schedule.sigma_min)) - math.atan(float(schedule.sigma_max))) / 4), rtol=1e-5)
    one = calculate_sigmas(schedule, "kl_optimal", 1)  # ComfyUI divides 0 by 0 here
    torch.testing.assert_close(one, torch.stack([schedule.sigma_max, torch.tensor(0.0)]), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", COMFY_SCHEDULERS)
def test_discard_penultimate_samplers_get_one_step_more_without_the_penultimate(schedule: DiscreteSchedule, name: str) -> None:
    longer = calculate_sigmas(schedule, name, 9)
    for sampler in DISCARD_PENULTIMATE:
        sigmas = sigmas_for(schedule, name, sampler, 8)
        assert torch.equal(sigmas, torch.cat([longer[:-2], longer[-1:]]))
    assert torch.equal(sigmas_for(schedule, name, "euler", 8), calculate_sigmas(schedule, name, 8))
