"""One sampling run, as ComfyUI's KSampler does it.

- Noise: `torch.manual_seed(seed)` then one `randn` over the whole latent batch on the CPU; with
  a `batch_index` the per-item noises are drawn in index order so a slice of a batch reproduces
  the same items.
- Latents between nodes are unscaled VAE latents; sampling works on latent × scale factor
  (an all-zero latent, i.e. an empty one, is left as it is) and divides again at the end.
- The start is latent + noise·σ₀, or noise·√(1+σ₀²) when σ₀ is the schedule's maximum.
- With a noise mask, at every step the latent outside the mask is reset to the original noised to
  the current σ (and the prediction there to the original); ddim draws that noise from seed + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from diffusion import conditioning
from diffusion.control import lend_to_uncond
from diffusion.denoiser import Denoiser
from diffusion.handles import ModelHandle
from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.schedules import DiscreteSchedule, sigmas_for
from engine.models import ModelManager

#: called after each step with (step done, total steps, denoised latent in model space)
StepCallback = Callable[[int, int, torch.Tensor], None]


def prepare_noise(latent: torch.Tensor, seed: int, batch_index: Sequence[int] | None = None) -> torch.Tensor:
    """The initial noise ComfyUI draws for `latent` (CPU, float32)."""
    generator = torch.manual_seed(seed)
    if batch_index is None:
        return torch.randn(latent.shape, dtype=latent.dtype, generator=generator, device="cpu")
    noises = {}
    for index in range(max(batch_index) + 1):
        noise = torch.randn((1, *latent.shape[1:]), dtype=latent.dtype, generator=generator, device="cpu")
        if index in batch_index:
            noises[index] = noise
    return torch.cat([noises[i] for i in batch_index])


def schedule_for(model: ModelHandle) -> DiscreteSchedule:
    """The training noise schedule of a model (zero terminal SNR when the file says so)."""
    return DiscreteSchedule(zero_terminal_snr=model.zero_terminal_snr)


def ksampler_sigmas(model: ModelHandle, sampler: str, scheduler: str, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """KSampler's sigmas: a denoise below 1 samples the last `steps` of a longer schedule."""
    schedule = schedule_for(model)
    if denoise > 0.9999:
        return sigmas_for(schedule, scheduler, sampler, steps)
    if denoise <= 0.0:
        return torch.zeros(0)
    return sigmas_for(schedule, scheduler, sampler, int(steps / denoise))[-(steps + 1) :]


def trim_sigmas(sigmas: torch.Tensor, start_step: int | None, last_step: int | None, force_full_denoise: bool) -> torch.Tensor:
    """KSamplerAdvanced's step window: sigmas[start:last + 1], the last forced to 0 if asked."""
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[: last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        sigmas = sigmas[start_step:] if start_step < len(sigmas) - 1 else sigmas[:0]
    return sigmas


@dataclass(frozen=True, eq=False)
class Guider:
    """What steers denoising: a model, its conditioning and the guidance scale (GUIDER).

    With no negative conditioning (BasicGuider) or cfg = 1 the unconditional side is skipped."""

    model: ModelHandle
    positive: list[list[Any]]
    negative: list[list[Any]]
    cfg: float = 1.0


@dataclass(frozen=True)
class Noise:
    """The initial noise of a run (NOISE): drawn from `seed`, or none at all when not `enabled`.

    The seed also seeds the noise ancestral and SDE samplers add along the way."""

    seed: int
    enabled: bool = True

    def generate(self, latent: dict[str, Any]) -> torch.Tensor:
        samples = latent["samples"]
        if not self.enabled:
            return torch.zeros(samples.shape, dtype=torch.float32)
        return prepare_noise(samples.float(), self.seed, latent.get("batch_index"))


def sample(
    guider: Guider,
    sampler: str,
    sigmas: torch.Tensor,
    noise: Noise,
    latent: dict[str, Any],
    manager: ModelManager,
    callback: StepCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a sampler over `sigmas` on a LATENT; returns the sampled latent and the last denoised
    estimate (both unscaled, float32, CPU; the estimate is None when no step ran)."""
    samples = latent["samples"].float()
    if len(sigmas) < 2:
        return samples.clone(), None
    model = guider.model
    family = model.family
    schedule = schedule_for(model)
    scaled = samples * family.latent_scale if torch.count_nonzero(samples) > 0 else samples
    last: list[torch.Tensor] = []
    steps = len(sigmas) - 1

    def on_step(i: int, _x: torch.Tensor, denoised: torch.Tensor) -> None:
        last[:] = [denoised]
        if callback is not None:
            callback(i + 1, steps, denoised)

    with model.ready(manager) as device:
        sigmas = sigmas.to(device, torch.float32)
        latent_in = scaled.to(device)
        noise_mask = latent.get("noise_mask")
        mask = _latent_mask(noise_mask, samples.shape).to(device) if noise_mask is not None else None
        shared = dict(latent_image=latent_in, denoise_mask=mask)
        positive = conditioning.prepare(guider.positive, family, schedule, samples.shape, **shared)
        negative = conditioning.prepare(lend_to_uncond(guider.positive, guider.negative), family, schedule, samples.shape, negative=True, **shared)
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = Denoiser(
            model.unet, model.prediction, schedule, positive, negative, guider.cfg
        )
        initial = noise.generate(latent).to(device)
        if mask is not None:
            inpaint_noise = _ddim_inpaint_noise(initial, noise.seed) if sampler == "ddim" else initial
            denoiser = _KeepUnmasked(denoiser, latent_in, inpaint_noise, mask)
        x = _initial(initial, latent_in, sigmas[0], schedule)
        result = SAMPLERS[sampler](denoiser, x, sigmas, SamplerOptions(seed=noise.seed, callback=on_step, schedule=schedule))
        if mask is not None:
            result = result * mask + latent_in * (1 - mask)
    unscale = 1 / family.latent_scale
    denoised = (last[0] * unscale).float().cpu() if last else None
    return (result * unscale).float().cpu(), denoised


def _initial(noise: torch.Tensor, latent: torch.Tensor, sigma: torch.Tensor, schedule: DiscreteSchedule) -> torch.Tensor:
    sigma_max = float(schedule.sigma_max)
    full = math.isclose(sigma_max, float(sigma), rel_tol=1e-5) or float(sigma) > sigma_max
    return latent + noise * ((1.0 + sigma**2).sqrt() if full else sigma)


def _latent_mask(mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A noise mask (any resolution, [B,H,W] or [B,1,H,W]) as [B, C, h, w] at latent resolution."""
    mask = mask.float().reshape(-1, 1, *mask.shape[-2:])
    mask = F.interpolate(mask, size=tuple(shape[-2:]), mode="bilinear", align_corners=False)
    mask = mask.expand(-1, shape[1], -1, -1)
    if mask.shape[0] != shape[0]:
        mask = mask.repeat(-(-shape[0] // mask.shape[0]), 1, 1, 1)[: shape[0]]
    return mask


def _ddim_inpaint_noise(noise: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.manual_seed(seed + 1)
    return torch.randn(noise.shape, generator=generator, device="cpu").to(noise)


class _KeepUnmasked:
    """Wraps a denoiser so that the unmasked region follows the original latent."""

    def __init__(self, denoiser: Callable, latent: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor) -> None:
        self.denoiser, self.latent, self.noise, self.mask = denoiser, latent, noise, mask

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        keep = 1 - self.mask
        original = self.latent + self.noise * sigma.reshape(-1, 1, 1, 1)
        x = x * self.mask + original * keep
        return self.denoiser(x, sigma) * self.mask + self.latent * keep
