"""Samplers under ComfyUI's names, all with one signature:
`sampler(model, x, sigmas, options) -> x`, where `model` is a denoiser D(x, σ) -> x0 estimate,
`x` is already noised to sigmas[0] (x = latent + noise·σ₀), and the result is x at sigmas[-1].

Not here from ComfyUI's list: the `*_cfg_pp` samplers (they need the unguided estimate, which
D(x, σ) does not give) and heunpp2, ipndm, ipndm_v, deis, res_multistep(_ancestral),
gradient_estimation, er_sde, seeds_2, seeds_3, sa_solver(_pece).
"""

from __future__ import annotations

from diffusion.samplers.ancestral import sample_ddpm, sample_dpm_2_ancestral, sample_dpmpp_2s_ancestral, sample_euler_ancestral, sample_lcm
from diffusion.samplers.base import Denoiser, NoiseSampler, Sampler, SamplerOptions, StepCallback
from diffusion.samplers.dpm_solver import sample_dpm_adaptive, sample_dpm_fast
from diffusion.samplers.lms import sample_lms
from diffusion.samplers.ode import sample_dpm_2, sample_dpmpp_2m, sample_euler, sample_heun
from diffusion.samplers.sde import (
    sample_dpmpp_2m_sde,
    sample_dpmpp_2m_sde_gpu,
    sample_dpmpp_2m_sde_heun,
    sample_dpmpp_2m_sde_heun_gpu,
    sample_dpmpp_3m_sde,
    sample_dpmpp_3m_sde_gpu,
    sample_dpmpp_sde,
    sample_dpmpp_sde_gpu,
)
from diffusion.samplers.uni_pc import sample_uni_pc, sample_uni_pc_bh2

#: every sampler, in ComfyUI's order (`ddim` is Euler: only its inpainting noise differs, which
#: the caller draws)
SAMPLERS: dict[str, Sampler] = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "dpm_2": sample_dpm_2,
    "dpm_2_ancestral": sample_dpm_2_ancestral,
    "lms": sample_lms,
    "dpm_fast": sample_dpm_fast,
    "dpm_adaptive": sample_dpm_adaptive,
    "dpmpp_2s_ancestral": sample_dpmpp_2s_ancestral,
    "dpmpp_sde": sample_dpmpp_sde,
    "dpmpp_sde_gpu": sample_dpmpp_sde_gpu,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_2m_sde_gpu": sample_dpmpp_2m_sde_gpu,
    "dpmpp_2m_sde_heun": sample_dpmpp_2m_sde_heun,
    "dpmpp_2m_sde_heun_gpu": sample_dpmpp_2m_sde_heun_gpu,
    "dpmpp_3m_sde": sample_dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": sample_dpmpp_3m_sde_gpu,
    "ddpm": sample_ddpm,
    "lcm": sample_lcm,
    "ddim": sample_euler,
    "uni_pc": sample_uni_pc,
    "uni_pc_bh2": sample_uni_pc_bh2,
}

__all__ = ["SAMPLERS", "Denoiser", "NoiseSampler", "Sampler", "SamplerOptions", "StepCallback"]
