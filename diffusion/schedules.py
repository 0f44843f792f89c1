"""Noise schedules: a discrete model's training sigmas and the schedulers that pick sampling sigmas.

A scheduler is a plain function `(schedule, steps) -> sigmas`: a float32 tensor of decreasing
noise levels, normally steps + 1 long and ending with 0. The names and the arithmetic are
ComfyUI's, so that a workflow samples the same noise levels in both tools.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.stats
import torch

#: the last alphas_cumprod of a zero-terminal-SNR schedule (kept just above 0 so sigmas stay finite)
ZSNR_LAST_ALPHA_CUMPROD = 4.8973451890853435e-08
#: percent_to_sigma's answer for 0% (any noise level is "after" the start)
SIGMA_BEFORE_START = 999999999.9


class DiscreteSchedule:
    """The 1000-step linear-beta schedule of SD1, SD2 and SDXL, as noise levels σ = √((1-ᾱ)/ᾱ).

    `sigmas` is ascending (sigmas[0] is the smallest) and float32, as are `log_sigmas`."""

    def __init__(self, zero_terminal_snr: bool = False, linear_start: float = 0.00085, linear_end: float = 0.012, timesteps: int = 1000) -> None:
        betas = torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        if zero_terminal_snr:
            alphas_cumprod = _rescale_zero_terminal_snr(alphas_cumprod)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.zero_terminal_snr = zero_terminal_snr
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The training timestep whose log-sigma is nearest, as a float tensor of sigma's shape."""
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).float().to(sigma.device)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """The noise level at a (fractional) timestep: log-sigmas interpolated linearly."""
        t = torch.clamp(timestep.float().to(self.log_sigmas.device), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        """The noise level reached after `percent` (0..1) of the denoising."""
        if percent <= 0.0:
            return SIGMA_BEFORE_START
        if percent >= 1.0:
            return 0.0
        return self.sigma(torch.tensor((1.0 - percent) * 999.0)).item()


def _rescale_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Shift √ᾱ so that the last is 0, scaled to keep the first (then pin the last above 0)."""
    root = alphas_cumprod.sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    rescaled = root**2
    rescaled[-1] = ZSNR_LAST_ALPHA_CUMPROD
    return rescaled


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al.'s n noise levels (evenly spaced in σ^(1/ρ)) from sigma_max to sigma_min, plus 0."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """n noise levels evenly spaced in log σ from sigma_max to sigma_min, plus 0."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def simple(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """Every (1000/steps)-th training sigma, counting down from the largest."""
    stride = len(schedule.sigmas) / steps
    picked = [float(schedule.sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def normal(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """Timesteps evenly spaced from t(sigma_max) to t(sigma_min), both included."""
    return _uniform_timesteps(schedule, steps, include_end=True)


def sgm_uniform(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """Timesteps evenly spaced from t(sigma_max) towards t(sigma_min), the end left out."""
    return _uniform_timesteps(schedule, steps, include_end=False)


def _uniform_timesteps(schedule: DiscreteSchedule, steps: int, include_end: bool) -> torch.Tensor:
    start = schedule.timestep(schedule.sigma_max)
    end = schedule.timestep(schedule.sigma_min)
    append_zero = True
    if not include_end:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(schedule.sigma(end)), 0, abs_tol=1e-5):
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigmas = torch.stack([schedule.sigma(t) for t in timesteps])
    return _append_zero(sigmas) if append_zero else sigmas


def karras(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """karras_sigmas between the schedule's bounds."""
    return karras_sigmas(steps, float(schedule.sigma_min), float(schedule.sigma_max))


def exponential(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """exponential_sigmas between the schedule's bounds."""
    return exponential_sigmas(steps, float(schedule.sigma_min), float(schedule.sigma_max))


def ddim_uniform(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """Training sigmas at indices 1, 1 + 1000//steps, ..., largest first, plus 0.

    The index stride rounds down, so some step counts (e.g. 7) give more than steps + 1 sigmas."""
    if math.isclose(float(schedule.sigmas[1]), 0, abs_tol=1e-5):
        steps += 1
        picked = []
    else:
        picked = [0.0]
    stride = max(len(schedule.sigmas) // steps, 1)
    picked += [float(schedule.sigmas[i]) for i in range(1, len(schedule.sigmas), stride)]
    return torch.tensor(picked[::-1], dtype=torch.float32)


def beta(schedule: DiscreteSchedule, steps: int, a: float = 0.6, b: float = 0.6) -> torch.Tensor:
    """Timesteps at the quantiles of a Beta(a, b) distribution (denser at both ends for 0.6, 0.6),
    rounded to training steps; a repeated timestep is taken once."""
    last_index = len(schedule.sigmas) - 1
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    timesteps = np.rint(scipy.stats.beta.ppf(quantiles, a, b) * last_index)
    picked: list[float] = []
    previous = -1.0
    for t in timesteps:
        if t != previous:
            picked.append(float(schedule.sigmas[int(t)]))
        previous = t
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def linear_quadratic(schedule: DiscreteSchedule, steps: int, threshold_noise: float = 0.025, linear_steps: int | None = None) -> torch.Tensor:
    """Mochi's schedule: a slow linear start below `threshold_noise`, then a quadratic rise,
    expressed as fractions of sigma_max."""
    if steps == 1:
        fractions = [1.0, 0.0]
    else:
        if linear_steps is None:
            linear_steps = steps // 2
        linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        step_diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
        linear_coef = threshold_noise / linear_steps - 2 * step_diff / (quadratic_steps**2)
        const = quadratic_coef * (linear_steps**2)
        quadratic = [quadratic_coef * (i**2) + linear_coef * i + const for i in range(linear_steps, steps)]
        fractions = [1.0 - x for x in linear + quadratic + [1.0]]
    return torch.tensor(fractions, dtype=torch.float32) * schedule.sigma_max


def kl_optimal(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """"Align Your Steps"' KL-optimal schedule: evenly spaced in arctan σ, plus 0.

    One step gives [sigma_max, 0] (ComfyUI divides 0 by 0 there and yields NaN)."""
    fractions = torch.arange(steps, dtype=torch.float32).div_(max(steps - 1, 1))
    low, high = math.atan(float(schedule.sigma_min)), math.atan(float(schedule.sigma_max))
    return _append_zero((fractions * low + (1 - fractions) * high).tan_())


Scheduler = Callable[[DiscreteSchedule, int], torch.Tensor]

#: ComfyUI's schedulers, in its order
SCHEDULERS: dict[str, Scheduler] = {
    "simple": simple,
    "sgm_uniform": sgm_uniform,
    "karras": karras,
    "exponential": exponential,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "normal": normal,
    "linear_quadratic": linear_quadratic,
    "kl_optimal": kl_optimal,
}

#: samplers for which one more sigma is computed and the penultimate one dropped
DISCARD_PENULTIMATE = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


def calculate_sigmas(schedule: DiscreteSchedule, scheduler: str, steps: int) -> torch.Tensor:
    """The sigmas of the scheduler named `scheduler`; ValueError for an unknown name."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULERS)}")
    return SCHEDULERS[scheduler](schedule, steps)


def sigmas_for(schedule: DiscreteSchedule, scheduler: str, sampler: str, steps: int) -> torch.Tensor:
    """The sigmas KSampler gives `sampler`: for DISCARD_PENULTIMATE ones, steps + 1 sigmas with
    the penultimate dropped."""
    if sampler not in DISCARD_PENULTIMATE:
        return calculate_sigmas(schedule, scheduler, steps)
    sigmas = calculate_sigmas(schedule, scheduler, steps + 1)
    return torch.cat([sigmas[:-2], sigmas[-1:]])
