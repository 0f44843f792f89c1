"""sdflow's image generation against diffusers' own pipelines on the same weights.

Setup shared by every test: the tiny model of a family is written as an fp32 single file and
loaded by sdflow's nodes, while diffusers gets the very same modules. The scheduler is diffusers'
Euler with "trailing" timesteps, which samples the training sigmas at timesteps 999, 999 - 1000/n,
... exactly like sdflow's euler with the "simple" scheduler, so both run the same arithmetic;
prompts are encoded once by sdflow and handed to diffusers as embeddings; the initial noise is
ComfyUI's (a CPU generator seeded with the seed) in both.

Img2img and inpainting start from a solid colour's latent at denoise 0.5 of 4 steps, which is the
last 4 of an 8-step schedule: diffusers' strength 0.5 of 8 steps, its noise drawn first from a
generator seeded as ComfyUI seeds its CPU noise.

Inpainting on a regular (4-channel) model with a noise mask: diffusers' Inpaint pipelines, after
each step, put back the source latent noised to the next sigma with the initial noise outside the
mask; ComfyUI (and sdflow) instead feed the model the source latent noised to the current sigma
there and replace the denoised estimate by the source latent. With Euler both keep the unmasked
region at exactly "source + noise·σ" at every step, so the results agree for a binary latent mask
(soft mask values would blend differently); the test's mask covers whole 8-pixel blocks, so it is
binary once resized to the latent on both sides.

Tolerance: 1e-5 of the largest latent value (and 1e-4 absolute on 0..1 pixels). Both sides do the
same float32 operations in a different order (batching, the guidance formula on ε vs on the
denoised estimate, float32 vs float64 noise tables): measured differences are ~4e-6 relative;
a one-step or guidance mistake moves results by orders of magnitude more.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

from diffusion.families import FAMILIES
from diffusion.tokenizer import load_hf_tokenizer
from tests.diffusion.generation.conftest import comfy_noise, euler_trailing, run

SEED, STEPS, CFG = 5, 4, 7.5
RELATIVE = 1e-5
PIXELS = 1e-4


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, tolerance: float) -> None:
    difference = (ours.float() - theirs.float()).abs().max().item()
    assert difference <= tolerance, f"max difference {difference} > {tolerance}"


def encode(prompt: dict, text: str, node: str, clip: list) -> None:
    prompt[node] = {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": clip}}


def txt2img_prompt(checkpoint: str, width: int = 64, height: int = 64, sampler_inputs: dict | None = None) -> dict:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": SEED, "steps": STEPS, "cfg": CFG, "sampler_name": "euler", "scheduler": "simple",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0, **(sampler_inputs or {})}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "10": {"class_type": "Capture", "inputs": {"value": ["5", 0]}},
        "11": {"class_type": "Capture", "inputs": {"value": ["6", 0]}},
        "12": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
        "13": {"class_type": "Capture", "inputs": {"value": ["3", 0]}},
    }
    encode(prompt, "a photo of a cat", "2", ["1", 1])
    encode(prompt, "blurry, low quality", "3", ["1", 1])
    return prompt


def img2img_prompt(checkpoint: str, width: int = 64, height: int = 64, noise_mask: bool = False) -> dict:
    """Sampling (denoise 0.5) a solid colour's latent (captured by node 22); with `noise_mask`
    under a rectangle's SetLatentNoiseMask (the mask captured by node 35)."""
    prompt = txt2img_prompt(checkpoint, width, height, sampler_inputs={"latent_image": ["20", 0], "denoise": 0.5})
    prompt["20"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["21", 0], "vae": ["1", 2]}}
    prompt["21"] = {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0x4080C0}}
    prompt["22"] = {"class_type": "Capture", "inputs": {"value": ["20", 0]}}
    if noise_mask:
        add_rectangle_mask(prompt, width, height)
        prompt["23"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["20", 0], "mask": ["33", 0]}}
        prompt["5"]["inputs"]["latent_image"] = ["23", 0]
    return prompt


def add_rectangle_mask(prompt: dict, width: int, height: int) -> None:
    """Node 33: a mask of 32x24 pixels at (16, 8) (whole 8-pixel blocks), captured by node 35."""
    prompt["31"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": width, "height": height}}
    prompt["32"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 24}}
    prompt["33"] = {"class_type": "MaskComposite", "inputs": {"destination": ["31", 0], "source": ["32", 0], "x": 16, "y": 8, "operation": "add"}}
    prompt["35"] = {"class_type": "Capture", "inputs": {"value": ["33", 0]}}


def inpainting_model_prompt() -> dict:
    """txt2img on the 9-channel model, conditioned by InpaintModelConditioning (captured by node 34)
    on a solid colour and a rectangle's mask."""
    prompt = txt2img_prompt("sd15-inpaint.safetensors", sampler_inputs={"positive": ["30", 0], "negative": ["30", 1]})
    prompt["21"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0x4080C0}}
    add_rectangle_mask(prompt, 64, 64)
    prompt["30"] = {"class_type": "InpaintModelConditioning", "inputs": {
        "positive": ["2", 0], "negative": ["3", 0], "vae": ["1", 2], "pixels": ["21", 0], "mask": ["33", 0], "noise_mask": False}}
    prompt["34"] = {"class_type": "Capture", "inputs": {"value": ["30", 0]}}
    return prompt


