"""KSampler with ControlNets and T2I-Adapters against diffusers' ControlNet and Adapter pipelines.

The setup is tests/diffusion/generation's: fp32 single files loaded by sdflow's nodes while
diffusers gets the very same modules, diffusers' Euler on "trailing" timesteps (= euler + simple),
prompts encoded by sdflow, ComfyUI's initial noise on both sides. The hint is a random 64×64 PNG
loaded by LoadImage; diffusers gets the loaded pixels (cropped as sdflow crops them when the image
is not square). The control files are read back from the original single-file layout.

Start/end percent: ComfyUI (and sdflow) turn a control on while the noise level lies between the
levels reached after start and end percent of the schedule; diffusers keeps step i of n while
i/n >= start and (i+1)/n <= end. With 4 trailing steps (timesteps 999, 749, 499, 249) both select
the same steps for the windows tested.

Tolerance as in the generation tests: 1e-5 of the largest latent value and 1e-4 on 0..1 pixels.
"""

from __future__ import annotations

import inspect
from typing import NamedTuple

import pytest
import torch
from diffusers import (
    StableDiffusionAdapterPipeline,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetInpaintPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLAdapterPipeline,
    StableDiffusionXLControlNetPipeline,
)

from diffusion.families import FAMILIES
from tests.capture import run_captured
from tests.control.conftest import HINT
from tests.diffusion.generation.conftest import euler_trailing
from tests.diffusion.generation.test_generation_diffusers import (
    CFG,
    RELATIVE,
    STEPS,
    assert_close,
    check,
    full_denoise_latents,
    img2img_args,
    img2img_prompt,
    inpainting_model_prompt,
    outputs,
    sd_embeds,
    sd_pipeline,
    sdxl_embeds,
    sdxl_pipeline,
    txt2img_prompt,
)

#: the pixels of the EmptyImage (colour 0x4080C0) that img2img_prompt and inpainting_model_prompt start from
SOLID = torch.tensor([0x40, 0x80, 0xC0], dtype=torch.float32).div(255).reshape(1, 3, 1, 1).expand(1, 3, 64, 64)


class Apply(NamedTuple):
    """One ControlNetApplyAdvanced: the control file, its settings and the hint (LoadImage node 40, or 42: inverted)."""

    name: str
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    image: str = "40"


def with_controls(prompt: dict, *controls: Apply) -> dict:
    """Apply `controls` in turn over the KSampler's conditionings; the hints are captured by nodes 41 and 43."""
    prompt["40"] = {"class_type": "LoadImage", "inputs": {"image": HINT}}
    prompt["41"] = {"class_type": "Capture", "inputs": {"value": ["40", 0]}}
    prompt["42"] = {"class_type": "ImageInvert", "inputs": {"image": ["40", 0]}}
    prompt["43"] = {"class_type": "Capture", "inputs": {"value": ["42", 0]}}
    sampler = prompt["5"]["inputs"]
    for i, control in enumerate(controls):
        loader, apply = str(50 + 2 * i), str(51 + 2 * i)
        prompt[loader] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": control.name}}
        prompt[apply] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": sampler["positive"], "negative": sampler["negative"], "control_net": [loader, 0], "image": [control.image, 0],
            "strength": control.strength, "start_percent": control.start, "end_percent": control.end}}
        sampler["positive"], sampler["negative"] = [apply, 0], [apply, 1]
    return prompt


def hint(captured: dict, node: str = "41", height: int = 64) -> torch.Tensor:
    """A captured hint as diffusers takes it, centre-cropped to `height` rows as sdflow fits it."""
    top = (64 - height) // 2
    return captured[node].movedim(-1, 1)[:, :, top : top + height]


def pipeline_with(kind, base, **modules):
    """A diffusers pipeline of `kind` over the components of `base` (a pipeline of the same model) plus `modules`."""
    accepted = inspect.signature(kind.__init__).parameters
    return kind(**{k: v for k, v in base.components.items() if k in accepted}, **modules)


def sd_control_pipeline(tiny, kind=StableDiffusionControlNetPipeline, family: str = "sd15", **modules):
    return pipeline_with(kind, sd_pipeline(tiny.models[family], euler_trailing()), requires_safety_checker=False, **modules)


def txt2img_args(pipe, captured: dict, batch: int = 1) -> dict:
    latents = full_denoise_latents(pipe.scheduler, (batch, 4, 8, 8))
    return dict(**sd_embeds(captured), latents=latents, num_inference_steps=STEPS, guidance_scale=CFG, num_images_per_prompt=batch)


