"""Sampling runs: every sampler × scheduler, seeds and batches, step windows, custom sampling."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.demo_models import build_tiny
from diffusion.families import FAMILIES
from diffusion.handles import ModelHandle
from diffusion.sample import Guider, Noise, ksampler_sigmas, prepare_noise, sample, trim_sigmas
from diffusion.samplers import SAMPLERS
from diffusion.schedules import SCHEDULERS
from engine.devices import DevicePolicy, VramMode
from engine.models import ModelManager
from tests.diffusion.generation.conftest import run

MANAGER = ModelManager(DevicePolicy.detect(VramMode.CPU))


def guider(family: str, cfg: float = 5.0, tokens: int = 77) -> Guider:
    """A guider on the tiny model of a family with random conditioning of the right shapes."""
    tiny = build_tiny(family)
    unet = tiny.unet
    generator = torch.Generator().manual_seed(1)
    options: dict = {}
    if FAMILIES[family].adm is not None:
        options["pooled_output"] = torch.randn(1, 32, generator=generator)
    cross = lambda: torch.randn(1, tokens, unet.config.cross_attention_dim, generator=generator)  # noqa: E731
    model = ModelHandle(unet, FAMILIES[family], "v" if family == "sd2-v" else "eps")
    return Guider(model, [[cross(), dict(options)]], [[cross(), dict(options)]], cfg)


def empty_latent(batch: int = 1, size: int = 8) -> dict:
    return {"samples": torch.zeros(batch, 4, size, size)}


@pytest.mark.parametrize("family", ["sd15", "sd2-v", "sdxl"])
def test_every_sampler_and_scheduler_gives_finite_images(family: str) -> None:
    g = guider(family)
    for sampler in SAMPLERS:
        for scheduler in SCHEDULERS:
            sigmas = ksampler_sigmas(g.model, sampler, scheduler, 2)
            result, denoised = sample(g, sampler, sigmas, Noise(7), empty_latent(size=4), MANAGER)
            assert result.shape == (1, 4, 4, 4), (sampler, scheduler)
            assert torch.isfinite(result).all() and result.abs().max() > 0, (sampler, scheduler)
            assert denoised is not None and torch.isfinite(denoised).all(), (sampler, scheduler)


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_sde", "dpmpp_2m_sde", "ddpm", "lcm"])
def test_same_seed_same_image_other_seed_other_image(sampler: str) -> None:
    g = guider("sd15")
    sigmas = ksampler_sigmas(g.model, sampler, "karras", 4)
    first = sample(g, sampler, sigmas, Noise(11), empty_latent(), MANAGER)[0]
    again = sample(g, sampler, sigmas, Noise(11), empty_latent(), MANAGER)[0]
    other = sample(g, sampler, sigmas, Noise(12), empty_latent(), MANAGER)[0]
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_comfy_noise_and_batch_index() -> None:
    latent = torch.zeros(3, 4, 2, 2)
    noise = prepare_noise(latent, 42)
    assert torch.equal(noise, torch.randn((3, 4, 2, 2), generator=torch.Generator().manual_seed(42)))
    picked = prepare_noise(latent[:2], 42, batch_index=[2, 0])
    assert torch.equal(picked, torch.stack([noise[2], noise[0]]))


def test_a_batch_of_two_equals_its_two_batch_index_runs() -> None:
    g = guider("sd15")
    sigmas = ksampler_sigmas(g.model, "euler", "normal", 3)
    batch = sample(g, "euler", sigmas, Noise(3), empty_latent(2), MANAGER)[0]
    for index in range(2):
        single = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [index]}
        alone = sample(g, "euler", sigmas, Noise(3), single, MANAGER)[0]
        assert torch.allclose(alone[0], batch[index], atol=1e-5 * batch.abs().max().item())


def test_two_windows_of_steps_equal_one_run() -> None:
    """KSamplerAdvanced base (steps 0-2, leftover noise kept) then refiner-style (2-4, no new noise)."""
    g = guider("sd15")
    sigmas = ksampler_sigmas(g.model, "euler", "karras", 4)
    whole = sample(g, "euler", sigmas, Noise(9), empty_latent(), MANAGER)[0]
    first = sample(g, "euler", trim_sigmas(sigmas, 0, 2, False), Noise(9), empty_latent(), MANAGER)[0]
    second = sample(g, "euler", trim_sigmas(sigmas, 2, 10000, True), Noise(9, enabled=False), {"samples": first}, MANAGER)[0]
    assert torch.allclose(second, whole, rtol=1e-5, atol=1e-5 * whole.abs().max().item())
    assert len(trim_sigmas(sigmas, 4, 10000, True)) == 0  # nothing left: the latent is returned as it is


def test_denoise_keeps_the_tail_of_a_longer_schedule() -> None:
    model = guider("sd15").model
    full = ksampler_sigmas(model, "euler", "normal", 8)
    assert torch.equal(ksampler_sigmas(model, "euler", "normal", 4, denoise=0.5), full[-5:])
    assert len(ksampler_sigmas(model, "euler", "normal", 4, denoise=0.0)) == 0


def test_cfg_one_skips_the_negative_side() -> None:
    g = guider("sd15", cfg=1.0)
    calls = []
    original = g.model.unet.forward

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    g.model.unet.forward = counting
    sigmas = ksampler_sigmas(g.model, "euler", "normal", 2)
    without_negative = sample(g, "euler", sigmas, Noise(1), empty_latent(), MANAGER)[0]
    assert calls == [1, 1]  # one item per call: the negative side was never computed
    calls.clear()
    ignored = Guider(g.model, g.positive, [[torch.randn(1, 77, 64), {}]], 1.0)
    assert torch.equal(sample(ignored, "euler", sigmas, Noise(1), empty_latent(), MANAGER)[0], without_negative)
    calls.clear()
    sample(Guider(g.model, g.positive, g.negative, 5.0), "euler", sigmas, Noise(1), empty_latent(), MANAGER)
    assert calls == [2, 2]  # cond and uncond in one batch per step


def test_noise_mask_keeps_the_unmasked_latent() -> None:
    g = guider("sd15")
    original = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, :, 32:] = 1  # regenerate the right half only
    sigmas = ksampler_sigmas(g.model, "euler", "normal", 3)
    result = sample(g, "euler", sigmas, Noise(2), {"samples": original, "noise_mask": mask}, MANAGER)[0]
    assert torch.allclose(result[..., :4], original[..., :4], atol=1e-5)
    assert not torch.allclose(result[..., 4:], original[..., 4:], atol=1e-2)


def test_custom_sampling_nodes_reproduce_ksampler(runtime) -> None:
    base = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    ksampler = {**base, "5": {"class_type": "KSampler", "inputs": {
        "model": ["1", 0], "seed": 8, "steps": 3, "cfg": 6.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
        "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "9": {"class_type": "Capture", "inputs": {"value": ["5", 0]}}}
    custom = {**base,
        "6": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 3, "denoise": 1.0}},
        "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
        "8": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "cfg": 6.0}},
        "10": {"class_type": "RandomNoise", "inputs": {"noise_seed": 8}},
        "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["10", 0], "guider": ["8", 0], "sampler": ["7", 0], "sigmas": ["6", 0], "latent_image": ["4", 0]}},
        "12": {"class_type": "SamplerCustom", "inputs": {"model": ["1", 0], "add_noise": True, "noise_seed": 8, "cfg": 6.0, "positive": ["2", 0], "negative": ["3", 0], "sampler": ["7", 0], "sigmas": ["6", 0], "latent_image": ["4", 0]}},
        "13": {"class_type": "Capture", "inputs": {"value": ["11", 0]}},
        "14": {"class_type": "Capture", "inputs": {"value": ["12", 0]}},
        "15": {"class_type": "Capture", "inputs": {"value": ["11", 1]}},
        # stopping above sigma 0, the denoised estimate differs from the (still noisy) output
        "16": {"class_type": "SplitSigmas", "inputs": {"sigmas": ["6", 0], "step": 2}},
        "17": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["10", 0], "guider": ["8", 0], "sampler": ["7", 0], "sigmas": ["16", 0], "latent_image": ["4", 0]}},
        "18": {"class_type": "Capture", "inputs": {"value": ["17", 0]}},
        "19": {"class_type": "Capture", "inputs": {"value": ["17", 1]}}}
    expected = run(runtime, ksampler)["9"]["samples"]
    captured = run(runtime, custom)
    assert torch.equal(captured["13"]["samples"], expected)
    assert torch.equal(captured["14"]["samples"], expected)
    assert torch.equal(captured["15"]["samples"], expected)  # the last step lands on sigma 0: x is the estimate
    noisy, estimate = captured["18"]["samples"], captured["19"]["samples"]
    assert estimate.shape == noisy.shape and not torch.allclose(noisy, estimate, rtol=1e-3)


def test_sigma_nodes(runtime) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": {"class_type": "SDTurboScheduler", "inputs": {"model": ["1", 0], "steps": 2, "denoise": 1.0}},
        "3": {"class_type": "KarrasScheduler", "inputs": {"steps": 4, "sigma_max": 14.614642, "sigma_min": 0.0291675, "rho": 7.0}},
        "4": {"class_type": "ExponentialScheduler", "inputs": {"steps": 4, "sigma_max": 10.0, "sigma_min": 0.1}},
        "5": {"class_type": "SplitSigmas", "inputs": {"sigmas": ["3", 0], "step": 2}},
        **{str(10 + i): {"class_type": "Capture", "inputs": {"value": [n, s]}} for i, (n, s) in enumerate([("2", 0), ("3", 0), ("4", 0), ("5", 0), ("5", 1)])},
    }
    captured = run(runtime, prompt)
    turbo = captured["10"]
    assert len(turbo) == 3 and turbo[-1] == 0 and math.isclose(float(turbo[0]), 14.6146, rel_tol=1e-3)
    karras = captured["11"]
    assert len(karras) == 5 and math.isclose(float(karras[0]), 14.614642, rel_tol=1e-6)
    assert torch.allclose(captured["12"][:-1], torch.tensor([10.0, 10 ** (1 / 3), 10 ** (-1 / 3), 0.1]), rtol=1e-5)
    assert torch.equal(captured["13"], karras[:3]) and torch.equal(captured["14"], karras[2:])


def test_progress_and_previews_reach_the_bus(runtime) -> None:
    runtime.settings.preview_method = "latent2rgb"
    seen = []
    runtime.bus.subscribe(lambda event: seen.append((event.type, event.data)))
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 3, "cfg": 1.0, "sampler_name": "euler",
              "scheduler": "normal", "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "9": {"class_type": "Capture", "inputs": {"value": ["5", 0]}},
    }
    run(runtime, prompt)
    steps = [data for kind, data in seen if kind == "progress"]
    assert [(d["value"], d["max"], d["node"]) for d in steps] == [(1, 3, "5"), (2, 3, "5"), (3, 3, "5")]
    previews = [data for kind, data in seen if kind == "preview"]
    assert len(previews) == 3 and previews[0]["image"].size == (8, 8)
