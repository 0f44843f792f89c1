"""The denoiser D(x, σ): noisy latent → estimate of the clean latent, with classifier-free guidance.

x is in the "variance exploding" form samplers use (x = x0 + σ·ε). Every active conditioning
entry (positive and negative) predicts over its area, weighted by its mask, strength and edge
feathering; predictions of one side are averaged by those weights, and guidance combines the
two sides on the denoised estimates: uncond + (cond - uncond)·cfg. With cfg = 1 the negative
side is never computed. Entries that fit together (same region size, same conditioning sizes, same
patch) go through the UNet in one batch, so the usual cond + uncond pair costs one call.

The UNet sees x/√(σ²+1) (plus the inpainting channels) at the nearest training timestep; an eps
model's output ε gives x - σε, a v model's v gives x/(σ²+1) - vσ/√(σ²+1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from diffusers import UNet2DConditionModel

from diffusion.conditioning import AREA_FEATHER, Entry
from diffusion.families import Prediction
from diffusion.schedules import DiscreteSchedule

#: cross-attention inputs of different lengths are batched by repetition up to this ratio
MAX_REPEAT = 4


class UnetExtras(Protocol):
    """A patch carried by conditioning (under `control`), e.g. a ControlNet: given a UNet batch's
    inputs it returns extra UNet keyword arguments (such as residuals) for that batch."""

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor, sigma: torch.Tensor, cross: torch.Tensor, added: dict[str, torch.Tensor] | None) -> dict[str, Any]: ...


def denoised_from(prediction: Prediction, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The clean-latent estimate from a UNet output (σ broadcast as [B, 1, 1, 1])."""
    if prediction == "v":
        return x / (sigma**2 + 1) - output * sigma / (sigma**2 + 1).sqrt()
    return x - output * sigma


@dataclass(eq=False)
class _Job:
    """One entry's share of a call: which side, the region and its weights."""

    side: int  # 0 positive, 1 negative
    entry: Entry
    rows: slice
    cols: slice
    mult: torch.Tensor


