"""The noise samplers add along the way, drawn as ComfyUI draws it.

- Ancestral samplers, ddpm and lcm: a `torch.Generator` on x's device seeded from the run's seed
  (plus one on the CPU, so that it differs from the initial noise drawn there with the same
  seed), one `randn` of x's shape per call.
- SDE samplers: a torchsde Brownian tree over [smallest nonzero σ, largest σ], one tree over the
  whole batch tensor, seeded with the run's seed; a step from σ to σ_next takes the tree's
  increment over that interval divided by √|σ_next - σ|. The tree lives on the CPU, or on x's
  device for the `_gpu` samplers.
"""

from __future__ import annotations

import warnings

import torch
import torchsde

from diffusion.samplers.base import NoiseSampler, SamplerOptions

SEED_SPACE = 2**64

# the tree rounds its ends, so queries at exactly the largest or smallest sigma fall a hair outside
# and torchsde warns (then clamps them, which is what is wanted)
warnings.filterwarnings("ignore", message=r"Should have (ta|tb)", category=UserWarning, module=r"torchsde\.")


def gaussian(x: torch.Tensor, options: SamplerOptions) -> NoiseSampler:
    """Fresh seeded Gaussian noise for each call (options.noise_sampler when given)."""
    if options.noise_sampler is not None:
        return options.noise_sampler
    generator = None
    if options.seed is not None:
        generator = torch.Generator(device=x.device)
        generator.manual_seed((options.seed + 1) % SEED_SPACE if x.device.type == "cpu" else options.seed)

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, dtype=x.dtype, layout=x.layout, device=x.device, generator=generator)

    return sample


def brownian(x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions, on_device: bool = False) -> NoiseSampler:
    """Brownian-tree noise over the range of `sigmas` (options.noise_sampler when given)."""
    if options.noise_sampler is not None:
        return options.noise_sampler
    return BrownianNoise(x, sigmas, options.seed, x.device if on_device else torch.device("cpu"))


class BrownianNoise:
    """Increments of one Brownian motion W(σ), normalised to unit variance."""

    def __init__(self, x: torch.Tensor, sigmas: torch.Tensor, seed: int | None, device: torch.device) -> None:
        self.device = device
        low, high = sigmas[sigmas > 0].min(), sigmas.max()
        w0 = torch.zeros_like(x, device=device)
        self.tree = torchsde.BrownianTree(low.detach().to(device), w0, high.detach().to(device), entropy=seed)

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        sigma, sigma_next = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        low, high = (sigma_next, sigma) if sigma_next < sigma else (sigma, sigma_next)
        w = self.tree(low.detach().to(self.device, torch.float32), high.detach().to(self.device, torch.float32))
        if sigma_next < sigma:
            w = -w
        return w.to(sigma.device, sigma.dtype) / (sigma_next - sigma).abs().sqrt()
