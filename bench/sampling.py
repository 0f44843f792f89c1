"""Sampling speed: sdflow's KSampler path against a raw diffusers pipeline, same model, same work.

Both sample with Euler over the same sigmas (diffusers' "trailing" timesteps = sdflow's "simple"),
classifier-free guidance with the same prompt embeddings, and stop at the latent (no VAE). The
models are full-size SD1.5 / SDXL with random weights (the files bench/model_load.py caches in
~/.cache/sdflow-bench), with PyTorch scaled-dot-product attention as loaded, loaded once and shared by both sides. Prints iterations per second for
both and the ratio sdflow / diffusers (target ≥ 1.0).

CPU default: a small latent and 3 steps. With a GPU: fp16 and PyTorch SDPA attention, 512² for
SD1.5 and 1024² for SDXL, 20 steps.

    python bench/sampling.py [--families sd15 sdxl] [--steps N] [--size PX] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_load import random_checkpoint  # noqa: E402  (the cached random-weight checkpoints)

from diffusion.families import FAMILIES  # noqa: E402
from diffusion.handles import ModelHandle  # noqa: E402
from diffusion.loading import Dtypes, load_checkpoint  # noqa: E402
from diffusion.sample import Guider, Noise, ksampler_sigmas, prepare_noise, sample  # noqa: E402
from engine.devices import DevicePolicy  # noqa: E402
from engine.models import ModelManager  # noqa: E402

CFG = 7.0


def best_times(runs: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """Best wall time of each run over `repeat` rounds after a warm-up; the runs alternate so drift hits both."""
    best = dict.fromkeys(runs, float("inf"))
    for round_ in range(repeat + 1):
        for name, run in runs.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench(family: str, path: Path, steps: int, size: int, repeat: int) -> tuple[float, float]:
    """(sdflow it/s, diffusers it/s) for one family."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    from diffusion.tokenizer import load_hf_tokenizer

    policy = DevicePolicy.detect()
    dtype = policy.dtype((torch.float16,))
    checkpoint = load_checkpoint(path, Dtypes(dtype, dtype, dtype))
    device = policy.compute
    unet = checkpoint.unet.to(device)
    sdxl = FAMILIES[family].adm is not None
    generator = torch.Generator().manual_seed(0)
    cross = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator)
    uncross = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator)
    options = {"pooled_output": torch.randn(1, 1280, generator=generator), "width": size, "height": size} if sdxl else {}
    latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}

    model = ModelHandle(unet, FAMILIES[family], "eps")
    guider = Guider(model, [[cross, options]], [[uncross, options]], CFG)
    manager = ModelManager(policy)
    sigmas = ksampler_sigmas(model, "euler", "simple", steps)
    outputs = {}

    def ours() -> None:  # the executor runs every node under inference mode
        with torch.inference_mode():
            outputs["sdflow"] = sample(guider, "euler", sigmas, Noise(1), latent, manager)[0] * FAMILIES[family].latent_scale

    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1)
    tokenizer = load_hf_tokenizer()
    encoders = {k: m for k, (_, m) in checkpoint.encoders.items()}
    if sdxl:
        pipe = StableDiffusionXLPipeline(vae=checkpoint.vae, text_encoder=encoders["clip_l"], text_encoder_2=encoders["clip_g"],
                                         tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
        extra = dict(pooled_prompt_embeds=options["pooled_output"].to(device, dtype), negative_pooled_prompt_embeds=options["pooled_output"].to(device, dtype),
                     original_size=(size, size), target_size=(size, size))
    else:
        pipe = StableDiffusionPipeline(vae=checkpoint.vae, text_encoder=encoders["clip_l"], tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        extra = {}
    pipe.set_progress_bar_config(disable=True)

    scheduler.set_timesteps(steps)
    # The same start noise: diffusers multiplies `latents` by init_noise_sigma, sdflow by sqrt(1 + sigma_max^2).
    start = prepare_noise(latent["samples"], 1) * (1 + float(scheduler.sigmas[0]) ** 2) ** 0.5 / float(scheduler.init_noise_sigma)

    def theirs() -> None:
        outputs["diffusers"] = pipe(prompt_embeds=cross.to(device, dtype), negative_prompt_embeds=uncross.to(device, dtype), height=size,
                                    width=size, latents=start.to(device, dtype), num_inference_steps=steps, guidance_scale=CFG,
                                    output_type="latent", **extra).images.float().cpu()

    times = best_times({"sdflow": ours, "diffusers": theirs}, repeat)
    difference = (outputs["sdflow"] - outputs["diffusers"]).abs().max() / outputs["diffusers"].abs().max()
    print(f"{family}: max difference between the two latents {difference:.1e} of their range (same work)")
    return steps / times["sdflow"], steps / times["diffusers"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["sd15", "sdxl"], choices=["sd15", "sdxl"])
    gpu = torch.cuda.is_available()
    parser.add_argument("--steps", type=int, default=20 if gpu else 3)
    parser.add_argument("--size", type=int, help="image size in pixels (default: 512/1024 on a GPU, 128 on the CPU)")
    parser.add_argument("--repeat", type=int, default=3 if gpu else 2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sdflow-bench")
    args = parser.parse_args()
    print(f"device {'cuda' if gpu else 'cpu'}, {args.steps} steps, Euler, cfg {CFG}, best of {args.repeat} after a warm-up")
    worst = float("inf")
    for family in args.families:
        path = random_checkpoint(args.cache, family)
        size = args.size or ((1024 if family == "sdxl" else 512) if gpu else 128)
        ours, reference = bench(family, path, args.steps, size, args.repeat)
        worst = min(worst, ours / reference)
        print(f"{family} {size}x{size}: sdflow {ours:.3f} it/s, diffusers {reference:.3f} it/s, ratio {ours / reference:.3f}")
    print("target met (ratio >= 1.0)" if worst >= 1.0 else "below target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