def img2img_args(captured: dict, family: str) -> dict:
    """diffusers' arguments for the same run as img2img_prompt's (strength 0.5 of twice the steps);
    diffusers takes a 4-channel image as the scaled latent."""
    return dict(image=captured["22"]["samples"] * FAMILIES[family].latent_scale, strength=0.5, num_inference_steps=2 * STEPS,
                guidance_scale=CFG)


def sd_embeds(captured: dict) -> dict:
    return dict(prompt_embeds=captured["12"][0][0], negative_prompt_embeds=captured["13"][0][0])


def sdxl_embeds(captured: dict) -> dict:
    (positive, options), (negative, negative_options) = captured["12"][0], captured["13"][0]
    return dict(prompt_embeds=positive, pooled_prompt_embeds=options["pooled_output"], negative_prompt_embeds=negative,
                negative_pooled_prompt_embeds=negative_options["pooled_output"])


def outputs(pipe, **args) -> tuple[torch.Tensor, torch.Tensor]:
    """The pipeline's final latent and decoded image, each run with a generator seeded as ComfyUI's noise."""
    return tuple(pipe(**args, generator=torch.Generator().manual_seed(SEED), output_type=kind).images for kind in ("latent", "pt"))


def full_denoise_latents(scheduler, shape: tuple[int, ...]) -> torch.Tensor:
    """Latents that diffusers scales by its init_noise_sigma into sdflow's start noise·√(1+σ_max²)."""
    scheduler.set_timesteps(STEPS)
    sigma_max = float(scheduler.sigmas[0])
    return comfy_noise(shape, SEED) * (1 + sigma_max**2) ** 0.5 / float(scheduler.init_noise_sigma)


def sd_pipeline(tiny, scheduler, pipeline=StableDiffusionPipeline):
    encoder = next(iter(tiny.text_encoders.values()))
    return pipeline(vae=tiny.vae, text_encoder=encoder, tokenizer=load_hf_tokenizer(), unet=tiny.unet, scheduler=scheduler,
                    safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def sdxl_pipeline(tiny, scheduler, pipeline=StableDiffusionXLPipeline):
    """A diffusers SDXL pipeline on a tiny base or refiner (which has no clip_l, and takes an aesthetic score)."""
    tokenizer = load_hf_tokenizer()
    clip_l = tiny.text_encoders.get("clip_l")
    extra = {} if pipeline is StableDiffusionXLPipeline else {"requires_aesthetics_score": clip_l is None}
    return pipeline(vae=tiny.vae, text_encoder=clip_l, text_encoder_2=tiny.text_encoders["clip_g"], tokenizer=tokenizer if clip_l else None,
                    tokenizer_2=tokenizer, unet=tiny.unet, scheduler=scheduler, **extra)


def check(captured: dict, family: str, theirs_latent: torch.Tensor, theirs_image: torch.Tensor) -> None:
    ours = captured["10"]["samples"] * FAMILIES[family].latent_scale
    assert_close(ours, theirs_latent, RELATIVE * theirs_latent.abs().max().item())
    assert_close(captured["11"], theirs_image.permute(0, 2, 3, 1), PIXELS)


def test_sd15_txt2img_matches_stable_diffusion_pipeline(runtime, written) -> None:
    captured = run(runtime, txt2img_prompt("sd15.safetensors"))
    scheduler = euler_trailing()
    pipe = sd_pipeline(written["sd15"].tiny, scheduler)
    args = dict(prompt_embeds=captured["12"][0][0], negative_prompt_embeds=captured["13"][0][0],
                latents=full_denoise_latents(scheduler, (1, 4, 8, 8)), num_inference_steps=STEPS, guidance_scale=CFG)
    check(captured, "sd15", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)


def test_sd2_v_prediction_txt2img_matches(runtime, written) -> None:
    captured = run(runtime, txt2img_prompt("sd2-v.safetensors"))
    scheduler = euler_trailing("v_prediction")
    pipe = sd_pipeline(written["sd2-v"].tiny, scheduler)
    args = dict(prompt_embeds=captured["12"][0][0], negative_prompt_embeds=captured["13"][0][0],
                latents=full_denoise_latents(scheduler, (1, 4, 8, 8)), num_inference_steps=STEPS, guidance_scale=CFG)
    check(captured, "sd2-v", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)


def test_sd15_img2img_matches_img2img_pipeline(runtime, written) -> None:
    """denoise 0.5 of 4 steps = the last 4 of an 8-step schedule = diffusers' strength 0.5 of 8 steps."""
    captured = run(runtime, img2img_prompt("sd15.safetensors"))
    pipe = sd_pipeline(written["sd15"].tiny, euler_trailing(), StableDiffusionImg2ImgPipeline)
    check(captured, "sd15", *outputs(pipe, **img2img_args(captured, "sd15"), **sd_embeds(captured)))


def test_sd15_noise_mask_inpainting_matches_inpaint_pipeline_with_a_4_channel_unet(runtime, written) -> None:
    """SetLatentNoiseMask on a regular model: only the masked rectangle is repainted (see the module docstring)."""
    captured = run(runtime, img2img_prompt("sd15.safetensors", noise_mask=True))
    pipe = sd_pipeline(written["sd15"].tiny, euler_trailing(), StableDiffusionInpaintPipeline)
    args = img2img_args(captured, "sd15")
    # a 4-channel UNet never reads masked_image_latents; passing the latent keeps diffusers from encoding pixels
    args |= dict(mask_image=captured["35"][:, None], masked_image_latents=args["image"], height=64, width=64)
    check(captured, "sd15", *outputs(pipe, **args, **sd_embeds(captured)))
    ours, source = captured["10"]["samples"], captured["22"]["samples"]
    keep = (captured["35"][:, None, ::8, ::8] == 0).expand_as(ours)
    assert torch.allclose(ours[keep], source[keep]) and not torch.allclose(ours[~keep], source[~keep])


def test_inpainting_model_matches_inpaint_pipeline(runtime, written) -> None:
    """A 9-channel model given the mask and the masked image's latent, as InpaintModelConditioning does."""
    captured = run(runtime, inpainting_model_prompt())
    scheduler = euler_trailing()
    pipe = sd_pipeline(written["sd15-inpaint"].tiny, scheduler, StableDiffusionInpaintPipeline)
    image = torch.tensor([0x40, 0x80, 0xC0], dtype=torch.float32).div(255).reshape(1, 3, 1, 1).expand(1, 3, 64, 64)
    masked_latent = captured["34"][0][1]["concat_latent_image"] * FAMILIES["sd15-inpaint"].latent_scale
    args = dict(image=image, mask_image=captured["35"][:, None], masked_image_latents=masked_latent, height=64, width=64,
                latents=full_denoise_latents(scheduler, (1, 4, 8, 8)), num_inference_steps=STEPS, guidance_scale=CFG,
                prompt_embeds=captured["12"][0][0], negative_prompt_embeds=captured["13"][0][0])
    check(captured, "sd15-inpaint", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)


def test_sdxl_txt2img_with_size_conditions_matches_sdxl_pipeline(runtime, written) -> None:
    prompt = txt2img_prompt("sdxl.safetensors", width=64, height=48)
    for node, text in (("2", "a castle on a hill"), ("3", "blurry")):
        prompt[node] = {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "clip": ["1", 1], "width": 64, "height": 48, "crop_w": 0, "crop_h": 0, "target_width": 64, "target_height": 48,
            "text_g": text, "text_l": text}}
    captured = run(runtime, prompt)
    scheduler = euler_trailing()
    pipe = sdxl_pipeline(written["sdxl"].tiny, scheduler)
    args = dict(**sdxl_embeds(captured), original_size=(48, 64), target_size=(48, 64),
                height=48, width=64, latents=full_denoise_latents(scheduler, (1, 4, 6, 8)), num_inference_steps=STEPS, guidance_scale=CFG)
    check(captured, "sdxl", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)


