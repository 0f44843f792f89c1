"""The extra noise of ancestral and SDE samplers: seeding, the Brownian tree, and the samplers'
updates with that noise replaced (zeros or recorded values) against hand-written references."""

from __future__ import annotations

import pytest
import torch
import torchsde

from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.samplers.noise import BrownianNoise, gaussian
from diffusion.schedules import DiscreteSchedule, calculate_sigmas
from tests.diffusion.sampling.conftest import toy_denoiser

pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")

GAUSSIAN_NOISE = ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "ddpm", "lcm"]
BROWNIAN_NOISE = ["dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu"]
STOCHASTIC = GAUSSIAN_NOISE + BROWNIAN_NOISE


def _zeros(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    return torch.zeros(())


def _run(name: str, noise: torch.Tensor, sigmas: torch.Tensor, **options) -> torch.Tensor:
    return SAMPLERS[name](toy_denoiser, noise * sigmas[0], sigmas, SamplerOptions(**options))


@pytest.fixture
def sigmas(schedule: DiscreteSchedule) -> torch.Tensor:
    return calculate_sigmas(schedule, "karras", 6)


@pytest.fixture
def noise64(noise: torch.Tensor) -> torch.Tensor:
    """The references below are compared in float64, where rounding stays far below 1e-10."""
    return noise.double()


@pytest.fixture
def sigmas64(sigmas: torch.Tensor) -> torch.Tensor:
    return sigmas.double()


@pytest.mark.parametrize("name", STOCHASTIC)
def test_same_seed_same_result_other_seed_other_result(name: str, noise: torch.Tensor, sigmas: torch.Tensor) -> None:
    first = _run(name, noise, sigmas, seed=5)
    assert torch.equal(first, _run(name, noise, sigmas, seed=5))  # a fresh generator or tree per run
    assert (first - _run(name, noise, sigmas, seed=6)).abs().max() > 1e-2


@pytest.mark.parametrize("name", STOCHASTIC)
def test_without_a_seed_every_run_differs(name: str, noise: torch.Tensor, sigmas: torch.Tensor) -> None:
    assert not torch.equal(_run(name, noise, sigmas), _run(name, noise, sigmas))


def test_gaussian_noise_on_the_cpu_is_seeded_with_seed_plus_one(noise: torch.Tensor) -> None:
    draw = gaussian(noise, SamplerOptions(seed=123))
    generator = torch.Generator().manual_seed(124)
    sigma = torch.tensor(1.0)
    assert torch.equal(draw(sigma, sigma), torch.randn(noise.shape, generator=generator))
    assert torch.equal(draw(sigma, sigma), torch.randn(noise.shape, generator=generator))  # one randn per call
    largest = gaussian(noise, SamplerOptions(seed=2**64 - 1))(sigma, sigma)  # wraps to 0 instead of overflowing
    assert torch.equal(largest, torch.randn(noise.shape, generator=torch.Generator().manual_seed(0)))


def test_brownian_noise_is_one_tree_over_the_whole_batch(noise: torch.Tensor) -> None:
    sigmas = torch.tensor([10.0, 3.0, 1.0, 0.2, 0.0])
    ours = BrownianNoise(noise, sigmas, seed=9, device=torch.device("cpu"))
    tree = torchsde.BrownianTree(torch.tensor(0.2), torch.zeros_like(noise), torch.tensor(10.0), entropy=9)
    # stepping down from 3 to 1 is the increment W(1) - W(3), over √2
    expected = -tree(torch.tensor(1.0), torch.tensor(3.0)) / 2**0.5
    assert torch.equal(ours(torch.tensor(3.0), torch.tensor(1.0)), expected)


def test_brownian_increments_are_unit_variance_and_add_up() -> None:
    x = torch.zeros(4, 4, 32, 32)
    draw = BrownianNoise(x, torch.tensor([8.0, 0.5, 0.0]), seed=1, device=torch.device("cpu"))
    a, b, c = torch.tensor(8.0), torch.tensor(2.0), torch.tensor(0.5)
    whole, first, second = draw(a, c), draw(a, b), draw(b, c)
    for sample in (whole, first, second):
        assert abs(float(sample.std()) - 1) < 0.03 and abs(float(sample.mean())) < 0.03
    torch.testing.assert_close(whole * 7.5**0.5, first * 6**0.5 + second * 1.5**0.5, rtol=0, atol=1e-5)
    assert torch.equal(draw(c, a), -whole)
    assert abs(float((first * second).mean())) < 0.03  # disjoint intervals are independent


def test_euler_ancestral_without_noise_steps_to_sigma_down(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    x = noise64 * sigmas64[0]
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        denoised = toy_denoiser(x, sigma.reshape(1).expand(2))
        sigma_down = sigma_next**2 / sigma  # √(σ_next² - σ_up²) with σ_up² = σ_next²(σ² - σ_next²)/σ²
        x = x + (x - denoised) / sigma * (sigma_down - sigma)
    ours = _run("euler_ancestral", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_dpm_2_ancestral_without_noise_takes_the_midpoint_step_to_sigma_down(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    x = noise64 * sigmas64[0]
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        d = (x - toy_denoiser(x, sigma.reshape(1).expand(2))) / sigma
        sigma_down = sigma_next**2 / sigma
        if sigma_down == 0:
            x = x - d * sigma
            continue
        sigma_mid = (sigma * sigma_down).sqrt()
        x_mid = x + d * (sigma_mid - sigma)
        x = x + (x_mid - toy_denoiser(x_mid, sigma_mid.reshape(1).expand(2))) / sigma_mid * (sigma_down - sigma)
    ours = _run("dpm_2_ancestral", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def _data_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_to: torch.Tensor) -> torch.Tensor:
    """DDIM's step written with the σ ratio (the samplers use e^{-h})."""
    ratio = sigma_to / sigma
    return ratio * x + (1 - ratio) * denoised


def test_dpmpp_2s_ancestral_without_noise(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    x = noise64 * sigmas64[0]
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        denoised = toy_denoiser(x, sigma.reshape(1).expand(2))
        sigma_down = sigma_next**2 / sigma
        if sigma_down == 0:
            x = denoised
            continue
        sigma_mid = (sigma * sigma_down).sqrt()
        x_mid = _data_step(x, denoised, sigma, sigma_mid)
        x = _data_step(x, toy_denoiser(x_mid, sigma_mid.reshape(1).expand(2)), sigma, sigma_down)
    ours = _run("dpmpp_2s_ancestral", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_dpmpp_sde_without_noise(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    x = noise64 * sigmas64[0]
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        denoised = toy_denoiser(x, sigma.reshape(1).expand(2))
        if sigma_next == 0:
            x = denoised
            continue
        sigma_mid = (sigma * sigma_next).sqrt()
        x_mid = _data_step(x, denoised, sigma, sigma_mid**2 / sigma)
        # r = 1/2: the second estimate replaces the first entirely
        x = _data_step(x, toy_denoiser(x_mid, sigma_mid.reshape(1).expand(2)), sigma, sigma_next**2 / sigma)
    ours = _run("dpmpp_sde", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_dpmpp_2m_sde_without_noise(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    x, old, h_last = noise64 * sigmas64[0], None, None
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        denoised = toy_denoiser(x, sigma.reshape(1).expand(2))
        if sigma_next == 0:
            x = denoised
            continue
        decay = (sigma_next / sigma) ** 2  # e^{-2h}
        x = decay * x + (1 - decay) * denoised
        h = (sigma / sigma_next).log()
        if old is not None:
            x = x + 0.5 * (1 - decay) * (h / h_last) * (denoised - old)
        old, h_last = denoised, h
    ours = _run("dpmpp_2m_sde", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_dpmpp_3m_sde_without_noise(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    """The correction extrapolates the estimates quadratically in λ: d1 ≈ h·D', d2 ≈ h²·D''/2 from
    the last three estimates, weighted by φ2 = 1 - (1 - e^{-2h})/(2h) and φ3 = φ2/(2h) - 1/2."""
    x, estimates, steps = noise64 * sigmas64[0], [], []
    for sigma, sigma_next in zip(sigmas64[:-1], sigmas64[1:]):
        denoised = toy_denoiser(x, sigma.reshape(1).expand(2))
        if sigma_next == 0:
            x = denoised
            continue
        h = (sigma / sigma_next).log()
        decay = (sigma_next / sigma) ** 2
        phi_2 = 1 - (1 - decay) / (2 * h)
        x = decay * x + (1 - decay) * denoised
        if len(estimates) >= 2:
            r0, r1 = steps[-1] / h, steps[-2] / h
            d1_0, d1_1 = (denoised - estimates[-1]) / r0, (estimates[-1] - estimates[-2]) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = x + phi_2 * d1 - (phi_2 / (2 * h) - 0.5) * d2
        elif estimates:
            x = x + phi_2 * (denoised - estimates[-1]) * h / steps[-1]
        estimates.append(denoised)
        steps.append(h)
    ours = _run("dpmpp_3m_sde", noise64, sigmas64, noise_sampler=_zeros)
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_ddpm_is_euler_ancestral_in_other_coordinates(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    """DDPM's posterior mean is the step to σ_down and its std is σ_up, so with the same seeded
    noise64 both samplers agree up to rounding."""
    torch.testing.assert_close(_run("ddpm", noise64, sigmas64, seed=3), _run("euler_ancestral", noise64, sigmas64, seed=3), rtol=1e-10, atol=1e-10)


def test_lcm_jumps_to_the_estimate_and_renoises(noise64: torch.Tensor, sigmas64: torch.Tensor) -> None:
    served = iter([torch.full_like(noise64, float(k)) for k in range(1, 10)])
    x = noise64 * sigmas64[0]
    for k, (sigma, sigma_next) in enumerate(zip(sigmas64[:-1], sigmas64[1:]), start=1):
        x = toy_denoiser(x, sigma.reshape(1).expand(2))
        if sigma_next > 0:
            x = x + k * sigma_next
    ours = _run("lcm", noise64, sigmas64, noise_sampler=lambda s, s_next: next(served))
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


def test_dpmpp_3m_sde_starts_like_the_heun_form_of_2m_sde(noise: torch.Tensor) -> None:
    """Over three steps (the last to σ = 0) 3M SDE never reaches third order: its first two steps
    are 2M SDE's, in the Heun form."""
    sigmas = torch.tensor([8.0, 2.0, 0.5, 0.0])
    recorded = [torch.randn(noise.shape, generator=torch.Generator().manual_seed(k)) for k in range(2)]

    def served():
        values = iter(recorded)
        return lambda s, s_next: next(values)

    three = _run("dpmpp_3m_sde", noise, sigmas, noise_sampler=served())
    heun = _run("dpmpp_2m_sde_heun", noise, sigmas, noise_sampler=served())
    torch.testing.assert_close(three, heun, rtol=1e-6, atol=1e-6)
    assert (three - _run("dpmpp_2m_sde", noise, sigmas, noise_sampler=served())).abs().max() > 1e-4
