"""What every sampler shares: the denoiser and options types, and the small pieces of step math.

x is in the "variance exploding" form x = x0 + σ·ε; sigmas are 0-d tensors taken from the
sampler's sigma list, so the arithmetic stays in the list's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from diffusion.schedules import DiscreteSchedule

#: D(x, σ) -> estimate of the clean x; σ is 1-D with one value per batch item
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: (σ, σ_next) -> unit-variance noise shaped like x, added by ancestral and SDE steps
NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: (step index, x at the step's start, the denoiser's estimate there)
StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass
class SamplerOptions:
    """Settings of one sampling run, the same for every sampler."""

    #: seeds the noise that ancestral and SDE samplers add along the way
    seed: int | None = None
    #: called once per step after the model call; raising from it interrupts sampling
    callback: StepCallback | None = None
    #: the model's training schedule (the samplers here need only the sigma list)
    schedule: DiscreteSchedule | None = None
    #: replaces the seeded noise of ancestral and SDE samplers (e.g. zeros, or recorded noise)
    noise_sampler: NoiseSampler | None = None

    def report(self, i: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        if self.callback is not None:
            self.callback(i, x, denoised)


Sampler = Callable[[Denoiser, torch.Tensor, torch.Tensor, SamplerOptions], torch.Tensor]


def denoise(model: Denoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The model's estimate at one noise level, σ repeated for every batch item."""
    return model(x, sigma * x.new_ones([x.shape[0]]))


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE's slope dx/dσ = (x - D) / σ."""
    return (x - denoised) / sigma


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(σ_down, σ_up) of an ancestral step (η = 1): go deterministically to σ_down, then add
    noise of std σ_up, so that σ_down² + σ_up² = σ_next²."""
    sigma_up = torch.minimum(sigma_next, (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def half_log_snr(sigma: torch.Tensor) -> torch.Tensor:
    """λ = -log σ, the DPM-Solver time variable."""
    return sigma.log().neg()


def data_step(x: torch.Tensor, denoised: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """DPM-Solver++'s first-order step over Δλ = h with a data estimate: e^{-h}·x + (1 - e^{-h})·D."""
    return (-h).exp() * x - (-h).expm1() * denoised
