"""Previews of the image being sampled, made from the denoised latent at each step.

Two ways, as in ComfyUI: "latent2rgb", a fixed linear map from latent channels to RGB at latent
resolution (instant, blurry), and "taesd", the TAESD tiny decoder (full resolution, needs its
weights in the `vae_approx` model folder). "auto" uses TAESD when its weights are there.
Previewers take the denoised latent in model space (VAE latents × the family's scale factor).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable, Literal

import torch
from diffusers.models.autoencoders.vae import DecoderTiny
from PIL import Image as PILImage
from safetensors.torch import load_file

from diffusion.families import Family
from engine.folders import Folders

log = logging.getLogger(__name__)

Previewer = Callable[[torch.Tensor], PILImage.Image]
PreviewMethod = Literal["none", "auto", "latent2rgb", "taesd"]
LatentFormat = Literal["sd1", "sdxl"]

#: latent channels → RGB factors [4, 3] and bias of each latent format
LATENT_RGB: dict[LatentFormat, tuple[list[list[float]], list[float] | None]] = {
    "sd1": (
        [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]],
        None,
    ),
    "sdxl": (
        [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]],
        [0.1084, -0.0175, -0.0011],
    ),
}
#: the TAESD decoder file (without extension) of each latent format in the vae_approx folder
TAESD_DECODERS: dict[LatentFormat, str] = {"sd1": "taesd_decoder", "sdxl": "taesdxl_decoder"}
TAESD_EXTENSIONS = (".safetensors", ".pth", ".pt")


def latent_format(family: Family) -> LatentFormat:
    """SD1.x and SD2.x share one latent space; SDXL base and refiner another."""
    return "sdxl" if family.id.startswith("sdxl") else "sd1"


def make_previewer(family: Family, folders: Folders, method: PreviewMethod = "auto", max_size: int = 512) -> Previewer | None:
    """A function from the denoised latent `[B, 4, h, w]` to a preview of its first image (at most
    `max_size` pixels on its longer side), or None for method "none"."""
    if method not in ("none", "auto", "latent2rgb", "taesd"):
        raise ValueError(f"unknown preview method {method!r}; expected none, auto, latent2rgb or taesd")
    if method == "none":
        return None
    fmt = latent_format(family)
    render = _latent_to_rgb(fmt)
    if method != "latent2rgb":
        path = find_taesd(folders, fmt)
        if path is not None:
            try:
                render = _taesd_render(path)
            except ValueError as exc:
                log.warning("cannot use TAESD for previews (%s); using latent2rgb", exc)
        elif method == "taesd":
            log.warning("TAESD previews asked for, but no %s file is in the vae_approx folder; using latent2rgb", TAESD_DECODERS[fmt])
    return lambda x0: _fit(render(x0), max_size)


def find_taesd(folders: Folders, fmt: LatentFormat) -> Path | None:
    """The TAESD decoder weights for a latent format in the vae_approx folders, if any."""
    names = set(folders.models.list("vae_approx"))
    for extension in TAESD_EXTENSIONS:
        name = TAESD_DECODERS[fmt] + extension
        if name in names:
            return folders.models.find("vae_approx", name)
    return None


def _latent_to_rgb(fmt: LatentFormat) -> Callable[[torch.Tensor], PILImage.Image]:
    factors, bias = LATENT_RGB[fmt]

    def render(x0: torch.Tensor) -> PILImage.Image:
        weight = torch.tensor(factors, device=x0.device)
        rgb = x0[0].float().movedim(0, -1) @ weight
        if bias is not None:
            rgb = rgb + torch.tensor(bias, device=x0.device)
        return _to_image((rgb + 1.0) / 2.0)

    return render


def _taesd_render(path: Path) -> Callable[[torch.Tensor], PILImage.Image]:
    decoder = load_taesd_decoder(str(path), path.stat().st_mtime_ns)

    def render(x0: torch.Tensor) -> PILImage.Image:
        with torch.no_grad():
            decoded = decoder.to(x0.device)(x0[:1].float())  # -1..1
        return _to_image((decoded[0].movedim(0, -1) + 1.0) / 2.0)

    return render


@functools.lru_cache(maxsize=4)
def load_taesd_decoder(path: str, mtime_ns: int) -> DecoderTiny:
    """The TAESD decoder of a file in the original layout (a plain Sequential: "1.weight",
    "3.conv.0.weight", ...), as diffusers' DecoderTiny; cached per file version (`mtime_ns`)."""
    file = Path(path)
    try:
        original = load_file(file) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, or pickled objects torch refuses to load
        raise ValueError(f"{file.name}: cannot read: {exc}") from None
    if not isinstance(original, dict):
        raise ValueError(f"{file.name}: holds no tensors by name")
    # the original Sequential starts with its clamp; DecoderTiny does the clamp itself
    state = {}
    for key, value in original.items():
        index, _, rest = key.partition(".")
        if not index.isdigit() or int(index) == 0:
            raise ValueError(f"{file.name}: {key!r} is not a key of a TAESD decoder in the original layout")
        state[f"layers.{int(index) - 1}.{rest}"] = value.float()
    decoder = DecoderTiny(4, 3, num_blocks=(3, 3, 3, 1), block_out_channels=(64,) * 4, upsampling_scaling_factor=2,
                          act_fn="relu", upsample_fn="nearest")
    try:
        decoder.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{file.name}: not a TAESD decoder: {exc}") from None
    return decoder.eval()


def _to_image(rgb: torch.Tensor) -> PILImage.Image:
    """`[H, W, 3]` in 0..1 → an 8-bit image (values truncated, as ComfyUI's previews)."""
    return PILImage.fromarray((rgb.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy())


def _fit(image: PILImage.Image, max_size: int) -> PILImage.Image:
    """Shrink an image to fit `max_size × max_size`, keeping its aspect ratio."""
    image.thumbnail((max_size, max_size), PILImage.Resampling.BILINEAR)
    return image
