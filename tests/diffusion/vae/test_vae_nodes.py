"""The VAE nodes called directly: what each hands to the VAE service and what it returns."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffusion import vae as service
from nodes.vae import InpaintModelConditioning, VAEDecode, VAEDecodeTiled, VAEEncode, VAEEncodeForInpaint, VAEEncodeTiled


def random_image(height: int, width: int, channels: int = 3) -> torch.Tensor:
    return torch.rand(1, height, width, channels, generator=torch.Generator().manual_seed(0))


def execute(node_class, ctx, **inputs):
    return node_class.model_construct(**inputs).execute(ctx)


def test_encode_and_decode_nodes(ctx, tiny_vae, manager) -> None:
    pixels = random_image(32, 40, channels=4)
    latent = execute(VAEEncode, ctx, pixels=pixels, vae=tiny_vae)
    assert latent.keys() == {"samples"} and torch.equal(latent["samples"], service.encode(tiny_vae, pixels, manager))
    image = execute(VAEDecode, ctx, samples=latent, vae=tiny_vae)
    assert torch.equal(image, service.decode(tiny_vae, latent["samples"], manager))


def test_tiled_nodes_limit_the_overlap_to_a_quarter_tile(ctx, tiny_vae, manager) -> None:
    pixels = random_image(80, 136)
    options = dict(tile_size=64, overlap=32, temporal_size=64, temporal_overlap=8)
    latent = execute(VAEEncodeTiled, ctx, pixels=pixels, vae=tiny_vae, **options)
    assert torch.equal(latent["samples"], service.encode_tiled(tiny_vae, pixels, manager, 64, 16))
    image = execute(VAEDecodeTiled, ctx, samples=latent, vae=tiny_vae, **options)
    assert torch.equal(image, service.decode_tiled(tiny_vae, latent["samples"], manager, 64, 16))
    assert image.shape == (1, 80, 136, 3)


def test_encode_for_inpaint_without_growing(ctx, tiny_vae) -> None:
    mask = torch.zeros(1, 16, 16)
    mask[0, 4:8, 4:8] = 0.8
    out = execute(VAEEncodeForInpaint, ctx, pixels=random_image(16, 16), vae=tiny_vae, mask=mask, grow_mask_by=0)
    assert torch.equal(out["noise_mask"][0, 0], mask[0].round())


def test_inpaint_model_conditioning(ctx, tiny_vae, manager) -> None:
    pixels = random_image(20, 27)
    mask = torch.zeros(1, 10, 9)
    mask[0, 2:6, 3:6] = 1.0
    positive = [[torch.zeros(1, 77, 8), {"pooled_output": torch.zeros(1, 8)}]]
    negative = [[torch.ones(1, 77, 8), {}]]
    inputs = dict(positive=positive, negative=negative, vae=tiny_vae, pixels=pixels, mask=mask)
    new_positive, new_negative, latent = execute(InpaintModelConditioning, ctx, **inputs, noise_mask=True)

    # the mask is resized to 20 × 27 pixels, then both are cropped to 16 × 24 from (2, 1)
    resized = F.interpolate(mask[:, None], size=(20, 27), mode="bilinear")[..., 2:18, 1:25]
    greyed = torch.where(resized.movedim(1, -1).round() == 1, 0.5, pixels[:, 2:18, 1:25])
    concat = service.encode(tiny_vae, greyed, manager)
    for conditioning, original in ((new_positive, positive), (new_negative, negative)):
        (cond, options), (original_cond, original_options) = conditioning[0], original[0]
        assert cond is original_cond and options is not original_options
        assert (options["concat_latent_image"] - concat).abs().max() <= 1e-5
        assert torch.equal(options["concat_mask"], resized)
        assert "concat_mask" not in original_options
    assert "pooled_output" in new_positive[0][1]
    assert torch.equal(latent["samples"], service.encode(tiny_vae, pixels, manager))
    assert torch.equal(latent["noise_mask"], resized)
    without = execute(InpaintModelConditioning, ctx, **inputs, noise_mask=False)[2]
    assert without.keys() == {"samples"}
