"""Conditioning entries prepared for one sampling run.

A CONDITIONING value is a list of [cross-attention tensor, options] entries, as in ComfyUI. Before
sampling each entry is resolved against the latent being sampled: its area (latent pixels, or
fractions of the image), mask (resized to the latent), strength, timestep range (as sigmas), SDXL
added conditions (an entry without a size gets the image's: the latent's size × 8, as in ComfyUI)
and, for inpainting models, the mask and masked-image channels. The denoiser then only does
arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from diffusion.families import Family
from diffusion.schedules import DiscreteSchedule
from diffusion.sdxl_conditions import added_conditions

#: latent pixels over which an area's edges fade in (when it has no mask)
AREA_FEATHER = 8
#: image pixels per latent pixel (ComfyUI assumes 8 for every model when it fills in SDXL sizes)
LATENT_FACTOR = 8


@dataclass(eq=False)
class Entry:
    """One conditioning entry ready for the denoiser."""

    cross: torch.Tensor
    #: (height, width, y, x) in latent pixels, or None for the whole latent
    area: tuple[int, int, int, int] | None = None
    strength: float = 1.0
    #: [B or 1, H, W] at latent resolution, already multiplied by its mask strength
    mask: torch.Tensor | None = None
    #: the entry is used while sigma_end <= sigma <= sigma_start
    sigma_start: float = float("inf")
    sigma_end: float = 0.0
    #: SDXL's text_embeds and time_ids
    added: dict[str, torch.Tensor] | None = None
    #: extra input channels of inpainting models (mask + masked image), whole-latent size
    concat: torch.Tensor | None = None
    #: a model patch carried by the conditioning (e.g. a ControlNet): see `denoiser.UnetExtras`
    control: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def active(self, sigma: float) -> bool:
        return self.sigma_end <= sigma <= self.sigma_start


def prepare(
    conditioning: Sequence[Sequence[Any]],
    family: Family,
    schedule: DiscreteSchedule,
    latent_shape: torch.Size,
    *,
    negative: bool = False,
    latent_image: torch.Tensor | None = None,
    denoise_mask: torch.Tensor | None = None,
) -> list[Entry]:
    """Resolve a CONDITIONING list for sampling a latent of `latent_shape` (model space)."""
    height, width = latent_shape[-2:]
    entries = []
    for cross, options in conditioning:
        area = _area(options.get("area"), height, width)
        mask = options.get("mask")
        if mask is not None:
            mask = _resize(mask if mask.ndim == 3 else mask[None], height, width) * options.get("mask_strength", 1.0)
            if options.get("set_area_to_bounds"):
                area = _bounds(mask)
        entry = Entry(
            cross=cross,
            area=area,
            strength=options.get("strength", 1.0),
            mask=mask,
            sigma_start=schedule.percent_to_sigma(options["start_percent"]) if "start_percent" in options else float("inf"),
            sigma_end=schedule.percent_to_sigma(options["end_percent"]) if "end_percent" in options else 0.0,
            control=_for_run(options.get("control"), schedule, latent_shape),
            options=options,
        )
        if family.adm is not None:
            size = (width * LATENT_FACTOR, height * LATENT_FACTOR)
            entry.added = added_conditions(options, size, refiner=family.adm == "sdxl_refiner", negative=negative)
        if family.inpaint:
            entry.concat = _inpaint_channels(options, family, latent_shape, latent_image, denoise_mask)
        entries.append(entry)
    return entries


def _for_run(control: Any, schedule: DiscreteSchedule, latent_shape: torch.Size) -> Any:
    """An entry's control patch made ready for this run: a patch that needs the run's noise
    schedule and latent size (a ControlNet's step window, its hint's batch) has `for_run`."""
    for_run = getattr(control, "for_run", None)
    return control if for_run is None else for_run(schedule, latent_shape)


def _area(area: Any, height: int, width: int) -> tuple[int, int, int, int] | None:
    if area is None:
        return None
    if area[0] == "percentage":
        _, h, w, y, x = area
        return max(1, round(h * height)), max(1, round(w * width)), round(y * height), round(x * width)
    return tuple(int(v) for v in area)  # type: ignore[return-value]


def _resize(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if mask.shape[-2:] == (height, width):
        return mask.float()
    return F.interpolate(mask[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]


def _bounds(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The bounding box (height, width, y, x) of the mask's nonzero pixels over the batch."""
    rows = torch.nonzero(mask.abs().amax(dim=(0, 2)) > 0)
    cols = torch.nonzero(mask.abs().amax(dim=(0, 1)) > 0)
    if len(rows) == 0:
        return None
    y0, y1, x0, x1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    return y1 - y0 + 1, x1 - x0 + 1, y0, x0


def _inpaint_channels(
    options: dict[str, Any],
    family: Family,
    latent_shape: torch.Size,
    latent_image: torch.Tensor | None,
    denoise_mask: torch.Tensor | None,
) -> torch.Tensor:
    """[B, 1 + C, H, W]: the region to paint and the masked image's latent, as inpainting UNets take.

    InpaintModelConditioning sets `concat_latent_image` (unscaled) and `concat_mask`; otherwise the
    sampled latent and its noise mask are used; with neither, everything is to be painted.
    """
    batch, channels, height, width = latent_shape
    image = options.get("concat_latent_image")
    image = image * family.latent_scale if image is not None else latent_image
    mask = options.get("concat_mask", denoise_mask)
    if image is None:
        image = torch.zeros(batch, channels, height, width)
    if image.shape[-2:] != (height, width):
        image = F.interpolate(image.float(), size=(height, width), mode="bilinear", align_corners=False)
    if mask is None:
        mask = torch.ones(batch, 1, height, width)
    else:
        mask = mask.float().reshape(-1, 1, *mask.shape[-2:])[:, :1]
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False).round()
    return torch.cat([_to_batch(mask, batch), _to_batch(image.float(), batch)], dim=1)


def _to_batch(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    if tensor.shape[0] == batch:
        return tensor
    return tensor.repeat(-(-batch // tensor.shape[0]), *[1] * (tensor.ndim - 1))[:batch]
