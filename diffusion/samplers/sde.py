"""DPM-Solver++ samplers of the reverse SDE (η = 1), their noise from a Brownian tree."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch

from diffusion.samplers.base import Denoiser, NoiseSampler, SamplerOptions, ancestral_step, data_step, denoise, half_log_snr
from diffusion.samplers.noise import brownian

#: the intermediate point of dpmpp_sde's step, as a fraction of the step in λ
MIDPOINT = 0.5


def sample_dpmpp_sde(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions, on_device: bool = False) -> torch.Tensor:
    """DPM-Solver++ (stochastic, 2 model calls per step): an ancestral first-order step to the
    λ-midpoint, then an ancestral step from the start using the blend of both estimates; the
    estimate itself on a step to σ = 0."""
    if len(sigmas) <= 1:
        return x
    extra = brownian(x, sigmas, options, on_device)
    blend = 1 / (2 * MIDPOINT)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        options.report(i, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        lam = half_log_snr(sigma)
        lam_mid = lam + MIDPOINT * (half_log_snr(sigma_next) - lam)
        sigma_mid = lam_mid.neg().exp()
        sigma_down, sigma_up = ancestral_step(sigma, sigma_mid)
        x_mid = data_step(x, denoised, half_log_snr(sigma_down) - lam) + extra(sigma, sigma_mid) * sigma_up
        denoised_mid = denoise(model, x_mid, sigma_mid)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        mixed = (1 - blend) * denoised + blend * denoised_mid
        x = data_step(x, mixed, half_log_snr(sigma_down) - lam) + extra(sigma, sigma_next) * sigma_up
    return x


def sample_dpmpp_2m_sde(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    options: SamplerOptions,
    solver: Literal["midpoint", "heun"] = "midpoint",
    on_device: bool = False,
) -> torch.Tensor:
    """DPM-Solver++(2M) SDE: the exact linear part over h(1+η), a second-order correction from
    the previous estimate (midpoint or Heun form), and Brownian noise σ_next·√(1 - e^{-2h});
    the estimate itself on a step to σ = 0."""
    if len(sigmas) <= 1:
        return x
    extra = brownian(x, sigmas, options, on_device)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        options.report(i, x, denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = half_log_snr(sigma_next) - half_log_snr(sigma)
            h_eta = 2 * h
            x = _linear_part(x, denoised, sigma, sigma_next, h)
            if old_denoised is not None:
                r = h_last / h
                if solver == "heun":
                    x = x + ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x - 0.5 * (-h_eta).expm1() * (1 / r) * (denoised - old_denoised)
            x = x + _noise_part(extra, sigma, sigma_next, h)
            h_last = h
        old_denoised = denoised
    return x


def sample_dpmpp_3m_sde(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions, on_device: bool = False) -> torch.Tensor:
    """DPM-Solver++(3M) SDE: like 2M SDE with a third-order correction from the two previous
    estimates (second order on the second step, first order on the first)."""
    if len(sigmas) <= 1:
        return x
    extra = brownian(x, sigmas, options, on_device)
    history: list[tuple[torch.Tensor, torch.Tensor]] = []  # (estimate, its step's h), newest first
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        options.report(i, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = half_log_snr(sigma_next) - half_log_snr(sigma)
        h_eta = 2 * h
        x = _linear_part(x, denoised, sigma, sigma_next, h)
        phi_2 = h_eta.neg().expm1() / h_eta + 1
        if len(history) >= 2:
            (denoised_1, h_1), (denoised_2, h_2) = history[:2]
            r0, r1 = h_1 / h, h_2 / h
            d1_0 = (denoised - denoised_1) / r0
            d1_1 = (denoised_1 - denoised_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x = x + phi_2 * d1 - phi_3 * d2
        elif history:
            denoised_1, h_1 = history[0]
            x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
        x = x + _noise_part(extra, sigma, sigma_next, h)
        history = [(denoised, h), *history[:1]]
    return x


def _linear_part(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The multistep SDE step's first-order part (η = 1): (σ_next/σ)·e^{-h}·x + (1 - e^{-2h})·D."""
    return sigma_next / sigma * (-h).exp() * x - (-2 * h).expm1() * denoised


def _noise_part(extra: NoiseSampler, sigma: torch.Tensor, sigma_next: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The multistep SDE step's noise (η = 1): σ_next·√(1 - e^{-2h})·ξ."""
    return extra(sigma, sigma_next) * sigma_next * (-2 * h).expm1().neg().sqrt()


sample_dpmpp_sde_gpu = partial(sample_dpmpp_sde, on_device=True)
sample_dpmpp_2m_sde_gpu = partial(sample_dpmpp_2m_sde, on_device=True)
sample_dpmpp_2m_sde_heun = partial(sample_dpmpp_2m_sde, solver="heun")
sample_dpmpp_2m_sde_heun_gpu = partial(sample_dpmpp_2m_sde, solver="heun", on_device=True)
sample_dpmpp_3m_sde_gpu = partial(sample_dpmpp_3m_sde, on_device=True)
