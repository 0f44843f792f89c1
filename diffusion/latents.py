"""Operations on latent samples `[B, C, H, W]`: spherical bilinear resizing and feathered pasting.

Sizes and positions here are in latent pixels (one latent pixel is 8 image pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: |cos| this close to 1 counts as parallel (or opposite) vectors, where slerp is undefined
PARALLEL = 1e-5


def slerp(v1: torch.Tensor, v2: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Interpolate vectors `[N, C]` by `ratio` `[N, 1]`: the directions spherically, the lengths linearly.

    A zero vector has no direction (it contributes nothing to the direction); nearly parallel
    vectors give `v1`, nearly opposite ones the plain linear interpolation.
    """
    norm1, norm2 = v1.norm(dim=-1, keepdim=True), v2.norm(dim=-1, keepdim=True)
    unit1 = torch.where(norm1 == 0, 0.0, v1 / norm1)
    unit2 = torch.where(norm2 == 0, 0.0, v2 / norm2)
    cos = (unit1 * unit2).sum(-1, keepdim=True)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    direction = torch.sin((1.0 - ratio) * omega) / sin * unit1 + torch.sin(ratio * omega) / sin * unit2
    result = direction * (norm1 * (1.0 - ratio) + norm2 * ratio)
    result = torch.where(cos < PARALLEL - 1, v1 * (1.0 - ratio) + v2 * ratio, result)
    return torch.where(cos > 1 - PARALLEL, v1, result)


def _source_positions(old: int, new: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear resampling of `old` → `new` positions: the lower and upper source index of each new
    position and the ratio between them, exactly where `F.interpolate(mode="bilinear")` samples."""
    position = F.interpolate(torch.arange(old, dtype=torch.float32).reshape(1, 1, 1, -1), size=(1, new), mode="bilinear").flatten()
    lower = position.floor()
    return lower.long(), (lower.long() + 1).clamp(max=old - 1), position - lower


def _slerp_last_axis(samples: torch.Tensor, size: int) -> torch.Tensor:
    """Resize `[B, C, H, W]` along W, slerping between neighbouring channel vectors."""
    batch, channels, height, _ = samples.shape
    lower, upper, ratio = _source_positions(samples.shape[-1], size)
    vectors = samples.movedim(1, -1)  # [B, H, W, C]
    result = slerp(
        vectors[:, :, lower].reshape(-1, channels),
        vectors[:, :, upper].reshape(-1, channels),
        ratio.to(samples.device).repeat(batch * height).unsqueeze(1),
    )
    return result.reshape(batch, height, size, channels).movedim(-1, 1)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize latents `[B, C, H, W]` like bilinear interpolation, but each interpolation between two
    latent vectors (along the channel axis) is a `slerp`: first along the width, then the height."""
    resized = _slerp_last_axis(samples.float(), width)
    resized = _slerp_last_axis(resized.transpose(-1, -2), height).transpose(-1, -2)
    return resized.to(samples.dtype)


def feather_mask(height: int, width: int, feather: int, inner: tuple[bool, bool, bool, bool]) -> torch.Tensor:
    """Weights `[height, width]` of a pasted patch: 1, falling to 1/feather over `feather` pixels
    next to the sides marked `inner` (top, bottom, left, right) — the sides inside the destination."""
    top, bottom, left, right = inner

    def axis(size: int, start: bool, end: bool) -> torch.Tensor:
        weight = torch.ones(size)
        count = min(feather, size)
        rise = torch.arange(1, count + 1) / feather
        if start:
            weight[:count] *= rise
        if end:
            weight[size - count :] *= rise.flip(0)
        return weight

    return axis(height, top, bottom)[:, None] * axis(width, left, right)[None, :]


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, feather: int = 0) -> torch.Tensor:
    """Paste `source` onto a copy of `destination` with its top-left corner at (x, y), clipped to the
    destination; with `feather`, the source fades out linearly over that many pixels along its sides
    that lie inside the destination."""
    out = destination.clone()
    patch = source[..., : max(0, out.shape[-2] - y), : max(0, out.shape[-1] - x)].to(out)
    height, width = patch.shape[-2:]
    area = (..., slice(y, y + height), slice(x, x + width))
    if feather == 0:
        out[area] = patch
        return out
    inner = (y != 0, y + height < out.shape[-2], x != 0, x + width < out.shape[-1])
    weight = feather_mask(height, width, feather, inner).to(out)
    out[area] = patch * weight + out[area] * (1.0 - weight)
    return out