def test_sdxl_plain_clip_text_encode_conditions_on_the_latent_size(runtime, written) -> None:
    """Without sizes in the conditioning, both ComfyUI and diffusers condition on the size sampled."""
    captured = run(runtime, txt2img_prompt("sdxl.safetensors", width=64, height=48))
    scheduler = euler_trailing()
    pipe = sdxl_pipeline(written["sdxl"].tiny, scheduler)
    args = dict(**sdxl_embeds(captured), height=48, width=64, latents=full_denoise_latents(scheduler, (1, 4, 6, 8)),
                num_inference_steps=STEPS, guidance_scale=CFG)
    check(captured, "sdxl", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)


@pytest.mark.parametrize("family", ["sdxl", "sdxl-refiner"])
def test_sdxl_img2img_matches_sdxl_img2img_pipeline(runtime, written, family: str) -> None:
    """Base and refiner, plain CLIPTextEncode, a 64x48 image: sizes (and the refiner's aesthetic
    scores 6 and 2.5) are the pipeline's defaults on both sides."""
    captured = run(runtime, img2img_prompt(f"{family}.safetensors", width=64, height=48))
    pipe = sdxl_pipeline(written[family].tiny, euler_trailing(), StableDiffusionXLImg2ImgPipeline)
    check(captured, family, *outputs(pipe, **img2img_args(captured, family), **sdxl_embeds(captured)))


def test_sdxl_noise_mask_inpainting_matches_sdxl_inpaint_pipeline(runtime, written) -> None:
    """SetLatentNoiseMask on the (4-channel) SDXL base model, a 64x48 image."""
    captured = run(runtime, img2img_prompt("sdxl.safetensors", width=64, height=48, noise_mask=True))
    pipe = sdxl_pipeline(written["sdxl"].tiny, euler_trailing(), StableDiffusionXLInpaintPipeline)
    args = img2img_args(captured, "sdxl")
    args |= dict(mask_image=captured["35"][:, None], masked_image_latents=args["image"], height=48, width=64)
    check(captured, "sdxl", *outputs(pipe, **args, **sdxl_embeds(captured)))
