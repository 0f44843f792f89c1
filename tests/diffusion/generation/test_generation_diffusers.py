"""sdflow's image generation against diffusers' own pipelines on the same weights.

Setup shared by every test: the tiny model of a family is written as an fp32 single file and
loaded by sdflow's nodes, while diffusers gets the very same modules. The scheduler is diffusers'
Euler with "trailing" timesteps, which samples the training sigmas at timesteps 999, 999 - 1000/n,
... exactly like sdflow's euler with the "simple" scheduler, so both run the same arithmetic;
prompts are encoded once by sdflow and handed to diffusers as embeddings; the initial noise is
ComfyUI's (a CPU generator seeded with the seed) in both.

Tolerance: 1e-5 of the largest latent value (and 1e-4 absolute on 0..1 pixels). Both sides do the
same float32 operations in a different order (batching, the guidance formula on ε vs on the
denoised estimate, float32 vs float64 noise tables): measured differences are ~4e-6 relative;
a one-step or guidance mistake moves results by orders of magnitude more.
"""

from __future__ import annotations

import torch
from diffusers import (
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
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


def full_denoise_latents(scheduler, shape: tuple[int, ...]) -> torch.Tensor:
    """Latents that diffusers scales by its init_noise_sigma into sdflow's start noise·√(1+σ_max²)."""
    scheduler.set_timesteps(STEPS)
    sigma_max = float(scheduler.sigmas[0])
    return comfy_noise(shape, SEED) * (1 + sigma_max**2) ** 0.5 / float(scheduler.init_noise_sigma)


def sd_pipeline(tiny, scheduler, pipeline=StableDiffusionPipeline):
    encoder = next(iter(tiny.text_encoders.values()))
    return pipeline(vae=tiny.vae, text_encoder=encoder, tokenizer=load_hf_tokenizer(), unet=tiny.unet, scheduler=scheduler,
                    safety_checker=None, feature_extractor=None, requires_safety_checker=False)


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
    prompt = txt2img_prompt("sd15.safetensors", sampler_inputs={"latent_image": ["20", 0], "denoise": 0.5})
    prompt["20"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["21", 0], "vae": ["1", 2]}}
    prompt["21"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0x4080C0}}
    prompt["22"] = {"class_type": "Capture", "inputs": {"value": ["20", 0]}}
    captured = run(runtime, prompt)
    pipe = sd_pipeline(written["sd15"].tiny, euler_trailing(), StableDiffusionImg2ImgPipeline)
    source = captured["22"]["samples"] * FAMILIES["sd15"].latent_scale  # diffusers takes 4-channel images as scaled latents
    args = dict(image=source, strength=0.5, num_inference_steps=2 * STEPS, guidance_scale=CFG, generator=torch.Generator().manual_seed(SEED),
                prompt_embeds=captured["12"][0][0], negative_prompt_embeds=captured["13"][0][0])
    theirs_latent = pipe(**args, output_type="latent").images
    args["generator"] = torch.Generator().manual_seed(SEED)
    check(captured, "sd15", theirs_latent, pipe(**args, output_type="pt").images)


def test_inpainting_model_matches_inpaint_pipeline(runtime, written) -> None:
    """A 9-channel model given the mask and the masked image's latent, as InpaintModelConditioning does."""
    prompt = txt2img_prompt("sd15-inpaint.safetensors", sampler_inputs={"positive": ["30", 0], "negative": ["30", 1]})
    prompt["21"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0x4080C0}}
    prompt["31"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}}
    prompt["32"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 24}}
    prompt["33"] = {"class_type": "MaskComposite", "inputs": {"destination": ["31", 0], "source": ["32", 0], "x": 16, "y": 8, "operation": "add"}}
    prompt["30"] = {"class_type": "InpaintModelConditioning", "inputs": {
        "positive": ["2", 0], "negative": ["3", 0], "vae": ["1", 2], "pixels": ["21", 0], "mask": ["33", 0], "noise_mask": False}}
    prompt["34"] = {"class_type": "Capture", "inputs": {"value": ["30", 0]}}
    prompt["35"] = {"class_type": "Capture", "inputs": {"value": ["33", 0]}}
    captured = run(runtime, prompt)
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
    tiny = written["sdxl"].tiny
    scheduler = euler_trailing()
    tokenizer = load_hf_tokenizer()
    pipe = StableDiffusionXLPipeline(vae=tiny.vae, text_encoder=tiny.text_encoders["clip_l"], text_encoder_2=tiny.text_encoders["clip_g"],
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=tiny.unet, scheduler=scheduler)
    (positive, options), (negative, negative_options) = captured["12"][0], captured["13"][0]
    args = dict(prompt_embeds=positive, pooled_prompt_embeds=options["pooled_output"], negative_prompt_embeds=negative,
                negative_pooled_prompt_embeds=negative_options["pooled_output"], original_size=(48, 64), target_size=(48, 64),
                height=48, width=64, latents=full_denoise_latents(scheduler, (1, 4, 6, 8)), num_inference_steps=STEPS, guidance_scale=CFG)
    check(captured, "sdxl", pipe(**args, output_type="latent").images, pipe(**args, output_type="pt").images)
