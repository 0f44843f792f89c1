"""DPM-Solver (Lu et al. 2022) in noise form over t = -log σ: fixed orders on a uniform grid
(dpm_fast) or an embedded 2nd/3rd-order pair with step-size control (dpm_adaptive).

Both run from sigmas[0] to the last nonzero sigma and, as ComfyUI's do, return x at that noise
level rather than denoising it further.
"""

from __future__ import annotations

import math

import torch

from diffusion.samplers.base import Denoiser, SamplerOptions, denoise, half_log_snr

#: dpm_adaptive's tolerances and first step (in t)
RTOL, ATOL, H_INIT = 0.05, 0.0078, 0.05
#: the controller's acceptance threshold on its step factor, and its error floor
ACCEPT_SAFETY, ERROR_EPS = 0.81, 1e-8
#: order of the accepted (higher-order) solution of dpm_adaptive
ADAPTIVE_ORDER = 3


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return t.neg().exp()


class _Step:
    """One DPM-Solver step from (x, t) to t_next; ε = (x - D)/σ at each intermediate point is
    computed once and shared between orders."""

    def __init__(self, model: Denoiser, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> None:
        self.model, self.x, self.t, self.t_next = model, x, t, t_next
        self.h = t_next - t
        self.denoised = denoise(model, x, _sigma(t))
        self.eps = (x - self.denoised) / _sigma(t)
        self._stage_eps: dict[float, torch.Tensor] = {}

    def _eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x - denoise(self.model, x, _sigma(t))) / _sigma(t)

    def _eps_at(self, r1: float) -> torch.Tensor:
        """ε at the first-order point at t + r1·h."""
        if r1 not in self._stage_eps:
            s1 = self.t + r1 * self.h
            u1 = self.x - _sigma(s1) * (r1 * self.h).expm1() * self.eps
            self._stage_eps[r1] = self._eps(u1, s1)
        return self._stage_eps[r1]

    def order1(self) -> torch.Tensor:
        return self.x - _sigma(self.t_next) * self.h.expm1() * self.eps

    def order2(self, r1: float = 1 / 2) -> torch.Tensor:
        eps_r1 = self._eps_at(r1)
        return self.order1() - _sigma(self.t_next) / (2 * r1) * self.h.expm1() * (eps_r1 - self.eps)

    def order3(self, r1: float = 1 / 3, r2: float = 2 / 3) -> torch.Tensor:
        x, h, eps = self.x, self.h, self.eps
        eps_r1 = self._eps_at(r1)
        s2 = self.t + r2 * h
        u2 = x - _sigma(s2) * (r2 * h).expm1() * eps - _sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps)
        eps_r2 = self._eps(u2, s2)
        return self.order1() - _sigma(self.t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)

    def solve(self, order: int) -> torch.Tensor:
        return (self.order1, self.order2, self.order3)[order - 1]()


def _span(sigmas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """t at sigmas[0] and at the last nonzero sigma."""
    sigma_end = sigmas[-1] if sigmas[-1] > 0 else sigmas[-2]
    return half_log_snr(sigmas[0]), half_log_snr(sigma_end)


def fast_orders(nfe: int) -> list[int]:
    """dpm_fast's step orders: third order, ending on lower orders, using exactly nfe model calls."""
    steps = nfe // 3 + 1
    if nfe % 3 == 0:
        return [3] * (steps - 2) + [2, 1]
    return [3] * (steps - 1) + [nfe % 3]


def sample_dpm_fast(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """DPM-Solver-fast: len(sigmas) - 1 model calls over steps evenly spaced in t, one
    callback per solver step (fewer than the sigma steps)."""
    if len(sigmas) <= 1:
        return x
    t_start, t_end = _span(sigmas)
    orders = fast_orders(len(sigmas) - 1)
    ts = torch.linspace(t_start, t_end, len(orders) + 1, dtype=sigmas.dtype, device=x.device)
    for i, order in enumerate(orders):
        step = _Step(model, x, ts[i], ts[i + 1])
        options.report(i, x, step.denoised)
        x = step.solve(order)
    return x


def sample_dpm_adaptive(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, options: SamplerOptions) -> torch.Tensor:
    """DPM-Solver-23 with step-size control: each step's 2nd-order (r1 = 1/3) and 3rd-order
    solutions share their model calls; their scaled RMS difference drives the step size, and the
    3rd-order one is kept. One callback per accepted step."""
    if len(sigmas) <= 1:
        return x
    t, t_end = _span(sigmas)
    controller = _StepSize(H_INIT)
    x_prev, accepted = x, 0
    while t < t_end - 1e-5:
        t_next = torch.minimum(t_end, t + controller.h)
        step = _Step(model, x, t, t_next)
        x_low, x_high = step.order2(r1=1 / 3), step.order3()
        scale = torch.clamp(RTOL * torch.maximum(x_low.abs(), x_prev.abs()), min=ATOL)
        error = float(torch.linalg.norm((x_low - x_high) / scale) / x.numel() ** 0.5)
        if controller.accept(error):
            options.report(accepted, x, step.denoised)
            accepted += 1
            x_prev, x, t = x_low, x_high, t_next
    return x


class _StepSize:
    """Integral-only step-size control: the step is scaled by the limited factor
    1 + atan(f - 1), f = (1/error)^(1/order), and the step is accepted when that is ≥ 0.81."""

    def __init__(self, h: float) -> None:
        self.h = h

    def accept(self, error: float) -> bool:
        if not math.isfinite(error):
            raise FloatingPointError("dpm_adaptive: the error estimate is not finite")
        factor = 1 + math.atan((1 / (error + ERROR_EPS)) ** (1 / ADAPTIVE_ORDER) - 1)
        self.h *= factor
        return factor >= ACCEPT_SAFETY
