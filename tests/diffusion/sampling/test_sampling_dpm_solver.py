"""dpm_fast and dpm_adaptive: their step plans, their model calls, and their low orders against
the samplers they reduce to."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.samplers.dpm_solver import _StepSize, fast_orders
from tests.diffusion.sampling.conftest import CountingDenoiser, toy_denoiser


@pytest.mark.parametrize(
    ("nfe", "orders"),
    [(1, [1]), (2, [2]), (3, [2, 1]), (4, [3, 1]), (5, [3, 2]), (6, [3, 2, 1]), (10, [3, 3, 3, 1]), (12, [3, 3, 3, 2, 1])],
)
def test_fast_orders_spend_exactly_the_model_calls(nfe: int, orders: list[int]) -> None:
    assert fast_orders(nfe) == orders and sum(orders) == nfe


@pytest.mark.parametrize("nfe", [1, 2, 5, 9])
def test_dpm_fast_calls_the_model_once_per_sigma_step_on_an_even_grid_in_log_sigma(noise: torch.Tensor, nfe: int) -> None:
    sigmas = torch.cat([torch.exp(torch.linspace(math.log(12.0), math.log(0.2), nfe)), torch.zeros(1)])
    model, steps = CountingDenoiser(), []
    SAMPLERS["dpm_fast"](model, noise * sigmas[0], sigmas, SamplerOptions(callback=lambda i, x, d: steps.append(i)))
    assert len(model.sigmas) == nfe
    assert steps == list(range(len(fast_orders(nfe))))
    # each solver step starts at a point of the grid from σ = 12 to the last nonzero σ = 0.2
    grid = torch.exp(-torch.linspace(-math.log(12.0), -math.log(0.2), len(fast_orders(nfe)) + 1)).tolist()
    starts = [model.sigmas[sum(fast_orders(nfe)[:i])] for i in range(len(steps))]
    assert starts == pytest.approx(grid[:-1], rel=1e-5)


def test_dpm_fast_first_order_step_is_euler(noise: torch.Tensor) -> None:
    """DPM-Solver-1 in ε form is DDIM, i.e. the Euler step in σ."""
    x, sigmas = noise.double() * 6.0, torch.tensor([6.0, 0.8], dtype=torch.float64)
    fast = SAMPLERS["dpm_fast"](toy_denoiser, x, sigmas, SamplerOptions())
    torch.testing.assert_close(fast, SAMPLERS["euler"](toy_denoiser, x, sigmas, SamplerOptions()), rtol=1e-10, atol=1e-10)


def test_dpm_fast_stops_at_the_last_nonzero_sigma(noise: torch.Tensor) -> None:
    """From σ0 to the last nonzero σ, here σ0 itself: the input comes back unchanged."""
    assert torch.equal(SAMPLERS["dpm_fast"](toy_denoiser, noise, torch.tensor([3.0, 0.0]), SamplerOptions()), noise)


def test_dpm_fast_second_order_step_is_dpm_2(noise: torch.Tensor) -> None:
    """DPM-Solver-2 with r = 1/2 in ε form is the midpoint step at √(σ·σ_next) that dpm_2 takes."""
    x = noise.double() * 6.0
    fast = SAMPLERS["dpm_fast"](toy_denoiser, x, torch.tensor([6.0, 0.8, 0.0], dtype=torch.float64), SamplerOptions())
    dpm_2 = SAMPLERS["dpm_2"](toy_denoiser, x, torch.tensor([6.0, 0.8], dtype=torch.float64), SamplerOptions())
    torch.testing.assert_close(fast, dpm_2, rtol=1e-10, atol=1e-10)


def test_dpm_adaptive_callbacks_once_per_accepted_step(noise: torch.Tensor) -> None:
    sigmas = torch.tensor([14.6, 4.0, 1.0, 0.03, 0.0])
    model, seen = CountingDenoiser(), []
    SAMPLERS["dpm_adaptive"](model, noise * 14.6, sigmas, SamplerOptions(callback=lambda i, x, d: seen.append((i, x))))
    assert [i for i, _ in seen] == list(range(len(seen))) and len(seen) >= 2
    assert len(model.sigmas) % 3 == 0 and len(model.sigmas) >= 3 * len(seen)  # 3 calls per attempt
    assert model.sigmas[0] == pytest.approx(14.6, rel=1e-5)
    assert min(model.sigmas) >= 0.03 * (1 - 1e-5)  # never past the last nonzero σ


def test_dpm_adaptive_does_nothing_over_an_empty_range(noise: torch.Tensor) -> None:
    model = CountingDenoiser()
    assert torch.equal(SAMPLERS["dpm_adaptive"](model, noise, torch.tensor([3.0, 0.0]), SamplerOptions()), noise)
    assert model.sigmas == []


def test_step_size_control() -> None:
    """factor = 1 + atan((1/error)^(1/3) - 1); accepted when ≥ 0.81."""
    small = _StepSize(0.05)
    assert small.accept(1 / 8) and small.h == pytest.approx(0.05 * (1 + math.atan(1)), rel=1e-6)
    large = _StepSize(0.05)
    assert not large.accept(8.0) and large.h == pytest.approx(0.05 * (1 + math.atan(-0.5)), rel=1e-6)
    borderline = 1 / (1 + math.tan(0.81 - 1)) ** 3  # the error whose factor is exactly 0.81
    assert _StepSize(0.05).accept(borderline * 0.999) and not _StepSize(0.05).accept(borderline * 1.001)
    with pytest.raises(FloatingPointError):
        _StepSize(0.05).accept(float("nan"))
