"""The VAE service against diffusers' AutoencoderKL called directly, tiling, and inpainting's inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import nn

from diffusion import vae as service
from diffusion.handles import VaeHandle

TOLERANCE = 1e-5


def random_image(batch: int, height: int, width: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, height, width, channels, generator=torch.Generator().manual_seed(seed))


def test_downscale_ratio(tiny_vae) -> None:
    assert service.downscale_ratio(tiny_vae) == 8


def test_encode_is_the_mean_of_the_latent_distribution(tiny_vae, manager) -> None:
    pixels = random_image(2, 32, 48)
    with torch.no_grad():
        expected = tiny_vae.vae.encode(pixels.movedim(-1, 1) * 2 - 1).latent_dist.mean
    latent = service.encode(tiny_vae, pixels, manager)
    assert latent.shape == (2, 4, 4, 6) and latent.dtype == torch.float32
    assert (latent - expected).abs().max() <= TOLERANCE


def test_decode_maps_to_0_1_channels_last(tiny_vae, manager) -> None:
    latent = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        expected = ((tiny_vae.vae.decode(latent).sample + 1) / 2).clamp(0, 1).movedim(1, -1)
    image = service.decode(tiny_vae, latent, manager)
    assert image.shape == (2, 32, 48, 3) and image.dtype == torch.float32
    assert (image - expected).abs().max() <= TOLERANCE
    assert image.min() >= 0 and image.max() <= 1


def test_encode_drops_alpha_and_crops_to_multiples_of_8_around_the_centre(tiny_vae, manager) -> None:
    rgba = random_image(1, 37, 21, channels=4)
    # 37 → 32 starting at (37 % 8) // 2 = 2; 21 → 16 starting at (21 % 8) // 2 = 2
    cropped = rgba[:, 2:34, 2:18, :3]
    assert torch.equal(service.encode(tiny_vae, rgba, manager), service.encode(tiny_vae, cropped, manager))
    assert service.crop_to_multiple(rgba, 8).shape == (1, 32, 16, 4)


def test_batches_are_split_when_memory_is_short(tiny_vae, manager, monkeypatch) -> None:
    pixels = random_image(3, 16, 16)
    whole = service.encode(tiny_vae, pixels, manager)
    monkeypatch.setattr(service, "CPU_BATCH_BYTES", 1)  # one image at a time
    assert (service.encode(tiny_vae, pixels, manager) - whole).abs().max() <= TOLERANCE


# ---- tiling ---------------------------------------------------------------------------------


def test_tiles_of_a_pointwise_function_blend_back_exactly() -> None:
    """Nearest ×8 upscaling (what decoding does to the size) and 8×8 averaging (encoding): each
    output depends only on its own input pixels, so any tiling gives the untiled result."""
    x = torch.randn(2, 3, 13, 21, generator=torch.Generator().manual_seed(0))
    up = lambda t: F.interpolate(t, scale_factor=8, mode="nearest")
    assert torch.allclose(service.tiled(x, up, 5, 2, 8, 1), up(x), atol=1e-6)
    pixels = torch.randn(1, 3, 104, 168, generator=torch.Generator().manual_seed(1))
    down = lambda t: F.avg_pool2d(t, 8)
    assert torch.allclose(service.tiled(pixels, down, 48, 16, 1, 8), down(pixels), atol=1e-6)


def test_tiles_of_a_local_function_differ_only_where_they_overlap() -> None:
    """Three 3×3 convolutions see 3 pixels around each output, so a tile's values are wrong within
    3 pixels of its inner edge. Columns 0..24 and 16..40 share 16..24: outside it the result is
    exact; inside, the wrong pixels of each tile weigh at most 3/9 in the cross-fade."""
    torch.manual_seed(0)
    conv = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(3))).eval()
    x = torch.randn(1, 3, 24, 40)
    with torch.no_grad():
        whole = conv(x)
        error = (service.tiled(x, conv, 24, 8, 1, 1) - whole).abs()
        left, right = (conv(x[..., :24]) - whole[..., :24]).abs(), (conv(x[..., 16:]) - whole[..., 16:]).abs()
    assert error[..., :16].max() <= 1e-6 and error[..., 24:].max() <= 1e-6
    assert error.max() > 0
    assert error.max() <= 3 / 9 * max(left.max(), right.max()) + 1e-6


def local_vae(seed: int = 0) -> VaeHandle:
    """An SD-shaped VAE without its global parts (GroupNorm statistics, mid-block attention): a
    purely local network, where tiles overlapping by more than its reach match the whole image."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(32,) * 4,
        layers_per_block=1, latent_channels=4, norm_num_groups=32, mid_block_add_attention=False,
    ).eval()
    for module in list(vae.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm):
                setattr(module, name, nn.Identity())
    return VaeHandle(vae)


