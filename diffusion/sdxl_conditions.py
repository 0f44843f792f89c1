"""SDXL's added conditions (pooled text embedding and size/crop/aesthetic time ids) for diffusers' UNet.

Defaults are ComfyUI's (samplers.py `encode_model_conds`): a plain CLIPTextEncode entry has no
sizes, so it is given the size of the image being sampled (the latent's size × 8); the base model
then sees that size, crop (0, 0) and that size as target; the refiner sees that size, crop (0, 0)
and an aesthetic score of 6.0, or 2.5 for a negative prompt.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

AESTHETIC_SCORE = 6.0
NEGATIVE_AESTHETIC_SCORE = 2.5


def time_ids(
    entry: Mapping[str, Any], size: tuple[int, int], *, refiner: bool = False, negative: bool = False
) -> list[float]:
    """The micro-conditioning values of a conditioning entry, in the order the UNet embeds them;
    `size` (width, height) is the image size used where the entry has none."""
    width = entry.get("width", size[0])
    height = entry.get("height", size[1])
    values = [height, width, entry.get("crop_h", 0), entry.get("crop_w", 0)]
    if refiner:
        values.append(entry.get("aesthetic_score", NEGATIVE_AESTHETIC_SCORE if negative else AESTHETIC_SCORE))
    else:
        values += [entry.get("target_height", height), entry.get("target_width", width)]
    return [float(v) for v in values]


def added_conditions(
    entry: Mapping[str, Any],
    size: tuple[int, int],
    *,
    refiner: bool = False,
    negative: bool = False,
) -> dict[str, torch.Tensor]:
    """`added_cond_kwargs` for UNet2DConditionModel: text_embeds [B, d], time_ids [B, 6] (refiner [B, 5]).

    `entry` is a conditioning entry's dict (pooled_output, and optionally width, height, crop_w,
    crop_h, target_width, target_height, aesthetic_score); `size` (width, height) stands in for a
    missing width and height; `negative` marks the negative prompt.
    """
    pooled = entry.get("pooled_output")
    if pooled is None:
        raise ValueError("SDXL conditioning needs a pooled_output")
    values = time_ids(entry, size, refiner=refiner, negative=negative)
    ids = torch.tensor([values], dtype=torch.float32, device=pooled.device).repeat(pooled.shape[0], 1)
    return {"text_embeds": pooled, "time_ids": ids}
