"""Sampling previews: latent2rgb against a hand computation, TAESD from the vae_approx folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.autoencoders.vae import DecoderTiny
from safetensors.torch import save_file

from diffusion import previews
from diffusion.families import FAMILIES
from engine.folders import Folders

CONSTANT = [1.0, -0.5, 0.25, 2.0]


def constant_latent(height: int = 3, width: int = 5) -> torch.Tensor:
    return torch.tensor(CONSTANT).reshape(1, 4, 1, 1).expand(2, 4, height, width).clone()


def expected_pixel(factors: list[list[float]], bias: list[float]) -> list[int]:
    """One pixel by hand: rgb_k = Σ_c latent_c · factors[c][k] + bias_k, then (rgb + 1)/2 in 8 bits."""
    pixel = []
    for k in range(3):
        rgb = sum(CONSTANT[c] * factors[c][k] for c in range(4)) + bias[k]
        pixel.append(int(min(max((rgb + 1) / 2, 0.0), 1.0) * 255))
    return pixel


SD1 = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
SDXL = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]]


@pytest.mark.parametrize(
    ("family", "factors", "bias"),
    [("sd15", SD1, [0, 0, 0]), ("sd2-v", SD1, [0, 0, 0]), ("sdxl", SDXL, [0.1084, -0.0175, -0.0011]),
     ("sdxl-refiner", SDXL, [0.1084, -0.0175, -0.0011])],
)
def test_latent2rgb_by_hand(folders: Folders, family: str, factors, bias) -> None:
    preview = previews.make_previewer(FAMILIES[family], folders, "latent2rgb")
    image = preview(constant_latent())
    assert image.mode == "RGB" and image.size == (5, 3)  # latent resolution
    pixels = np.asarray(image)
    assert (pixels == pixels[0, 0]).all()
    assert pixels[0, 0].tolist() == expected_pixel(factors, bias)


def test_previews_shrink_to_max_size_and_none_means_no_preview(folders: Folders) -> None:
    preview = previews.make_previewer(FAMILIES["sd15"], folders, "latent2rgb", max_size=16)
    assert preview(torch.zeros(1, 4, 20, 40)).size == (16, 8)
    assert previews.make_previewer(FAMILIES["sd15"], folders, "none") is None
    with pytest.raises(ValueError, match="preview method"):
        previews.make_previewer(FAMILIES["sd15"], folders, "fast")


def random_taesd(seed: int = 0) -> DecoderTiny:
    torch.manual_seed(seed)
    return DecoderTiny(4, 3, num_blocks=(3, 3, 3, 1), block_out_channels=(64,) * 4, upsampling_scaling_factor=2,
                       act_fn="relu", upsample_fn="nearest").eval()


def write_taesd(path: Path, decoder: DecoderTiny) -> Path:
    """Save in TAESD's original layout: a Sequential whose first module (the clamp) has no weights."""
    state = {}
    for key, value in decoder.state_dict().items():
        _, index, rest = key.split(".", 2)  # "layers.<i>.<rest>"
        state[f"{int(index) + 1}.{rest}"] = value.clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def test_auto_uses_taesd_when_its_weights_are_there(folders: Folders) -> None:
    decoder = random_taesd()
    write_taesd(folders.models.root / "vae_approx" / "taesd_decoder.safetensors", decoder)
    latent = torch.randn(2, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    image = previews.make_previewer(FAMILIES["sd15"], folders, "auto")(latent)
    assert image.size == (64, 48)  # 8× the latent
    with torch.no_grad():
        expected = ((decoder(latent[:1]) + 1) / 2).clamp(0, 1)[0].movedim(0, -1)
    assert np.abs(np.asarray(image).astype(int) - (expected * 255).to(torch.uint8).numpy().astype(int)).max() <= 1
    # SDXL needs taesdxl_decoder: without it, latent2rgb at latent resolution
    assert previews.make_previewer(FAMILIES["sdxl"], folders, "auto")(latent).size == (8, 6)


def test_taesd_pth_loads_with_weights_only_and_is_cached_per_file_version(folders: Folders) -> None:
    path = write_taesd(folders.models.root / "vae_approx" / "taesdxl_decoder.pth", random_taesd(1))
    assert previews.find_taesd(folders, "sdxl") == path
    first = previews.load_taesd_decoder(str(path), path.stat().st_mtime_ns)
    assert previews.load_taesd_decoder(str(path), path.stat().st_mtime_ns) is first
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert previews.load_taesd_decoder(str(path), path.stat().st_mtime_ns) is not first
    image = previews.make_previewer(FAMILIES["sdxl"], folders, "taesd", max_size=32)(torch.randn(1, 4, 8, 4))
    assert image.size == (16, 32)  # 32 × 64 shrunk to fit 32


def test_taesd_falls_back_to_latent2rgb_with_a_warning(folders: Folders, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert previews.make_previewer(FAMILIES["sd15"], folders, "taesd")(torch.zeros(1, 4, 3, 5)).size == (5, 3)
    assert "taesd_decoder" in caplog.text
    broken = folders.models.root / "vae_approx" / "taesd_decoder.safetensors"
    broken.parent.mkdir(parents=True)
    save_file({"1.weight": torch.zeros(3)}, str(broken))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert previews.make_previewer(FAMILIES["sd15"], folders, "auto")(torch.zeros(1, 4, 3, 5)).size == (5, 3)
    assert "not a TAESD decoder" in caplog.text
