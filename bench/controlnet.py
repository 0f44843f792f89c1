"""ControlNet and T2I-Adapter sampling overhead against plain sampling, in the same run.

A full-size SD1.5 model with random weights (the checkpoint bench/model_load.py caches), a
full-size ControlNet made from its UNet and a full-size T2I-Adapter, both saved once into the cache
folder in the original layouts and loaded through sdflow's loader. The same KSampler path (Euler,
cfg 7, the same noise) samples plain, with the ControlNet and with the T2I-Adapter; printed are
iterations per second and the overhead of each control over plain sampling.

CPU default: a 128² image and 3 steps. With a GPU: fp16, 512², 20 steps.

    python bench/controlnet.py [--steps N] [--size PX] [--repeat N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model_load import random_checkpoint  # bench/ is the script's folder
from sampling import CFG, best_times

from diffusion.control import Control
from diffusion.controlnet import control_model
from diffusion.demo_control import write_controlnet, write_t2i_adapter
from diffusion.model_files import checkpoint_handles
from diffusion.sample import Guider, Noise, ksampler_sigmas, sample
from engine.devices import DevicePolicy, VramMode
from engine.models import ModelManager
from nodes.control import RESIZE_HINT


def control_files(cache: Path, unet) -> dict[str, Path]:
    """The full-size ControlNet (from the UNet's weights) and T2I-Adapter files, written once."""
    from diffusers import ControlNetModel, T2IAdapter

    files = {"ControlNet": cache / "controlnet-sd15-fp16.safetensors", "T2I-Adapter": cache / "t2i-adapter-sd15-fp16.safetensors"}
    if not files["ControlNet"].exists():
        print(f"writing {files['ControlNet']} (once) ...", flush=True)
        write_controlnet(ControlNetModel.from_unet(unet.float()).eval(), files["ControlNet"], dtype=torch.float16)
    if not files["T2I-Adapter"].exists():
        write_t2i_adapter(T2IAdapter(adapter_type="full_adapter").eval(), files["T2I-Adapter"], dtype=torch.float16)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gpu = torch.cuda.is_available()
    parser.add_argument("--steps", type=int, default=20 if gpu else 3)
    parser.add_argument("--size", type=int, default=512 if gpu else 128)
    parser.add_argument("--repeat", type=int, default=3 if gpu else 2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sdflow-bench")
    args = parser.parse_args()
    manager = ModelManager(DevicePolicy.detect(VramMode.HIGH))
    model, _, _ = checkpoint_handles(random_checkpoint(args.cache, "sd15"), manager)
    files = control_files(args.cache, model.unet)
    generator = torch.Generator().manual_seed(0)
    cross, uncross = (torch.randn(1, 77, 768, generator=generator) for _ in range(2))
    hint = torch.rand(1, 3, args.size, args.size, generator=generator)
    latent = {"samples": torch.zeros(1, 4, args.size // 8, args.size // 8)}
    sigmas = ksampler_sigmas(model, "euler", "simple", args.steps)
    guiders = {"plain": Guider(model, [[cross, {}]], [[uncross, {}]], CFG)}
    for name, path in files.items():
        control = Control(control_model(path, manager), hint, 1.0, 0.0, 1.0, place=manager.use, resize=RESIZE_HINT)
        guiders[name] = Guider(model, [[cross, {"control": control}]], [[uncross, {"control": control}]], CFG)

    def run(guider: Guider):
        def once() -> None:
            with torch.inference_mode():
                sample(guider, "euler", sigmas, Noise(1), latent, manager)
        return once

    print(f"device {'cuda' if gpu else 'cpu'}, SD1.5 {args.size}x{args.size}, {args.steps} steps, Euler, cfg {CFG}, "
          f"best of {args.repeat} after a warm-up")
    times = best_times({name: run(guider) for name, guider in guiders.items()}, args.repeat)
    for name, seconds in times.items():
        overhead = "" if name == "plain" else f", {100 * (seconds / times['plain'] - 1):+.0f}% time over plain"
        print(f"{name}: {args.steps / seconds:.3f} it/s{overhead}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
