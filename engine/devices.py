"""The compute device, the memory mode and the dtypes that run well on it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import torch

#: VRAM left free for activations and other programs
RESERVED_VRAM = 1024**3


class VramMode(str, Enum):
    """How models share GPU memory (ComfyUI's --highvram ... --cpu)."""

    HIGH = "highvram"  # keep every model on the GPU
    NORMAL = "normalvram"  # keep models on the GPU until room is needed (least recently used leaves)
    LOW = "lowvram"  # a model is on the GPU only while it is used
    NONE = "novram"  # weights stay in RAM; layers visit the GPU one at a time
    CPU = "cpu"  # no GPU at all


@dataclass(frozen=True)
class DevicePolicy:
    """Where models compute and where they wait."""

    mode: VramMode
    compute: torch.device
    offload: torch.device = torch.device("cpu")

    @classmethod
    def detect(cls, mode: VramMode | None = None) -> "DevicePolicy":
        """The first CUDA device in `mode` (normal by default), or the CPU."""
        if mode is VramMode.CPU or not torch.cuda.is_available():
            return cls(VramMode.CPU, torch.device("cpu"))
        return cls(mode or VramMode.NORMAL, torch.device("cuda", torch.cuda.current_device()))

    @property
    def on_gpu(self) -> bool:
        return self.compute.type == "cuda"

    def dtype(self, preferred: Sequence[torch.dtype]) -> torch.dtype:
        """The first of `preferred` the compute device runs well; float32 on the CPU.

        (On these CPUs bf16 and fp16 are many times slower than fp32.)
        """
        if not self.on_gpu:
            return torch.float32
        for dtype in preferred:
            if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
                continue
            return dtype
        return torch.float32

    def vram_budget(self) -> int:
        """Bytes of weights that may live on the compute device at once."""
        if not self.on_gpu:
            return sys.maxsize
        total = torch.cuda.get_device_properties(self.compute).total_memory
        return max(0, total - RESERVED_VRAM)
