"""Sampling nodes: KSampler and KSamplerAdvanced, and the custom-sampling pieces (sampler, sigmas,
noise and guider) that SamplerCustom / SamplerCustomAdvanced combine."""

from __future__ import annotations

from typing import Annotated, Any

import torch

from diffusion.previews import make_previewer
from diffusion.sample import Guider, Noise, StepCallback, ksampler_sigmas, sample, schedule_for, trim_sigmas
from diffusion.samplers import SAMPLERS
from diffusion.schedules import SCHEDULERS, calculate_sigmas, exponential_sigmas, karras_sigmas
from engine import Input, Node, NodeContext, Output, Socket, node
from engine.models import ModelManager
from engine.runtime import Settings
from nodes.sd_types import GUIDER, LATENT, NOISE, SAMPLER, SIGMAS, Conditioning, Latent, Model, Sigmas

SAMPLER_NAMES = list(SAMPLERS)
SCHEDULER_NAMES = list(SCHEDULERS)
MAX_SEED = 2**64 - 1

SamplerName = Annotated[str, Socket(SAMPLER)]
NoiseSource = Annotated[Noise, Socket(NOISE)]
GuiderValue = Annotated[Guider, Socket(GUIDER)]


def progress(ctx: NodeContext, guider: Guider) -> StepCallback:
    """Report each step (and a preview of the denoised estimate) through the context."""
    settings = ctx.services.get(Settings)
    previewer = make_previewer(guider.model.family, ctx.folders, settings.preview_method)

    def report(step: int, total: int, denoised: torch.Tensor) -> None:
        ctx.progress(step, total, previewer(denoised) if previewer is not None else None)

    return report


def run(ctx: NodeContext, guider: Guider, sampler: str, sigmas: torch.Tensor, noise: Noise, latent: dict[str, Any]) -> tuple[dict, dict]:
    """Sample a LATENT; returns the result and the last denoised estimate as LATENTs."""
    samples, denoised = sample(guider, sampler, sigmas, noise, latent, ctx.services.get(ModelManager), progress(ctx, guider))
    out = {**latent, "samples": samples}
    return out, ({**latent, "samples": denoised} if denoised is not None else out)


