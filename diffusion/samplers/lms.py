"""Linear multistep (order 4): the ODE slope interpolated through the last steps' slopes."""

from __future__ import annotations

import numpy as np
import torch
from numpy.polynomial import Polynomial

from diffusion.samplers.base import Denoiser, SamplerOptions, denoise, to_d

ORDER = 4


def lms_coefficients(sigmas: np.ndarray, i: int, order: int) -> list[float]:
    """Weights of the slopes at sigmas[i], sigmas[i-1], ... for the step sigmas[i] → sigmas[i+1]:
    the exact integrals over that step of the Lagrange basis polynomials through those sigmas."""
    nodes = sigmas[i - order + 1 : i + 1][::-1]
    weights = []
    for j, node in enumerate(nodes):
        basis = Polynomial([1.0])
        for other in np.delete(nodes, j):
            basis = basis * Polynomial([-other, 1.0]) / (node - other)
        antiderivative = basis.integ()
        weights.append(float(antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i])))
    return weights


def sample_lms(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """Adams–Bashforth-style multistep in σ with up to 4 past slopes (fewer at the start)."""
    nodes = sigmas.detach().cpu().double().numpy()
    slopes: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = denoise(model, x, sigmas[i])
        slopes = [*slopes[-(ORDER - 1) :], to_d(x, sigmas[i], denoised)]
        options.report(i, x, denoised)
        weights = lms_coefficients(nodes, i, len(slopes))
        x = x + sum(w * d for w, d in zip(weights, reversed(slopes)))
    return x
