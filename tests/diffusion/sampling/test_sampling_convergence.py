"""Samplers on data whose ideal denoiser and exact solutions are known.

With data x0 ~ N(μ, s²) (elementwise), the ideal denoiser is D(x, σ) = μ + s²/(s² + σ²)·(x - μ);
the probability-flow ODE then carries x(σ0) to μ + (x(σ0) - μ)·√((s² + σ²)/(s² + σ0²)), and a
correct stochastic sampler started from N(μ, s² + σ0²) ends with samples from N(μ, s²).
"""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.schedules import DiscreteSchedule, calculate_sigmas

pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")

MU, S = 0.3, 0.5


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return MU + S**2 / (S**2 + s**2) * (x - MU)


def exact(x: torch.Tensor, sigma_from: float, sigma_to: float) -> torch.Tensor:
    return MU + (x - MU) * math.sqrt((S**2 + sigma_to**2) / (S**2 + sigma_from**2))


def _geometric(n: int, start: float = 10.0, end: float = 0.5) -> torch.Tensor:
    return torch.exp(torch.linspace(math.log(start), math.log(end), n + 1, dtype=torch.float64))


def _ode_error(name: str, sigmas: torch.Tensor) -> float:
    z = torch.randn((1, 1, 16, 16), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    start = MU + z * math.sqrt(S**2 + float(sigmas[0]) ** 2)
    result = SAMPLERS[name](gaussian_denoiser, start, sigmas, SamplerOptions())
    return float((result - exact(start, float(sigmas[0]), float(sigmas[-1]))).abs().max())


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("euler", 1),
        ("ddim", 1),
        ("heun", 2),
        ("dpm_2", 2),
        ("dpmpp_2m", 2),
        ("lms", 3),  # order 4 once warmed up; its lower-order first steps keep the observed rate near 3
        ("uni_pc", 2),  # order 3, but the final step is first order (lower_order_final) and sets the rate
        ("uni_pc_bh2", 2),
    ],
)
def test_deterministic_samplers_converge_at_their_order(name: str, order: int) -> None:
    """Halving the steps (on a grid even in log σ, not ending at 0) divides the error by ≈ 2^order."""
    errors = [_ode_error(name, _geometric(n)) for n in (8, 16, 32)]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(order - 0.25 < rate < order + 0.75 for rate in rates), rates


def test_dpm_fast_converges_at_third_order() -> None:
    """Third order throughout: nfe = 3(m - 1) + 2 gives m steps, the last of order 2 (one step's
    O(h³) error), so doubling m divides the error by ≈ 8."""
    errors = [_ode_error("dpm_fast", _geometric(3 * (m - 1) + 2)) for m in (3, 6, 12)]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(2.6 < rate < 3.5 for rate in rates), rates


def test_dpm_adaptive_meets_its_tolerance() -> None:
    assert _ode_error("dpm_adaptive", _geometric(4)) < 0.05


#: error bounds on 40 Karras steps: first-order methods are an order of magnitude less accurate
DETERMINISTIC = {"euler": 0.1, "ddim": 0.1, "heun": 0.01, "dpm_2": 0.01, "lms": 0.01, "dpm_fast": 0.01, "dpmpp_2m": 0.01, "uni_pc": 0.01, "uni_pc_bh2": 0.01}


@pytest.mark.parametrize(("name", "bound"), DETERMINISTIC.items())
def test_deterministic_samplers_denoise_to_the_ode_solution(schedule: DiscreteSchedule, name: str, bound: float) -> None:
    """With a full SD schedule down to 0 the result is the ODE's end point (dpm_fast stops at the
    last nonzero σ ≈ 0.03, which is within the bound)."""
    sigmas = calculate_sigmas(schedule, "karras", 40).double()
    assert _ode_error(name, sigmas) < bound


STOCHASTIC = ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "ddpm"]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_samplers_sample_the_data_distribution(schedule: DiscreteSchedule, name: str) -> None:
    """After 30 steps the samples have the data's mean and standard deviation (within the
    discretisation error of 30 steps, ~10%) and have forgotten most of the starting noise, unlike
    an ODE sampler (whose result is the start scaled, correlation ≈ 1)."""
    sigmas = calculate_sigmas(schedule, "karras", 30)
    z = torch.randn((1, 4, 64, 64), generator=torch.Generator().manual_seed(0))
    result = SAMPLERS[name](gaussian_denoiser, MU + z * math.sqrt(S**2 + float(sigmas[0]) ** 2), sigmas, SamplerOptions(seed=5))
    assert abs(float(result.mean()) - MU) < 0.01
    assert abs(float(result.std()) / S - 1) < 0.12
    correlation = float(((result - result.mean()) * z).mean() / result.std())
    assert abs(correlation) < 0.1