@node(display_name="KSampler", category="sampling", outputs=[Output(LATENT)])
class KSampler(Node):
    """Denoise a latent with a model, positive and negative conditioning and a sampler.

    A denoise below 1 keeps part of the input latent (image to image)."""

    model: Model = Input(tooltip="The model used for denoising the input latent.")
    seed: int = Input(0, min=0, max=MAX_SEED, control_after_generate=True, tooltip="The random seed used for creating the noise.")
    steps: int = Input(20, min=1, max=10000, tooltip="The number of steps used in the denoising process.")
    cfg: float = Input(8.0, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Classifier-free guidance scale.")
    sampler_name: str = Input(SAMPLER_NAMES[0], options=SAMPLER_NAMES, tooltip="The sampling algorithm.")
    scheduler: str = Input(SCHEDULER_NAMES[0], options=SCHEDULER_NAMES, tooltip="How the noise levels are spaced.")
    positive: Conditioning = Input(tooltip="What to include in the image.")
    negative: Conditioning = Input(tooltip="What to exclude from the image.")
    latent_image: Latent = Input(tooltip="The latent image to denoise.")
    denoise: float = Input(1.0, min=0.0, max=1.0, step=0.01, tooltip="How much of the latent is replaced by noise.")

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        sigmas = ksampler_sigmas(self.model, self.sampler_name, self.scheduler, self.steps, self.denoise)
        guider = Guider(self.model, self.positive, self.negative, self.cfg)
        return run(ctx, guider, self.sampler_name, sigmas, Noise(self.seed), self.latent_image)[0]


@node(display_name="KSampler (Advanced)", category="sampling", outputs=[Output(LATENT)])
class KSamplerAdvanced(Node):
    """KSampler over a window of steps, optionally without adding noise and returning the
    leftover noise (for SDXL base + refiner chains)."""

    model: Model
    add_noise: str = Input("enable", options=["enable", "disable"])
    noise_seed: int = Input(0, min=0, max=MAX_SEED, control_after_generate=True)
    steps: int = Input(20, min=1, max=10000)
    cfg: float = Input(8.0, min=0.0, max=100.0, step=0.1, round=0.01)
    sampler_name: str = Input(SAMPLER_NAMES[0], options=SAMPLER_NAMES)
    scheduler: str = Input(SCHEDULER_NAMES[0], options=SCHEDULER_NAMES)
    positive: Conditioning
    negative: Conditioning
    latent_image: Latent
    start_at_step: int = Input(0, min=0, max=10000)
    end_at_step: int = Input(10000, min=0, max=10000)
    return_with_leftover_noise: str = Input("disable", options=["disable", "enable"])

    def execute(self, ctx: NodeContext) -> dict[str, Any]:
        sigmas = ksampler_sigmas(self.model, self.sampler_name, self.scheduler, self.steps)
        sigmas = trim_sigmas(sigmas, self.start_at_step, self.end_at_step, self.return_with_leftover_noise == "disable")
        guider = Guider(self.model, self.positive, self.negative, self.cfg)
        noise = Noise(self.noise_seed, enabled=self.add_noise == "enable")
        return run(ctx, guider, self.sampler_name, sigmas, noise, self.latent_image)[0]


@node(display_name="Sampler Custom", category="sampling/custom_sampling", outputs=[Output(LATENT, "output"), Output(LATENT, "denoised_output")])
class SamplerCustom(Node):
    """Sample with a chosen sampler and explicit sigmas."""

    model: Model
    add_noise: bool = Input(True)
    noise_seed: int = Input(0, min=0, max=MAX_SEED, control_after_generate=True)
    cfg: float = Input(8.0, min=0.0, max=100.0, step=0.1, round=0.01)
    positive: Conditioning
    negative: Conditioning
    sampler: SamplerName
    sigmas: Sigmas
    latent_image: Latent

    def execute(self, ctx: NodeContext) -> tuple[dict, dict]:
        guider = Guider(self.model, self.positive, self.negative, self.cfg)
        return run(ctx, guider, self.sampler, self.sigmas, Noise(self.noise_seed, self.add_noise), self.latent_image)


@node(display_name="Sampler Custom Advanced", category="sampling/custom_sampling", outputs=[Output(LATENT, "output"), Output(LATENT, "denoised_output")])
class SamplerCustomAdvanced(Node):
    """Sample with separately chosen noise, guider, sampler and sigmas."""

    noise: NoiseSource
    guider: GuiderValue
    sampler: SamplerName
    sigmas: Sigmas
    latent_image: Latent

    def execute(self, ctx: NodeContext) -> tuple[dict, dict]:
        return run(ctx, self.guider, self.sampler, self.sigmas, self.noise, self.latent_image)


@node(display_name="KSampler Select", category="sampling/custom_sampling/samplers", outputs=[Output(SAMPLER)])
class KSamplerSelect(Node):
    """Choose a sampling algorithm by name."""

    sampler_name: str = Input(SAMPLER_NAMES[0], options=SAMPLER_NAMES)

    def execute(self, ctx: NodeContext) -> str:
        return self.sampler_name


@node(display_name="Basic Scheduler", category="sampling/custom_sampling/schedulers", outputs=[Output(SIGMAS)])
class BasicScheduler(Node):
    """The sigmas of a named scheduler for a model (a denoise below 1 keeps the last steps)."""

    model: Model
    scheduler: str = Input(SCHEDULER_NAMES[0], options=SCHEDULER_NAMES)
    steps: int = Input(20, min=1, max=10000)
    denoise: float = Input(1.0, min=0.0, max=1.0, step=0.01)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        if self.denoise <= 0.0:
            return torch.zeros(0)
        total = self.steps if self.denoise >= 1.0 else int(self.steps / self.denoise)
        return calculate_sigmas(schedule_for(self.model), self.scheduler, total)[-(self.steps + 1) :]


@node(display_name="Karras Scheduler", category="sampling/custom_sampling/schedulers", outputs=[Output(SIGMAS)])
class KarrasScheduler(Node):
    """Karras et al.'s sigmas between explicit bounds."""

    steps: int = Input(20, min=1, max=10000)
    sigma_max: float = Input(14.614642, min=0.0, max=5000.0, step=0.01, round=False)
    sigma_min: float = Input(0.0291675, min=0.0, max=5000.0, step=0.01, round=False)
    rho: float = Input(7.0, min=0.0, max=100.0, step=0.01, round=False)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return karras_sigmas(self.steps, self.sigma_min, self.sigma_max, self.rho)


@node(display_name="Exponential Scheduler", category="sampling/custom_sampling/schedulers", outputs=[Output(SIGMAS)])
class ExponentialScheduler(Node):
    """Sigmas spaced evenly in log-sigma between explicit bounds."""

    steps: int = Input(20, min=1, max=10000)
    sigma_max: float = Input(14.614642, min=0.0, max=5000.0, step=0.01, round=False)
    sigma_min: float = Input(0.0291675, min=0.0, max=5000.0, step=0.01, round=False)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        return exponential_sigmas(self.steps, self.sigma_min, self.sigma_max)


@node(display_name="SD Turbo Scheduler", category="sampling/custom_sampling/schedulers", outputs=[Output(SIGMAS)])
class SDTurboScheduler(Node):
    """SD-Turbo / SDXL-Turbo's few-step sigmas: timesteps 999, 899, ... from the model's schedule."""

    model: Model
    steps: int = Input(1, min=1, max=10)
    denoise: float = Input(1.0, min=0.0, max=1.0, step=0.01)

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        start = 10 - int(10 * self.denoise)
        timesteps = torch.flip(torch.arange(1, 11) * 100 - 1, (0,))[start : start + self.steps]
        sigmas = schedule_for(self.model).sigma(timesteps.float())
        return torch.cat([sigmas, sigmas.new_zeros(1)])


@node(display_name="Random Noise", category="sampling/custom_sampling/noise", outputs=[Output(NOISE)])
class RandomNoise(Node):
    """Initial noise drawn from a seed (as KSampler draws it)."""

    noise_seed: int = Input(0, min=0, max=MAX_SEED, control_after_generate=True)

    def execute(self, ctx: NodeContext) -> Noise:
        return Noise(self.noise_seed)


@node(display_name="Disable Noise", category="sampling/custom_sampling/noise", outputs=[Output(NOISE)])
class DisableNoise(Node):
    """No initial noise: sample the latent as it is."""

    def execute(self, ctx: NodeContext) -> Noise:
        return Noise(0, enabled=False)


@node(display_name="CFG Guider", category="sampling/custom_sampling/guiders", outputs=[Output(GUIDER)])
class CFGGuider(Node):
    """Classifier-free guidance between positive and negative conditioning."""

    model: Model
    positive: Conditioning
    negative: Conditioning
    cfg: float = Input(8.0, min=0.0, max=100.0, step=0.1, round=0.01)

    def execute(self, ctx: NodeContext) -> Guider:
        return Guider(self.model, self.positive, self.negative, self.cfg)


@node(display_name="Basic Guider", category="sampling/custom_sampling/guiders", outputs=[Output(GUIDER)])
class BasicGuider(Node):
    """Guidance by one conditioning only (no negative prompt)."""

    model: Model
    conditioning: Conditioning

    def execute(self, ctx: NodeContext) -> Guider:
        return Guider(self.model, self.conditioning, [], 1.0)


@node(display_name="Split Sigmas", category="sampling/custom_sampling/sigmas", outputs=[Output(SIGMAS, "high_sigmas"), Output(SIGMAS, "low_sigmas")])
class SplitSigmas(Node):
    """Split sigmas at a step: the first part ends where the second begins."""

    sigmas: Sigmas
    step: int = Input(0, min=0, max=10000)

    def execute(self, ctx: NodeContext) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sigmas[: self.step + 1], self.sigmas[self.step :]
