"""Our samplers against diffusers' schedulers doing the same math on the same sigma list.

Each diffusers scheduler is set up with our sigmas (through `set_timesteps(sigmas=...)` where it
takes them, otherwise by assigning the sigma arrays its `set_timesteps` would build, with unique
dummy timesteps that only serve its step-index lookup) and driven by the toy denoiser, fed the
noise level the scheduler is at. Results are compared relative to their largest magnitude:
- exactly equal where both sides do the same float32 operations in the same order (euler, heun);
- within ROUNDING otherwise. The two sides then compute algebraically equal expressions in a
  different order or form: ε = (x - D)/σ turned back into D, a log-midpoint as lerp in the other
  direction, σ_t/σ_s written as e^{-h}, UniPC on x/√(1+σ²) with float32 coefficients (diffusers)
  or on x with float64 ones (ours), LMS weights from scipy's quad on float32 sigmas (exact on
  these cubics up to rounding) or from exact polynomial integrals. A float32 ulp is 6e-8; a few
  per step over 10 steps stays below 1e-6 (the largest seen is 7e-7), while any wrong
  coefficient moves results by 1e-3 or more.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.samplers.noise import BrownianNoise
from diffusion.schedules import DiscreteSchedule, calculate_sigmas, sigmas_for

from tests.diffusion.sampling.conftest import toy_denoiser

pytestmark = [
    pytest.mark.filterwarnings("ignore:Should have:UserWarning"),  # torchsde, at the tree's rounded ends
    pytest.mark.filterwarnings("ignore:__array:DeprecationWarning"),  # numpy 2 about diffusers handing it tensors
]

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000)
STEPS = 10
ROUNDING = 2e-6


def _relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


def _dummy_timesteps(n: int) -> torch.Tensor:
    return torch.arange(n, 0, -1, dtype=torch.float32)


def _drive(scheduler: SchedulerMixin, x: torch.Tensor, current_sigma: Callable[[SchedulerMixin], torch.Tensor], output: str, **step_kwargs) -> torch.Tensor:
    """Run a scheduler whose samples are x = x0 + σ·ε (the k-diffusion family)."""
    for t in scheduler.timesteps:
        scheduler.scale_model_input(x, t)
        sigma = current_sigma(scheduler).reshape(1).expand(x.shape[0])
        denoised = toy_denoiser(x, sigma)
        model_output = denoised if output == "sample" else (x - denoised) / sigma.reshape(-1, 1, 1, 1)
        x = scheduler.step(model_output, t, x, **step_kwargs).prev_sample
    return x


def _interleave(values: torch.Tensor, include_last: bool) -> torch.Tensor:
    """The sigma layout of diffusers' two-call schedulers: v0, v1, v1, v2, v2, ..., vlast."""
    middle = values[1:] if include_last else values[1:-1]
    return torch.cat([values[:1], middle.repeat_interleave(2), values[-1:]])


