"""Deterministic samplers of the probability-flow ODE dx/dσ = (x - D(x, σ)) / σ."""

from __future__ import annotations

import torch

from diffusion.samplers.base import Denoiser, SamplerOptions, data_step, denoise, half_log_snr, to_d


def sample_euler(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """Euler's method: x += d·(σ_next - σ)."""
    for i in range(len(sigmas) - 1):
        denoised = denoise(model, x, sigmas[i])
        d = to_d(x, sigmas[i], denoised)
        options.report(i, x, denoised)
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def sample_heun(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """Heun's method (trapezoidal correction with a second model call); Euler on a step to σ = 0."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        d = to_d(x, sigma, denoised)
        options.report(i, x, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
            continue
        x_next = x + d * dt
        d_next = to_d(x_next, sigma_next, denoise(model, x_next, sigma_next))
        x = x + (d + d_next) / 2 * dt
    return x


def sample_dpm_2(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """The midpoint method at the geometric mean of σ and σ_next (Karras' DPM-Solver-2); Euler on
    a step to σ = 0."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        d = to_d(x, sigma, denoised)
        options.report(i, x, denoised)
        if sigma_next == 0:
            x = x + d * (sigma_next - sigma)
        else:
            x = x + midpoint_slope(model, x, d, sigma, sigma_next) * (sigma_next - sigma)
    return x


def midpoint_slope(model: Denoiser, x: torch.Tensor, d: torch.Tensor, sigma: torch.Tensor, sigma_to: torch.Tensor) -> torch.Tensor:
    """The ODE slope at σ_mid = √(σ·σ_to), reached by an Euler step of slope d."""
    sigma_mid = sigma.log().lerp(sigma_to.log(), 0.5).exp()
    x_mid = x + d * (sigma_mid - sigma)
    return to_d(x_mid, sigma_mid, denoise(model, x_mid, sigma_mid))


def sample_dpmpp_2m(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """DPM-Solver++(2M): second order from the previous step's estimate; first order on the
    first step and on a step to σ = 0."""
    old_denoised = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        options.report(i, x, denoised)
        h = half_log_snr(sigma_next) - half_log_snr(sigma)
        if old_denoised is None or sigma_next == 0:
            x = data_step(x, denoised, h)
        else:
            r = (half_log_snr(sigma) - half_log_snr(sigmas[i - 1])) / h
            x = data_step(x, (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised, h)
        old_denoised = denoised
    return x