class Denoiser:
    """D(x, σ) for one sampling run; call with x [B, C, H, W] and σ [B]."""

    def __init__(
        self,
        unet: UNet2DConditionModel,
        prediction: Prediction,
        schedule: DiscreteSchedule,
        positive: list[Entry],
        negative: list[Entry],
        cfg: float,
    ) -> None:
        self.unet = unet
        self.prediction = prediction
        self.schedule = schedule
        self.positive = positive
        self.negative = [] if math.isclose(cfg, 1.0) else negative
        self.cfg = cfg
        self.dtype = next(unet.parameters()).dtype

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        level = float(sigma.reshape(-1)[0])
        jobs = [job for side, entries in enumerate((self.positive, self.negative)) for e in entries
                if e.active(level) and (job := self._job(side, e, x)) is not None]
        totals = [torch.zeros_like(x) for _ in range(2)]
        weights = [torch.full_like(x, 1e-37) for _ in range(2)]
        for batch in _batches(jobs):
            for job, denoised in zip(batch, self._run(batch, x, sigma)):
                region = (slice(None), slice(None), job.rows, job.cols)
                totals[job.side][region] += denoised * job.mult
                weights[job.side][region] += job.mult
        cond = totals[0] / weights[0]
        if not self.negative:
            return cond
        uncond = totals[1] / weights[1]
        return uncond + (cond - uncond) * self.cfg

    def _job(self, side: int, entry: Entry, x: torch.Tensor) -> _Job | None:
        """The entry's region and weights; None when its area lies outside the latent."""
        batch, channels, height, width = x.shape
        rows, cols = slice(0, height), slice(0, width)
        if entry.area is not None:
            h, w, y, x0 = entry.area
            if y >= height or x0 >= width:
                return None
            rows = slice(y, y + min(h, height - y))
            cols = slice(x0, x0 + min(w, width - x0))
        size = (rows.stop - rows.start, cols.stop - cols.start)
        if entry.mask is not None:
            mask = entry.mask[:batch, rows, cols].to(x)
            mult = mask[:, None].expand(batch, channels, *size) * entry.strength
        else:
            mult = torch.full((batch, channels, *size), entry.strength, dtype=x.dtype, device=x.device)
            if entry.area is not None:
                _feather(mult, rows, cols, height, width)
        return _Job(side, entry, rows, cols, mult)

    def _run(self, jobs: list[_Job], x: torch.Tensor, sigma: torch.Tensor) -> list[torch.Tensor]:
        """One UNet call for jobs that fit together; their denoised regions, in order."""
        batch = x.shape[0]
        xs = torch.cat([x[:, :, j.rows, j.cols] for j in jobs])
        sigmas = sigma.reshape(-1).repeat(len(jobs)).to(x)
        s = sigmas.reshape(-1, 1, 1, 1)
        sample = xs / (s**2 + 1).sqrt()
        concat = [j.entry.concat for j in jobs]
        if concat[0] is not None:
            parts = [c[:batch, :, j.rows, j.cols].to(x) for c, j in zip(concat, jobs)]
            sample = torch.cat([sample, torch.cat(parts)], dim=1)
        cross = _same_length([j.entry.cross for j in jobs])
        cross = torch.cat([c.to(x.device).expand(batch, *c.shape[1:]) for c in cross])
        timestep = self.schedule.timestep(sigmas.cpu()).to(x.device)
        kwargs: dict[str, Any] = {}
        if jobs[0].entry.added is not None:
            kwargs["added_cond_kwargs"] = {
                key: torch.cat([j.entry.added[key].to(x.device).expand(batch, -1) for j in jobs]).to(self.dtype) for key in ("text_embeds", "time_ids")
            }
        if jobs[0].entry.control is not None:
            kwargs.update(jobs[0].entry.control(sample, timestep, sigmas, cross, kwargs.get("added_cond_kwargs")))
        output = self.unet(sample.to(self.dtype), timestep, encoder_hidden_states=cross.to(self.dtype), return_dict=False, **kwargs)[0]
        denoised = denoised_from(self.prediction, s, output.float(), xs)
        return list(denoised.split(batch))


def _feather(mult: torch.Tensor, rows: slice, cols: slice, height: int, width: int) -> None:
    """Fade an area's weights in over AREA_FEATHER latent pixels on sides inside the latent."""
    ramp = (torch.arange(AREA_FEATHER, dtype=mult.dtype, device=mult.device) + 1) / AREA_FEATHER
    for dim, span, size in ((2, rows, height), (3, cols, width)):
        extent = mult.shape[dim]
        n = min(AREA_FEATHER, extent)
        shape = [1, 1, 1, 1]
        shape[dim] = n
        if span.start != 0:
            mult.narrow(dim, 0, n).mul_(ramp[:n].reshape(shape))
        if span.stop < size:
            mult.narrow(dim, extent - n, n).mul_(ramp[:n].flip(0).reshape(shape))


def _batches(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs grouped so that each group can be one UNet call."""
    groups: dict[tuple, list[_Job]] = {}
    for job in jobs:
        entry = job.entry
        key = (
            job.rows.stop - job.rows.start,
            job.cols.stop - job.cols.start,
            entry.added is None,
            None if entry.concat is None else entry.concat.shape[1],
            id(entry.control),
        )
        groups.setdefault(key, []).append(job)
    out = []
    for group in groups.values():
        lengths = {j.entry.cross.shape[1] for j in group}
        if math.lcm(*lengths) <= MAX_REPEAT * min(lengths):
            out.append(group)
        else:
            out.extend([j for j in group if j.entry.cross.shape[1] == n] for n in sorted(lengths))
    return out


def _same_length(crosses: list[torch.Tensor]) -> list[torch.Tensor]:
    """Cross-attention inputs repeated along the token axis to a common length (attention over a
    repeated sequence gives exactly the same result)."""
    length = math.lcm(*(c.shape[1] for c in crosses))
    return [c.repeat(1, length // c.shape[1], 1) for c in crosses]
