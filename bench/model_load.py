"""Load time and peak RAM of full-size SD1.5 and SDXL single-file checkpoints: sdflow vs diffusers.

Random-weight checkpoints with the real architectures (fp16, original key names) are generated
once into a cache folder outside the repository (default ~/.cache/sdflow-bench). Each load runs
in a fresh process, so its peak RSS is its own; the reference is diffusers' own
`from_single_file` pipeline loading of the same file into the same dtype, measured in the same
run. With a GPU, "ready" also includes moving every component to it.

    python bench/model_load.py [--families sd15 sdxl] [--dtype auto|float32|float16] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "diffusion" / "assets" / "configs"
PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


def generate(family: str, path: Path) -> None:
    """Write a random-weight checkpoint of the family's real size (built without an fp32 copy)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from diffusion import ldm_keys
    from diffusion.families import FAMILIES

    generator = torch.Generator().manual_seed(0)

    def random(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: torch.randn(v.shape, generator=generator).to(torch.float16) * 0.02 for k, v in model.state_dict().items()}

    folder = CONFIGS / family
    state: dict[str, torch.Tensor] = {}
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    state.update(ldm_keys.unet_to_ldm(random(unet), unet.config))
    state.update(ldm_keys.vae_to_ldm(random(vae), vae.config))
    for slot in FAMILIES[family].encoders:
        config = CLIPTextConfig.from_pretrained(folder / slot.subfolder, local_files_only=True)
        with init_empty_weights():
            model = (CLIPTextModelWithProjection if slot.projected else CLIPTextModel)(config)
        weights = random(model)
        state.update(ldm_keys.open_clip_to_ldm(weights, slot.prefix) if slot.open_clip else ldm_keys.clip_to_ldm(weights, slot.prefix))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))


def random_checkpoint(cache: Path, family: str) -> Path:
    """The cached random-weight checkpoint of a family, generated on first use."""
    path = cache / f"random-{family}-fp16.safetensors"
    if not path.exists():
        print(f"generating {path} (once) ...", flush=True)
        generate(family, path)
    return path


def measure(loader: str, family: str, path: Path, dtype: str) -> None:
    """Child process: load once, print JSON with seconds to loaded and to ready on the device."""
    import torch

    torch_dtype = getattr(torch, dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    if loader == "sdflow":
        from diffusion.loading import Dtypes, load_checkpoint

        checkpoint = load_checkpoint(path, Dtypes(torch_dtype, torch_dtype, torch_dtype))
        modules = [checkpoint.unet, checkpoint.vae, *(m for _, m in checkpoint.encoders.values())]
    else:
        import diffusers

        from diffusion.tokenizer import load_hf_tokenizer

        tokenizer = load_hf_tokenizer()
        extra = {"tokenizer_2": tokenizer} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
        pipeline = getattr(diffusers, PIPELINES[family]).from_single_file(
            str(path), config=str(CONFIGS / family), local_files_only=True, torch_dtype=torch_dtype, tokenizer=tokenizer, **extra
        )
        modules = [m for m in pipeline.components.values() if isinstance(m, torch.nn.Module)]
    loaded = time.perf_counter() - start
    for module in modules:
        module.to(device)
    if device == "cuda":
        torch.cuda.synchronize()
    ready = time.perf_counter() - start
    params = sum(p.numel() for m in modules for p in m.parameters())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB → GiB
    print(json.dumps({"loaded": loaded, "ready": ready, "device": device, "params": params, "peak_gib": peak}))


def run_child(loader: str, family: str, path: Path, dtype: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", loader, family, str(path), dtype],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"{loader} failed on {family}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(results: list[dict]) -> dict:
    """The fastest times and the lowest peak among repeated runs."""
    return {**results[0], **{key: min(r[key] for r in results) for key in ("loaded", "ready", "peak_gib")}}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        loader, family, path, dtype = sys.argv[2:6]
        measure(loader, family, Path(path), dtype)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["sd15", "sdxl"], choices=sorted(PIPELINES))
    parser.add_argument("--dtype", default="auto", help="auto: float16 with a GPU, float32 on the CPU")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sdflow-bench")
    parser.add_argument("--repeat", type=int, default=2, help="runs per loader (best time and lowest peak kept)")
    args = parser.parse_args()
    import torch

    dtype = args.dtype if args.dtype != "auto" else ("float16" if torch.cuda.is_available() else "float32")
    print(f"dtype {dtype}; each load in a fresh process (best of {args.repeat}, loaders alternating, file in the page cache); peak = maximum RSS")
    for family in args.families:
        path = random_checkpoint(args.cache, family)
        size = path.stat().st_size / 1024**3
        with open(path, "rb") as warm:  # both loaders then read the file from memory
            while warm.read(1 << 26):
                pass
        runs: dict[str, list[dict]] = {"sdflow": [], "diffusers": []}
        for _ in range(args.repeat):
            for loader in runs:
                runs[loader].append(run_child(loader, family, path, dtype))
        ours, reference = (best(runs[name]) for name in ("sdflow", "diffusers"))
        print(f"\n{family}: {path.name} ({size:.2f} GiB, {ours['params'] / 1e9:.2f} B parameters), device {ours['device']}")
        print(f"  {'':10} {'loaded s':>9} {'ready s':>8} {'peak RAM GiB':>13}")
        for name, r in (("sdflow", ours), ("diffusers", reference)):
            print(f"  {name:10} {r['loaded']:9.2f} {r['ready']:8.2f} {r['peak_gib']:13.2f}")
        print(f"  sdflow/diffusers: load time {ours['loaded'] / reference['loaded']:.2f}x, ready {ours['ready'] / reference['ready']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
