"""ControlNets and T2I-Adapters applied while sampling: the `control` option of conditioning entries.

Apply ControlNet stores a `Control` in each entry's options; applying another over it keeps the
earlier one as `previous`, and their outputs add up, each with its own strength and window of the
sampling (start/end percent). Before a run, `conditioning.prepare` binds each control to it
(`for_run`): the window becomes noise levels through the model's schedule, as
ConditioningSetTimestepRange's does, and the latent batch size is known. The denoiser then calls
the bound control for every UNet batch of its entries (`denoiser.UnetExtras`) and hands what it
returns to the UNet, so neither the denoiser nor the samplers know about control models.

As in ComfyUI, the hint image is resized to the latent size × 8 (common upscale, nearest-exact,
centre crop; a T2I-Adapter's size is rounded up to its pixel-unshuffle block) and a hint batch is
cycled over the latent batch. A ControlNet sees the UNet's scaled sample (its first channels only
when an inpainting model adds mask and image channels), timestep, text conditioning and SDXL
added conditions; a T2I-Adapter's features are computed once per hint size and scaled by the
strength. The module is placed on the compute device by the model manager's `use`, which the
control carries as a function (`place`), keeping the manager itself out of conditioning values.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Sequence

import torch

from diffusion.conditioning import LATENT_FACTOR
from diffusion.controlnet import ControlModel
from diffusion.schedules import DiscreteSchedule

#: the model manager's `use`: a block in which the given modules sit on the compute device
Placement = Callable[..., ContextManager[torch.device]]
#: resizes a hint [B, C, H, W] to (width, height) pixels
Resize = Callable[[torch.Tensor, int, int], torch.Tensor]
#: the option under which the old ControlNetApply asks for its control on the negative side too
APPLY_TO_UNCOND = "control_apply_to_uncond"


@dataclass(frozen=True, eq=False)
class Control:
    """One ControlNet or T2I-Adapter applied to a conditioning, over the ones applied before it."""

    model: ControlModel
    #: [B, C, H, W], values 0..1
    hint: torch.Tensor
    strength: float
    start_percent: float
    end_percent: float
    place: Placement
    resize: Resize
    previous: Control | None = None
    _runs: weakref.WeakValueDictionary = field(default_factory=weakref.WeakValueDictionary, init=False, repr=False)

    def for_run(self, schedule: DiscreteSchedule, latent_shape: Sequence[int]) -> ControlRun:
        """This control bound to a sampling run: one object for every entry of the run carrying
        it, so that those entries still share UNet calls."""
        key = (id(schedule), tuple(latent_shape))
        run = self._runs.get(key)
        if run is None or run.schedule is not schedule:
            run = self._runs[key] = ControlRun(self, schedule, latent_shape)
        return run


class ControlRun:
    """A `Control` chain bound to one sampling run; the denoiser calls it for each UNet batch."""

    def __init__(self, control: Control, schedule: DiscreteSchedule, latent_shape: Sequence[int]) -> None:
        self.control = control
        self.schedule = schedule
        self.batch = latent_shape[0]
        self.sigma_start = schedule.percent_to_sigma(control.start_percent)
        self.sigma_end = schedule.percent_to_sigma(control.end_percent)
        self.previous = control.previous.for_run(schedule, latent_shape) if control.previous is not None else None
        #: resized hints and adapter features, by kind and size, on the compute device
        self._cache: dict[tuple, Any] = {}

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor, sigma: torch.Tensor, cross: torch.Tensor,
                 added: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        extras = self.previous(sample, timestep, sigma, cross, added) if self.previous is not None else {}
        if not self.sigma_end <= float(sigma.reshape(-1)[0]) <= self.sigma_start:
            return extras
        model = self.control.model
        with self.control.place(model.module):
            own = self._adapter(sample) if model.is_adapter else self._controlnet(sample, timestep, cross, added)
        return _merged(extras, own)

    def _controlnet(self, sample: torch.Tensor, timestep: torch.Tensor, cross: torch.Tensor, added: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        module = self.control.model.module
        config = module.config
        if cross.shape[-1] != config.cross_attention_dim:
            raise ValueError(f"{self.control.model.name} was made for another kind of model: it takes text conditioning "
                             f"{config.cross_attention_dim} wide, this model's is {cross.shape[-1]}")
        if added is not None and config.addition_embed_type == "text_time":
            _fit_size_embedding(module, added)
        x = sample[:, : config.in_channels]
        hint = _batched(self._hint(x, 1), self.batch, x.shape[0])
        down, mid = module(x.to(module.dtype), timestep, encoder_hidden_states=cross.to(module.dtype), controlnet_cond=hint.to(module.dtype),
                           conditioning_scale=self.control.strength, added_cond_kwargs=added, return_dict=False)
        return {"down_block_additional_residuals": tuple(down), "mid_block_additional_residual": mid}

    def _adapter(self, sample: torch.Tensor) -> dict[str, Any]:
        module = self.control.model.module
        key = ("features", *sample.shape[-2:])
        if key not in self._cache:
            hint = self._hint(sample, module.downscale_factor)
            if module.config.in_channels == 1 and hint.shape[1] > 1:
                hint = hint.mean(dim=1, keepdim=True)
            hint = hint if hint.shape[0] == 1 else _batched(hint, self.batch, self.batch)
            self._cache[key] = [f * self.control.strength for f in module(hint.to(module.dtype))]
        return {"down_intrablock_additional_residuals": [_batched(f, self.batch, sample.shape[0]) for f in self._cache[key]]}

    def _hint(self, sample: torch.Tensor, multiple: int) -> torch.Tensor:
        """The hint at the sample's size × 8 (rounded up to a multiple of `multiple`), on its device."""
        height, width = (-(-size * LATENT_FACTOR // multiple) * multiple for size in sample.shape[-2:])
        key = ("hint", height, width)
        if key not in self._cache:
            self._cache[key] = self.control.resize(self.control.hint.float(), width, height).to(sample.device)
        return self._cache[key]


def lend_to_uncond(positive: list[list[Any]], negative: list[list[Any]]) -> list[list[Any]]:
    """The negative conditioning with the controls the old ControlNetApply put on the positive one.

    ComfyUI's rule (`APPLY_TO_UNCOND`): unless a negative entry without an area has a control,
    each such positive entry's control goes to the negative entries without an area in turn.
    """
    lent = [o["control"] for _, o in positive if o.get(APPLY_TO_UNCOND) and "area" not in o and o.get("control") is not None]
    plain = [i for i, (_, o) in enumerate(negative) if "area" not in o]
    if not lent or not plain or any(negative[i][1].get("control") is not None for i in plain):
        return negative
    out = list(negative)
    for n, control in enumerate(lent):
        index = plain[n % len(plain)]
        out[index] = [negative[index][0], {**negative[index][1], "control": control}]
    return out


def _batched(tensor: torch.Tensor, batch: int, total: int) -> torch.Tensor:
    """`total` rows for a UNet call over entries × latent batch (ComfyUI's `broadcast_image_to`):
    one image serves every row; a batch is cycled over the latent batch, once per entry."""
    if tensor.shape[0] == 1:
        return tensor.expand(total, *tensor.shape[1:])
    per_latent = tensor.repeat(-(-batch // tensor.shape[0]), 1, 1, 1)[:batch]
    return per_latent.repeat(total // batch, 1, 1, 1)


def _merged(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two controls' UNet arguments added up (residual lists position by position)."""
    out = dict(first)
    for key, value in second.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, torch.Tensor):
            out[key] = out[key] + value
        else:
            a, b = list(out[key]), list(value)
            summed = [x + y for x, y in zip(a, b)] + (a if len(a) > len(b) else b)[min(len(a), len(b)) :]
            out[key] = type(value)(summed)
    return out


def _fit_size_embedding(module: torch.nn.Module, added: dict[str, torch.Tensor]) -> None:
    """An SDXL ControlNet file shows only the total width of its pooled-text and size embeddings;
    the size embeddings' width follows from the conditions the model gives it."""
    total = module.config.projection_class_embeddings_input_dim
    module.add_time_proj.num_channels = (total - added["text_embeds"].shape[-1]) // added["time_ids"].shape[-1]