def test_tiled_vae_matches_whole_image_for_a_local_vae(manager) -> None:
    """256×384 pixels in 256-pixel tiles: two tiles side by side sharing pixel columns 128..256
    (latent 16..32). Outside the shared columns the result is exact. Inside, the tiles' edge
    errors are cross-faded away: measured max |Δ| 2.4e-3 for latents (std 0.10, so 2%) and
    2.8e-4 for pixels (decoded values within 0.5 ± 0.02), means 4e-5 and 1e-5. The bounds leave
    2× room."""
    vae = local_vae()
    pixels = random_image(1, 256, 384)
    latent = service.encode(vae, pixels, manager)
    tiled_latent = service.encode_tiled(vae, pixels, manager, tile_size=256, overlap=64)
    assert tiled_latent.shape == latent.shape == (1, 4, 32, 48)
    latent_error = (tiled_latent - latent).abs()
    assert latent_error.max() < 5e-3 and latent_error.mean() < 1e-4
    assert latent_error[..., :16].max() <= TOLERANCE and latent_error[..., 32:].max() <= TOLERANCE

    image = service.decode(vae, latent, manager)
    tiled_image = service.decode_tiled(vae, latent, manager, tile_size=256, overlap=64)
    assert tiled_image.shape == image.shape == (1, 256, 384, 3)
    image_error = (tiled_image - image).abs()
    assert image_error.max() < 6e-4 and image_error.mean() < 2e-5
    assert image_error[:, :, :128].max() <= TOLERANCE and image_error[:, :, 256:].max() <= TOLERANCE


def test_tiled_sd_vae_shapes_and_single_tile(tiny_vae, manager) -> None:
    """The SD VAE normalises with statistics of the whole input (GroupNorm) and attends over all
    of it, so tiles can only approximate it (ComfyUI's tiled nodes share this); a tile that
    covers the whole image gives exactly the untiled result."""
    pixels = random_image(2, 72, 104)
    latent = service.encode(tiny_vae, pixels, manager)
    assert (service.encode_tiled(tiny_vae, pixels, manager, tile_size=512) - latent).abs().max() <= TOLERANCE
    whole = service.decode(tiny_vae, latent, manager)
    assert (service.decode_tiled(tiny_vae, latent, manager, tile_size=512) - whole).abs().max() <= TOLERANCE
    tiled_latent = service.encode_tiled(tiny_vae, pixels, manager, tile_size=64, overlap=16)
    assert tiled_latent.shape == latent.shape == (2, 4, 9, 13)
    ticks = []
    image = service.decode_tiled(tiny_vae, latent, manager, tile_size=64, overlap=16, progress=lambda *tick: ticks.append(tick))
    assert image.shape == (2, 72, 104, 3) and 0 <= image.min() and image.max() <= 1
    # 8-pixel latent tiles overlapping by at least 2 over 9 rows and 13 columns: 2 × 2 tiles
    assert ticks == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_tile_overlap_must_be_smaller_than_the_tile() -> None:
    with pytest.raises(ValueError, match="overlap"):
        service.tiled(torch.zeros(1, 1, 8, 8), lambda t: t, 4, 4, 1, 1)


# ---- inpainting ------------------------------------------------------------------------------


def test_inpaint_inputs_crop_and_grey_fill() -> None:
    pixels = random_image(1, 10, 9, channels=4)
    mask = torch.zeros(1, 10, 9)
    mask[0, 3, 4], mask[0, 4, 4], mask[0, 5, 4] = 0.4, 0.6, 1.0  # 0.4 rounds to "keep"
    prepared, cropped_mask = service.inpaint_inputs(pixels, mask, 8)
    # 10 rows → 8 from row (10 % 8) // 2 = 1; 9 columns → 8 from column 0
    assert prepared.shape == (1, 8, 8, 3) and cropped_mask.shape == (1, 1, 8, 8)
    assert torch.equal(cropped_mask[0, 0], mask[0, 1:9, 0:8])
    expected = pixels[:, 1:9, 0:8, :3].clone()
    expected[0, 3, 4] = expected[0, 4, 4] = 0.5  # rows 4 and 5 of the original
    assert torch.allclose(prepared, expected, atol=1e-7)


def test_inpaint_mask_is_resized_bilinearly_to_the_pixels() -> None:
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(0))
    _, resized = service.inpaint_inputs(random_image(2, 16, 24), mask, 8)
    assert torch.equal(resized, F.interpolate(mask[:, None], size=(16, 24), mode="bilinear"))


def test_grow_mask_by_hand() -> None:
    mask = torch.zeros(1, 1, 6, 6)
    mask[0, 0, 2, 3] = 0.7  # rounds to 1
    odd = service.grow_mask(mask, 3)
    expected = torch.zeros(6, 6)
    expected[1:4, 2:5] = 1  # a 3×3 box around it
    assert torch.equal(odd[0, 0], expected)
    # an even box has no centre: padding 1 and cutting the extra row/column grows down and right
    even = service.grow_mask(mask, 2)
    expected = torch.zeros(6, 6)
    expected[2:4, 3:5] = 1
    assert torch.equal(even[0, 0], expected)
    assert torch.equal(service.grow_mask(mask, 0)[0, 0], mask[0, 0].round())
