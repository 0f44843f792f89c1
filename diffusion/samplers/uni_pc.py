"""UniPC (Zhao et al. 2023): a multistep predictor (UniP) and corrector (UniC) with data
prediction, order 3 with lower orders while the history fills up and over the final steps.

The paper's update is stated for the variance-preserving x/√(1+σ²) with α = 1/√(1+σ²); divided
by α it becomes the σ-form used here, x_t = (σ_t/σ_s)·x_s - (e^{-h} - 1)·D_s - B(h)·Σ ρ·ΔD, with
h = λ_t - λ_s and λ = -log σ. A final σ of 0 is replaced by 0.001 (λ must stay finite).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import torch

from diffusion.samplers.base import Denoiser, SamplerOptions, denoise

#: the noise level that stands in for a final σ of 0
FINAL_SIGMA = 0.001
MAX_ORDER = 3


def sample_uni_pc(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions, variant: Literal["bh1", "bh2"] = "bh1") -> torch.Tensor:
    """UniPC-3 with B(h) = h (bh1) or e^h - 1 (bh2), h here the step in λ taken backwards as data
    prediction does; the corrector follows every step but the last, reusing the model call the
    next step needs."""
    if len(sigmas) <= 1:
        return x
    sigmas = sigmas.clone()
    if sigmas[-1] == 0:
        sigmas[-1] = FINAL_SIGMA
    lambdas = [-math.log(s) for s in sigmas.tolist()]
    steps = len(sigmas) - 1
    order = max(1, min(MAX_ORDER, steps - 1))
    denoised = denoise(model, x, sigmas[0])
    history = [(lambdas[0], denoised)]  # (λ, D at λ), oldest first, at most `order` long
    for i in range(steps):
        options.report(i, x, denoised)
        step_order = min(order, steps - i, len(history))
        coefficients = _Coefficients(history, lambdas[i + 1], step_order, variant)
        base = sigmas[i + 1] / sigmas[i] * x - coefficients.phi_1 * denoised
        x_pred = base - coefficients.b_h * _weighted(coefficients.predictor, coefficients.slopes)
        if i == steps - 1:
            return x_pred
        denoised = denoise(model, x_pred, sigmas[i + 1])
        corrector = coefficients.corrector
        x = base - coefficients.b_h * (_weighted(corrector[:-1], coefficients.slopes) + corrector[-1] * (denoised - history[-1][1]))
        history = [*history, (lambdas[i + 1], denoised)][-order:]
    return x


class _Coefficients:
    """The scalar weights of one UniPC step of order p from the newest history entry to λ_t."""

    def __init__(self, history: list[tuple[float, torch.Tensor]], lambda_t: float, p: int, variant: str) -> None:
        lambda_s, newest = history[-1]
        h = lambda_t - lambda_s
        hh = -h
        self.phi_1 = math.expm1(hh)
        self.b_h = hh if variant == "bh1" else math.expm1(hh)
        previous = history[-p:-1][::-1]  # the p - 1 entries before the newest, newest first
        ratios = [(lam - lambda_s) / h for lam, _ in previous]
        self.slopes = [(d - newest) / r for (_, d), r in zip(previous, ratios)]
        nodes = torch.tensor(ratios + [1.0], dtype=torch.float64)
        rows, rhs = [], []
        phi_k, factorial = self.phi_1 / hh - 1, 1
        for k in range(1, p + 1):
            rows.append(nodes ** (k - 1))
            rhs.append(phi_k * factorial / self.b_h)
            factorial *= k + 1
            phi_k = phi_k / hh - 1 / factorial
        matrix, b = torch.stack(rows), torch.tensor(rhs, dtype=torch.float64)
        # UniPC fixes the weight at 1/2 for a 2nd-order predictor and a 1st-order corrector
        if p == 1:
            self.predictor, self.corrector = [], [0.5]
        else:
            self.predictor = [0.5] if p == 2 else torch.linalg.solve(matrix[:-1, :-1], b[:-1]).tolist()
            self.corrector = torch.linalg.solve(matrix, b).tolist()


def _weighted(weights: list[float], slopes: list[torch.Tensor]) -> torch.Tensor | float:
    return sum((w * s for w, s in zip(weights, slopes)), 0.0)


sample_uni_pc_bh2 = partial(sample_uni_pc, variant="bh2")
