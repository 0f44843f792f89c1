"""Tiny stand-ins for DWPose's ONNX files, with the real input and output names and shapes and
the kinds of layers the real networks have (so OpenCV must run those): YOLOX (`images`
[1, 3, 640, 640] → `output` [1, 8400, 85]) and RTMPose (`input` [1, 3, H, W] → `simcc_x`
[1, 133, 2W], `simcc_y` [1, 133, 2H]). Each adds constant `logits` to what its (random, or
zeroed) layers compute, so that a test can fix the answer."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusion.preprocessors.dwpose import POSE_SIZES
from diffusion.preprocessors.yolox import SIZE, STRIDES

ROWS = sum((SIZE // stride) ** 2 for stride in STRIDES)
KEYPOINTS = 133


class Yolox(torch.nn.Module):
    """YOLOX's kinds of layers, few and narrow: a Focus stem (strided slices), SiLU convolutions
    down to strides 8, 16 and 32, an SPP max-pool, a nearest upsampling into stride 16, and a
    1×1 head per stride whose rows are concatenated; box values raw, objectness and classes
    through a sigmoid."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(12, 8, 3, padding=1)
        self.down = torch.nn.ModuleList(torch.nn.Conv2d(8, 8, 3, stride=2, padding=1) for _ in range(4))
        self.heads = torch.nn.ModuleList(torch.nn.Conv2d(8, 85, 1) for _ in STRIDES)
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.cat((images[..., ::2, ::2], images[..., 1::2, ::2], images[..., ::2, 1::2], images[..., 1::2, 1::2]), dim=1)
        x = F.silu(self.stem(x / 255))
        grids = []
        for index, down in enumerate(self.down):
            x = F.silu(down(x))
            if index:  # strides 8, 16, 32
                grids.append(x)
        grids[2] = F.max_pool2d(grids[2], 5, stride=1, padding=2)
        grids[1] = grids[1] + F.interpolate(grids[2], scale_factor=2.0, mode="nearest")
        rows = torch.cat([head(grid).flatten(2) for head, grid in zip(self.heads, grids)], dim=2).transpose(1, 2) + self.logits
        return torch.cat((rows[..., :4], rows[..., 4:].sigmoid()), dim=-1)


class RTMPose(torch.nn.Module):
    """RTMPose's kinds of layers, few and narrow: a strided convolution to one map per keypoint,
    each flattened into a token, scale-normalised, through one gated attention unit (SiLU,
    split, squared-ReLU attention) and out through a linear layer per axis."""

    def __init__(self, logits_x: torch.Tensor, logits_y: torch.Tensor, height: int, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, KEYPOINTS, 3, stride=32, padding=1)
        self.token = torch.nn.Linear((height // 32) * (width // 32), 32)
        self.gain = torch.nn.Parameter(torch.ones(1))
        self.uv = torch.nn.Linear(32, 2 * 32 + 16)
        self.query_key = torch.nn.Parameter(torch.randn(2, 16))
        self.out = torch.nn.Linear(32, 32)
        self.x = torch.nn.Linear(32, logits_x.shape[-1])
        self.y = torch.nn.Linear(32, logits_y.shape[-1])
        self.register_buffer("logits_x", logits_x)
        self.register_buffer("logits_y", logits_y)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.token(self.conv(image).flatten(2))
        tokens = tokens / tokens.norm(dim=-1, keepdim=True).clamp(min=1e-5) * self.gain
        u, v, base = F.silu(self.uv(tokens)).split([32, 32, 16], dim=-1)
        attention = F.relu((base * self.query_key[0]) @ (base * self.query_key[1]).transpose(1, 2) / 4) ** 2
        tokens = tokens + self.out(u * (attention @ v) / KEYPOINTS)
        return self.x(tokens) + self.logits_x, self.y(tokens) + self.logits_y


def person_logits(cell: tuple[int, int], stride: int = 32, size: float = 8.0) -> torch.Tensor:
    """YOLOX logits finding one person: the anchor of `cell` (x, y) in the grid of `stride`,
    a square box of `size` strides centred on that cell's corner; nothing anywhere else."""
    logits = torch.full((1, ROWS, 85), -10.0)
    row = sum((SIZE // s) ** 2 for s in STRIDES[: STRIDES.index(stride)]) + cell[1] * (SIZE // stride) + cell[0]
    logits[0, row, :4] = torch.tensor([0.0, 0.0, math.log(size), math.log(size)])
    logits[0, row, 4:6] = 10.0
    return logits


def centred_logits(size: tuple[int, int], peak: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCC logits placing every keypoint at the crop's centre with score `peak`."""
    width, height = size
    logits_x, logits_y = torch.zeros(1, KEYPOINTS, 2 * width), torch.zeros(1, KEYPOINTS, 2 * height)
    logits_x[..., width] = logits_y[..., height] = peak
    return logits_x, logits_y


def export(network: torch.nn.Module, path: Path, shape: tuple[int, ...], input_name: str, output_names: list[str]) -> Path:
    """Write `network` as an ONNX file (the TorchScript-based exporter, which needs only `onnx`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(network.eval(), (torch.zeros(shape),), str(path), input_names=[input_name], output_names=output_names, dynamo=False)
    return path


def write_dwpose(folder: Path, pose: str = "dw-ll_ucoco_384.onnx", detector: bool = True, zeroed: bool = True) -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    """Write `yolox_l.onnx` (unless not `detector`) finding one person centred in the image's
    middle, and the pose estimator `pose` placing every keypoint at its crop's centre; with
    `zeroed`, the layers add nothing, otherwise they add their (seeded) random answer. Returns
    each file's network and input shape."""
    torch.manual_seed(0)
    width, height = POSE_SIZES[pose]
    networks = {pose: (RTMPose(*centred_logits((width, height)), height, width), (1, 3, height, width), "input", ["simcc_x", "simcc_y"])}
    if detector:
        networks["yolox_l.onnx"] = (Yolox(person_logits((SIZE // 64, SIZE // 64))), (1, 3, SIZE, SIZE), "images", ["output"])
    for name, (network, shape, input_name, outputs) in networks.items():
        if zeroed:
            for parameter in network.parameters():
                torch.nn.init.zeros_(parameter)
        export(network, folder / name, shape, input_name, outputs)
    return {name: (network, shape) for name, (network, shape, *_) in networks.items()}
