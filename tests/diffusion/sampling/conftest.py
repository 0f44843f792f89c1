"""A deterministic toy denoiser and a starting latent for the sampler tests."""

from __future__ import annotations

import pytest
import torch

from diffusion.schedules import DiscreteSchedule


def toy_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A smooth, nonlinear stand-in for a UNet: shrinks x towards a pattern more as σ grows."""
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    pattern = torch.linspace(-1, 1, x.shape[-1], dtype=x.dtype, device=x.device)
    return (0.8 * x + 0.3 * torch.tanh(2 * x)) / (1 + s**2) + pattern * s**2 / (1 + s**2)


class CountingDenoiser:
    """toy_denoiser that counts its calls and records the sigmas it was called at."""

    def __init__(self) -> None:
        self.sigmas: list[float] = []

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        assert sigma.shape == (x.shape[0],)
        self.sigmas.append(float(sigma[0]))
        return toy_denoiser(x, sigma)


@pytest.fixture(scope="session")
def schedule() -> DiscreteSchedule:
    return DiscreteSchedule()


@pytest.fixture
def noise() -> torch.Tensor:
    """Unit noise shaped like a small latent batch."""
    return torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(1234))
