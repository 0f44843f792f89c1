"""Every sampler with every scheduler: finite results, the right number of model calls and
callbacks, and interruption from the callback."""

from __future__ import annotations

import pytest
import torch

from diffusion.samplers import SAMPLERS, SamplerOptions
from diffusion.samplers.dpm_solver import fast_orders
from diffusion.schedules import SCHEDULERS, DiscreteSchedule, sigmas_for
from tests.diffusion.sampling.conftest import CountingDenoiser

pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")

#: ComfyUI's sampler list (KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2)
COMFY_SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral",
    "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu",
    "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip

#: model calls for n sigma steps ending at 0: two per step but the last for the two-stage methods
TWO_STAGE = {"heun", "dpm_2", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_sde_gpu"}
STEPS = 4


def test_samplers_are_comfyuis_in_its_order() -> None:
    assert list(SAMPLERS) == [name for name in COMFY_SAMPLERS if name in SAMPLERS]
    assert SAMPLERS["ddim"] is SAMPLERS["euler"]


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_runs_with_every_scheduler(schedule: DiscreteSchedule, noise: torch.Tensor, name: str, scheduler: str) -> None:
    sigmas = sigmas_for(schedule, scheduler, name, STEPS)
    model, calls = CountingDenoiser(), []

    def callback(i: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        assert x.shape == denoised.shape == noise.shape
        calls.append(i)

    result = SAMPLERS[name](model, noise * sigmas[0], sigmas, SamplerOptions(seed=1, callback=callback, schedule=schedule))
    assert result.shape == noise.shape and torch.isfinite(result).all()
    n = len(sigmas) - 1
    if name == "dpm_fast":
        assert calls == list(range(len(fast_orders(n)))) and len(model.sigmas) == n
    elif name == "dpm_adaptive":
        assert calls == list(range(len(calls))) and len(calls) >= 1
    else:
        assert calls == list(range(n))
        assert len(model.sigmas) == (2 * n - 1 if name in TWO_STAGE else n)
        assert model.sigmas[0] == float(sigmas[0])


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_raising_callback_interrupts_sampling(schedule: DiscreteSchedule, noise: torch.Tensor, name: str) -> None:
    sigmas = sigmas_for(schedule, "karras", name, 8)
    model = CountingDenoiser()

    class Interrupted(Exception):
        pass

    def callback(i: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        if i == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        SAMPLERS[name](model, noise * sigmas[0], sigmas, SamplerOptions(seed=1, callback=callback))
    assert len(model.sigmas) <= 6  # stopped within the second step, long before the 8th


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_single_sigma_returns_the_input(noise: torch.Tensor, name: str) -> None:
    model = CountingDenoiser()
    assert torch.equal(SAMPLERS[name](model, noise, torch.tensor([1.5]), SamplerOptions(seed=1)), noise)
    assert model.sigmas == []


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_one_step_to_zero(schedule: DiscreteSchedule, noise: torch.Tensor, name: str) -> None:
    """One step (ComfyUI's uni_pc cannot take it; ours takes a first-order step)."""
    sigmas = sigmas_for(schedule, "karras", name, 1)
    result = SAMPLERS[name](CountingDenoiser(), noise * sigmas[0], sigmas, SamplerOptions(seed=1))
    assert torch.isfinite(result).all()