def _start(noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    return noise * sigmas[0]


@pytest.mark.parametrize("scheduler_name", ["karras", "normal", "exponential"])
def test_euler_matches_euler_discrete(schedule: DiscreteSchedule, noise: torch.Tensor, scheduler_name: str) -> None:
    sigmas = calculate_sigmas(schedule, scheduler_name, STEPS)
    scheduler = EulerDiscreteScheduler(**SD_BETAS, prediction_type="sample")
    scheduler.set_timesteps(sigmas=sigmas.tolist())
    theirs = _drive(scheduler, _start(noise, sigmas), lambda s: s.sigmas[s.step_index], "sample")
    ours = SAMPLERS["euler"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) == 0


def test_heun_matches_heun_discrete(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    sigmas = calculate_sigmas(schedule, "karras", STEPS)
    scheduler = HeunDiscreteScheduler(**SD_BETAS, prediction_type="sample")
    scheduler.set_timesteps(STEPS)
    scheduler.sigmas = _interleave(sigmas, include_last=False)
    scheduler.timesteps = _dummy_timesteps(2 * STEPS - 1)
    theirs = _drive(scheduler, _start(noise, sigmas), lambda s: s.sigmas[s.step_index], "sample")
    ours = SAMPLERS["heun"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) == 0


def test_dpm_2_matches_kdpm2_discrete(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    sigmas = sigmas_for(schedule, "karras", "dpm_2", STEPS)
    scheduler = KDPM2DiscreteScheduler(**SD_BETAS)
    scheduler.set_timesteps(STEPS)
    midpoints = sigmas.log().lerp(sigmas.roll(1).log(), 0.5).exp()
    scheduler.sigmas = _interleave(sigmas, include_last=True)
    scheduler.sigmas_interpol = _interleave(midpoints, include_last=True)
    scheduler.timesteps = _dummy_timesteps(2 * STEPS - 1)

    def current(s: KDPM2DiscreteScheduler) -> torch.Tensor:
        return s.sigmas[s.step_index] if s.state_in_first_order else s.sigmas_interpol[s.step_index]

    theirs = _drive(scheduler, _start(noise, sigmas), current, "epsilon")
    ours = SAMPLERS["dpm_2"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) < ROUNDING


def test_lms_matches_lms_discrete(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    sigmas = calculate_sigmas(schedule, "karras", STEPS)
    scheduler = LMSDiscreteScheduler(**SD_BETAS, prediction_type="sample")
    scheduler.set_timesteps(STEPS)
    scheduler.sigmas = sigmas
    scheduler.timesteps = _dummy_timesteps(STEPS)
    theirs = _drive(scheduler, _start(noise, sigmas), lambda s: s.sigmas[s.step_index], "sample", order=4)
    ours = SAMPLERS["lms"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) < ROUNDING


def test_euler_ancestral_matches_euler_ancestral_discrete(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    """Same noise too: on the CPU our generator is seeded with seed + 1 and draws once per step
    but the last, diffusers' draws once per step (its last draw is scaled by σ_up = 0)."""
    seed = 42
    sigmas = calculate_sigmas(schedule, "karras", STEPS)
    scheduler = EulerAncestralDiscreteScheduler(**SD_BETAS)
    scheduler.set_timesteps(STEPS)
    scheduler.sigmas = sigmas
    scheduler.timesteps = _dummy_timesteps(STEPS)
    generator = torch.Generator().manual_seed(seed + 1)
    theirs = _drive(scheduler, _start(noise, sigmas), lambda s: s.sigmas[s.step_index], "epsilon", generator=generator)
    ours = SAMPLERS["euler_ancestral"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions(seed=seed))
    assert _relative_error(ours, theirs) < ROUNDING


def test_dpmpp_sde_matches_dpm_solver_sde(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    """Same Brownian tree (seed, range, one tree over the batch) on both sides."""
    seed = 7
    sigmas = calculate_sigmas(schedule, "karras", STEPS)
    scheduler = DPMSolverSDEScheduler(**SD_BETAS, noise_sampler_seed=seed)
    scheduler.set_timesteps(STEPS)
    scheduler.sigmas = _interleave(sigmas, include_last=False)
    scheduler.timesteps = _dummy_timesteps(2 * STEPS - 1)

    def current(s: DPMSolverSDEScheduler) -> torch.Tensor:
        return s.sigmas[s.step_index] if s.state_in_first_order else s.mid_point_sigma

    theirs = _drive(scheduler, _start(noise, sigmas), current, "epsilon")
    ours = SAMPLERS["dpmpp_sde"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions(seed=seed))
    assert _relative_error(ours, theirs) < ROUNDING


def _drive_vp(scheduler: SchedulerMixin, x: torch.Tensor, sigmas: torch.Tensor, noises: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Run a multistep scheduler on x/√(1+σ²), its model the toy denoiser on the σ form."""
    x = x / (1 + sigmas[0] ** 2).sqrt()
    for i, t in enumerate(scheduler.timesteps):
        sigma = sigmas[i]
        denoised = toy_denoiser(x * (1 + sigma**2).sqrt(), sigma.reshape(1).expand(x.shape[0]))
        kwargs = {"variance_noise": noises[i]} if noises is not None else {}
        x = scheduler.step(denoised, t, x, **kwargs).prev_sample
    return x * (1 + sigmas[-1] ** 2).sqrt()


def _multistep(scheduler: SchedulerMixin, sigmas: torch.Tensor) -> SchedulerMixin:
    steps = len(sigmas) - 1
    scheduler.set_timesteps(steps)
    scheduler.sigmas = sigmas.clone()
    scheduler.timesteps = torch.arange(steps, 0, -1)
    return scheduler


@pytest.mark.parametrize("scheduler_name", ["karras", "normal"])
def test_dpmpp_2m_matches_dpm_solver_multistep(schedule: DiscreteSchedule, noise: torch.Tensor, scheduler_name: str) -> None:
    sigmas = calculate_sigmas(schedule, scheduler_name, STEPS)
    scheduler = _multistep(
        DPMSolverMultistepScheduler(**SD_BETAS, algorithm_type="dpmsolver++", solver_order=2, prediction_type="sample", final_sigmas_type="zero"),
        sigmas,
    )
    theirs = _drive_vp(scheduler, _start(noise, sigmas), sigmas)
    ours = SAMPLERS["dpmpp_2m"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) < ROUNDING


@pytest.mark.parametrize(("sampler", "solver_type"), [("dpmpp_2m_sde", "midpoint"), ("dpmpp_2m_sde_heun", "heun")])
def test_dpmpp_2m_sde_matches_sde_dpm_solver_multistep(schedule: DiscreteSchedule, noise: torch.Tensor, sampler: str, solver_type: str) -> None:
    """The noise is recorded from our sampler and handed to diffusers as its variance noise."""
    sigmas = calculate_sigmas(schedule, "karras", STEPS)
    generator = torch.Generator().manual_seed(3)
    noises = [torch.randn(noise.shape, generator=generator) for _ in range(STEPS)]
    served = iter(noises)
    ours = SAMPLERS[sampler](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions(noise_sampler=lambda s, s_next: next(served)))
    assert next(served) is noises[-1]  # every step but the last (to σ = 0) drew noise
    scheduler = _multistep(
        DPMSolverMultistepScheduler(
            **SD_BETAS, algorithm_type="sde-dpmsolver++", solver_order=2, solver_type=solver_type, prediction_type="sample", final_sigmas_type="zero"
        ),
        sigmas,
    )
    theirs = _drive_vp(scheduler, _start(noise, sigmas), sigmas, noises)
    assert _relative_error(ours, theirs) < ROUNDING


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("steps", [2, 3, 4, 10])
def test_uni_pc_matches_unipc_multistep(schedule: DiscreteSchedule, noise: torch.Tensor, variant: str, steps: int) -> None:
    """diffusers' UniPC with lower_order_final uses the same order pattern as ours (order
    min(3, steps - 1), warming up, lowering over the last steps, no corrector after the last)."""
    name = "uni_pc" if variant == "bh1" else "uni_pc_bh2"
    sigmas = sigmas_for(schedule, "karras", name, steps)
    final = sigmas.clone()
    final[-1] = 0.001
    scheduler = _multistep(
        UniPCMultistepScheduler(**SD_BETAS, solver_order=min(3, steps - 1), solver_type=variant, prediction_type="sample", predict_x0=True),
        final,
    )
    theirs = _drive_vp(scheduler, _start(noise, sigmas), final)
    ours = SAMPLERS[name](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(ours, theirs) < ROUNDING


def test_uni_pc_variants_differ(schedule: DiscreteSchedule, noise: torch.Tensor) -> None:
    sigmas = sigmas_for(schedule, "karras", "uni_pc", 6)
    bh1 = SAMPLERS["uni_pc"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    bh2 = SAMPLERS["uni_pc_bh2"](toy_denoiser, _start(noise, sigmas), sigmas, SamplerOptions())
    assert _relative_error(bh1, bh2) > 1e-4


def test_brownian_noise_matches_diffusers_tree(noise: torch.Tensor) -> None:
    """Our Brownian noise equals diffusers' BrownianTreeNoiseSampler (the k-diffusion one) for the
    same seed and range, in both query directions."""
    from diffusers.schedulers.scheduling_dpmsolver_sde import BrownianTreeNoiseSampler

    sigmas = torch.tensor([14.6, 5.0, 1.0, 0.1, 0.0])
    ours = BrownianNoise(noise, sigmas, seed=11, device=torch.device("cpu"))
    theirs = BrownianTreeNoiseSampler(noise, 0.1, 14.6, seed=11)
    for a, b in [(14.6, 5.0), (5.0, 1.0), (1.0, 5.0), (0.1, 1.0)]:
        assert torch.equal(ours(torch.tensor(a), torch.tensor(b)), theirs(torch.tensor(a), torch.tensor(b)))
