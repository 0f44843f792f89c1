"""Ancestral samplers: each step lands below σ_next and adds fresh noise back up to it."""

from __future__ import annotations

import torch

from diffusion.samplers.base import Denoiser, SamplerOptions, ancestral_step, data_step, denoise, half_log_snr, to_d
from diffusion.samplers.noise import gaussian
from diffusion.samplers.ode import midpoint_slope


def sample_euler_ancestral(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """Euler to σ_down, then noise·σ_up; the estimate itself on a step to σ = 0."""
    extra = gaussian(x, options)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        options.report(i, x, denoised)
        if sigma_down == 0:
            x = denoised
            continue
        x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        if sigma_next > 0:
            x = x + extra(sigma, sigma_next) * sigma_up
    return x


def sample_dpm_2_ancestral(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """dpm_2's midpoint step to σ_down, then noise·σ_up; Euler on a step to σ = 0."""
    extra = gaussian(x, options)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        options.report(i, x, denoised)
        d = to_d(x, sigma, denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigma)
            continue
        x = x + midpoint_slope(model, x, d, sigma, sigma_down) * (sigma_down - sigma)
        x = x + extra(sigma, sigma_next) * sigma_up
    return x


def sample_dpmpp_2s_ancestral(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """DPM-Solver++(2S) single-step second order to σ_down (midpoint in λ), then noise·σ_up;
    Euler on a step to σ = 0."""
    extra = gaussian(x, options)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        options.report(i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        else:
            lam = half_log_snr(sigma)
            h = half_log_snr(sigma_down) - lam
            lam_mid = lam + h / 2
            x_mid = data_step(x, denoised, h / 2)
            x = data_step(x, denoise(model, x_mid, lam_mid.neg().exp()), h)
        if sigma_next > 0:
            x = x + extra(sigma, sigma_next) * sigma_up
    return x


def sample_ddpm(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """DDPM's ancestral step, taken in the variance-preserving form x/√(1+σ²)."""
    extra = gaussian(x, options)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        options.report(i, x, denoised)
        eps = (x - denoised) / sigma
        x_vp = x / torch.sqrt(1.0 + sigma**2.0)
        alpha_cumprod = 1 / (sigma * sigma + 1)
        alpha_cumprod_next = 1 / (sigma_next * sigma_next + 1)
        alpha = alpha_cumprod / alpha_cumprod_next
        x = (1.0 / alpha).sqrt() * (x_vp - (1 - alpha) * eps / (1 - alpha_cumprod).sqrt())
        if sigma_next > 0:
            x = x + ((1 - alpha) * (1.0 - alpha_cumprod_next) / (1.0 - alpha_cumprod)).sqrt() * extra(sigma, sigma_next)
        if sigma_next != 0:
            x = x * torch.sqrt(1.0 + sigma_next**2.0)
    return x


def sample_lcm(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """Latent consistency sampling: jump to the estimate, then re-noise it to σ_next."""
    extra = gaussian(x, options)
    for i in range(len(sigmas) - 1):
        denoised = denoise(model, x, sigmas[i])
        options.report(i, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + extra(sigmas[i], sigmas[i + 1]) * sigmas[i + 1]
    return x
