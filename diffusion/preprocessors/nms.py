"""Batched non-maximum suppression in plain torch, for Segment Anything's mask generator where
torchvision's compiled ops are missing (PyPI's CUDA torchvision beside a CPU torch cannot load
them; see `diffusion.torchvision_compat`). Same results as `torchvision.ops.batched_nms`."""

from __future__ import annotations

import torch
from torchvision.extension import _has_ops
from torchvision.ops.boxes import box_iou


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes (x1, y1, x2, y2) kept, by decreasing score: a box is dropped when it
    overlaps a kept box of the same category (`idxs`) by more than `iou_threshold` (IoU)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # boxes of different categories are moved apart so that they never overlap
    apart = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    order = scores.argsort(descending=True)
    overlaps = box_iou(apart[order], apart[order]) > iou_threshold
    dropped = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    kept = []
    for rank in range(len(order)):
        if not dropped[rank]:
            kept.append(rank)
            dropped |= overlaps[rank]
    return order[torch.tensor(kept, device=boxes.device)]


def use_where_needed() -> None:
    """Let controlnet-aux's SAM mask generator use `batched_nms` when torchvision's ops cannot load."""
    if not _has_ops():
        from controlnet_aux.segment_anything import automatic_mask_generator

        automatic_mask_generator.batched_nms = batched_nms