@pytest.mark.parametrize("batch", [1, 2])
def test_sd15_controlnet_matches_controlnet_pipeline(runtime, tiny, batch: int) -> None:
    prompt = with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors", 0.9))
    prompt["4"]["inputs"]["batch_size"] = batch
    captured = run_captured(runtime, prompt)
    pipe = sd_control_pipeline(tiny, controlnet=tiny.controls["cn-sd15"])
    check(captured, "sd15", *outputs(pipe, **txt2img_args(pipe, captured, batch), image=hint(captured), controlnet_conditioning_scale=0.9))


@pytest.mark.parametrize(("start", "end"), [(0.5, 0.75), (0.25, 1.0), (0.0, 0.5)])
def test_start_and_end_percent_match_control_guidance_windows(runtime, tiny, start: float, end: float) -> None:
    captured = run_captured(runtime, with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors", 1.5, start, end)))
    pipe = sd_control_pipeline(tiny, controlnet=tiny.controls["cn-sd15"])
    check(captured, "sd15", *outputs(pipe, **txt2img_args(pipe, captured), image=hint(captured), controlnet_conditioning_scale=1.5,
                                     control_guidance_start=start, control_guidance_end=end))


def test_strength_zero_is_no_controlnet(runtime) -> None:
    plain = run_captured(runtime, txt2img_prompt("sd15.safetensors"))
    prompt = with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors", 0.0))
    prompt["60"] = {"class_type": "Capture", "inputs": {"value": ["51", 0]}}
    controlled = run_captured(runtime, prompt)
    assert torch.equal(plain["10"]["samples"], controlled["10"]["samples"])
    assert all("control" not in options for _, options in controlled["60"])


def test_two_chained_controlnets_match_multi_controlnet_pipeline(runtime, tiny) -> None:
    """Each with its own hint, strength and window; their residuals add up."""
    controls = (Apply("cn-sd15.safetensors", 0.8), Apply("cn2-sd15.safetensors", 0.6, 0.5, 1.0, image="42"))
    captured = run_captured(runtime, with_controls(txt2img_prompt("sd15.safetensors"), *controls))
    pipe = sd_control_pipeline(tiny, controlnet=[tiny.controls["cn-sd15"], tiny.controls["cn2-sd15"]])
    check(captured, "sd15", *outputs(pipe, **txt2img_args(pipe, captured), image=[hint(captured), hint(captured, "43")],
                                     controlnet_conditioning_scale=[0.8, 0.6], control_guidance_start=[0.0, 0.5], control_guidance_end=[1.0, 1.0]))


def test_t2i_adapter_matches_adapter_pipeline(runtime, tiny) -> None:
    captured = run_captured(runtime, with_controls(txt2img_prompt("sd15.safetensors"), Apply("t2i-sd15.safetensors", 0.7)))
    pipe = sd_control_pipeline(tiny, StableDiffusionAdapterPipeline, adapter=tiny.controls["t2i-sd15"])
    latent, image = outputs(pipe, **txt2img_args(pipe, captured), image=hint(captured), adapter_conditioning_scale=0.7)
    check(captured, "sd15", latent, torch.from_numpy(image).permute(0, 3, 1, 2))  # this older pipeline decodes to numpy


def sdxl_args(pipe, captured: dict) -> dict:
    latents = full_denoise_latents(pipe.scheduler, (1, 4, 6, 8))
    return dict(**sdxl_embeds(captured), height=48, width=64, latents=latents, num_inference_steps=STEPS, guidance_scale=CFG)


@pytest.mark.parametrize(("name", "kind"), [("cn-sdxl", StableDiffusionXLControlNetPipeline), ("t2i-sdxl", StableDiffusionXLAdapterPipeline)])
def test_sdxl_control_matches_sdxl_pipelines(runtime, tiny, name: str, kind) -> None:
    """A 64x48 image: the square hint is centre-cropped to 64x48."""
    captured = run_captured(runtime, with_controls(txt2img_prompt("sdxl.safetensors", width=64, height=48), Apply(f"{name}.safetensors", 0.8)))
    module = "adapter" if kind is StableDiffusionXLAdapterPipeline else "controlnet"
    pipe = pipeline_with(kind, sdxl_pipeline(tiny.models["sdxl"], euler_trailing()), **{module: tiny.controls[name]})
    scale = {f"{module}_conditioning_scale": 0.8}
    check(captured, "sdxl", *outputs(pipe, **sdxl_args(pipe, captured), image=hint(captured, height=48), **scale))


def test_controlnet_img2img_matches_controlnet_img2img_pipeline(runtime, tiny) -> None:
    captured = run_captured(runtime, with_controls(img2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors", 0.9)))
    pipe = sd_control_pipeline(tiny, StableDiffusionControlNetImg2ImgPipeline, controlnet=tiny.controls["cn-sd15"])
    check(captured, "sd15", *outputs(pipe, **img2img_args(captured, "sd15"), **sd_embeds(captured), control_image=hint(captured),
                                     controlnet_conditioning_scale=0.9))


def test_controlnet_with_a_noise_mask_matches_controlnet_inpaint_pipeline(runtime, tiny) -> None:
    """SetLatentNoiseMask on a 4-channel model (see tests/diffusion/generation for why Euler agrees)."""
    captured = run_captured(runtime, with_controls(img2img_prompt("sd15.safetensors", noise_mask=True), Apply("cn-sd15.safetensors", 0.9)))
    pipe = sd_control_pipeline(tiny, StableDiffusionControlNetInpaintPipeline, controlnet=tiny.controls["cn-sd15"])
    args = img2img_args(captured, "sd15")
    source = args.pop("image")
    pipe._encode_vae_image = lambda image, generator: source  # the source latent (this pipeline takes pixels only)
    args |= dict(image=SOLID, mask_image=captured["35"][:, None], height=64, width=64)
    check(captured, "sd15", *outputs(pipe, **args, **sd_embeds(captured), control_image=hint(captured), controlnet_conditioning_scale=0.9))
    ours, source = captured["10"]["samples"], captured["22"]["samples"]
    keep = (captured["35"][:, None, ::8, ::8] == 0).expand_as(ours)
    assert torch.allclose(ours[keep], source[keep])


def test_controlnet_with_an_inpainting_model_matches_controlnet_inpaint_pipeline(runtime, tiny) -> None:
    """A 9-channel model: the ControlNet sees the 4 latent channels only, as in diffusers."""
    captured = run_captured(runtime, with_controls(inpainting_model_prompt(), Apply("cn-sd15.safetensors", 0.9)))
    pipe = sd_control_pipeline(tiny, StableDiffusionControlNetInpaintPipeline, "sd15-inpaint", controlnet=tiny.controls["cn-sd15"])
    masked = captured["34"][0][1]["concat_latent_image"] * FAMILIES["sd15-inpaint"].latent_scale
    pipe._encode_vae_image = lambda image, generator: masked  # ComfyUI's masked-image latent (the mean, not a sample)
    args = txt2img_args(pipe, captured) | dict(image=SOLID, mask_image=captured["35"][:, None], height=64, width=64)
    check(captured, "sd15-inpaint", *outputs(pipe, **args, control_image=hint(captured), controlnet_conditioning_scale=0.9))


def test_diff_controlnet_samples_like_the_full_one(runtime) -> None:
    full = run_captured(runtime, with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors")))
    prompt = with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15-diff.safetensors"))
    prompt["50"] = {"class_type": "DiffControlNetLoader", "inputs": {"model": ["1", 0], "control_net_name": "cn-sd15-diff.safetensors"}}
    diff = run_captured(runtime, prompt)
    theirs = full["10"]["samples"]
    assert_close(diff["10"]["samples"], theirs, RELATIVE * theirs.abs().max().item())  # weights differ by float rounding only


def test_old_controlnet_apply_also_controls_the_negative_side(runtime) -> None:
    advanced = run_captured(runtime, with_controls(txt2img_prompt("sd15.safetensors"), Apply("cn-sd15.safetensors", 0.9)))
    prompt = with_controls(txt2img_prompt("sd15.safetensors"))
    prompt["50"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "cn-sd15.safetensors"}}
    prompt["51"] = {"class_type": "ControlNetApply", "inputs": {"conditioning": ["2", 0], "control_net": ["50", 0], "image": ["40", 0], "strength": 0.9}}
    prompt["5"]["inputs"]["positive"] = ["51", 0]
    old = run_captured(runtime, prompt)
    assert torch.equal(old["10"]["samples"], advanced["10"]["samples"])
