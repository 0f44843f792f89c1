"""LoRA apply and switch time on a full-size SD1.5 model (random weights), against a checkpoint load.

Uses the random-weight SD1.5 checkpoint of bench/model_load.py (generated once into the cache
folder) and two random rank-32 LoRAs (kohya layout, attention, feed-forward and projection
layers of the UNet and the text encoder). Measured in one run, on the GPU when there is one:

- checkpoint load to ready (sdflow's loader through the model manager), the reference;
- reading and matching a LoRA file (LoraLoader's work);
- first apply (base → LoRA A), switch (A → B), and back to the base (B → none): the cost paid at
  the start of sampling when the handle's patches differ from what the UNet holds;
- diffusers' `load_lora_weights` + `fuse_lora` and `unfuse_lora` + `unload_lora_weights` on the
  same model, for comparison.

    python bench/lora.py [--rank 32] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from model_load import random_checkpoint  # bench/ is the script's folder

from diffusion.demo_lora import write_lora
from diffusion.demo_models import TinyModel
from diffusion.lora import apply_lora, load_lora
from diffusion.model_files import checkpoint_handles
from diffusion.patching import patched
from engine.devices import DevicePolicy, VramMode
from engine.models import ModelManager


@contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    into[name] = time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sdflow-bench")
    args = parser.parse_args()
    checkpoint = random_checkpoint(args.cache, "sd15")
    times: dict[str, float] = {}
    manager = ModelManager(DevicePolicy.detect(VramMode.HIGH))
    with timed(times, "checkpoint load to ready"):
        model, clip, _ = checkpoint_handles(checkpoint, manager)
        with manager.use(model.unet, *(e.model for e in clip.encoders)):
            pass
    full = TinyModel("sd15", model.unet, None, {e.key: e.model for e in clip.encoders})
    files = [args.cache / f"lora-sd15-r{args.rank}-{name}.safetensors" for name in "ab"]
    for seed, path in enumerate(files):
        if not path.exists():
            write_lora(full, path, rank=args.rank, seed=seed)
    with timed(times, "read + match LoRA A (LoraLoader)"):
        a = apply_lora(load_lora(files[0], manager), model, clip, 0.8, 0.8)
    b = apply_lora(load_lora(files[1], manager), model, clip, 0.8, 0.8)
    unet = model.unet
    with manager.use(unet):
        for name, patches in (("apply: base -> A", a.model.patches), ("switch: A -> B", b.model.patches), ("back: B -> base", ())):
            with timed(times, name), patched(unet, patches):
                pass
        times |= diffusers_reference(full, files[0])
    layers = sum(len(p.modules) for p in a.model.patches)
    print(f"SD1.5 UNet, {layers} patched layers, rank {args.rank}, device {manager.policy.compute}, dtype {next(unet.parameters()).dtype}")
    load = times["checkpoint load to ready"]
    for name, seconds in times.items():
        print(f"  {name:42} {seconds * 1000:9.1f} ms   {seconds / load:6.3f} x checkpoint load")
    return 0


def diffusers_reference(tiny: TinyModel, lora: Path) -> dict[str, float]:
    """diffusers' own LoRA loading and fusing on the same UNet and text encoder."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(vae=None, unet=tiny.unet, text_encoder=tiny.text_encoders["clip_l"], tokenizer=None,
                                       scheduler=EulerDiscreteScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    times: dict[str, float] = {}
    with timed(times, "diffusers: load_lora_weights + fuse_lora"):
        pipeline.load_lora_weights(str(lora))
        pipeline.fuse_lora(lora_scale=0.8)
    with timed(times, "diffusers: unfuse_lora + unload_lora_weights"):
        pipeline.unfuse_lora()
        pipeline.unload_lora_weights()
    return times


if __name__ == "__main__":
    sys.exit(main())
