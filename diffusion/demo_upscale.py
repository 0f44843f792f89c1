"""A tiny random ESRGAN upscaler saved in the original ESRGAN (RRDBNet) key names, for the demo
models and tests.

The image path (first convolution, upsampling, HR and last convolutions) starts from identity
kernels and the residual blocks from near-zero weights, all with a little random noise: the
model behaves roughly like a 2× nearest-neighbour upscale, so pictures stay pictures.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from spandrel.architectures.ESRGAN import ESRGAN

SCALE = 2
#: feature channels and residual-in-residual blocks (real models: 64 and 23)
WIDTH, BLOCKS = 8, 1
#: standard deviation of the random part of every weight
NOISE = 0.005
#: the convolutions on the image path of a 2× model: first, upsampling, HR, last
IMAGE_PATH = ("model.0.", "model.3.", "model.5.", "model.7.")


def tiny_upscaler_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tensors of the tiny model under ESRGAN's names (`model.0.weight`, `model.1.sub.0.RDB1.conv1.0.weight`, …)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {key: value.shape for key, value in ESRGAN(num_filters=WIDTH, num_blocks=BLOCKS, scale=SCALE).state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        tensor = torch.randn(shape, generator=generator) * NOISE
        if key.startswith(IMAGE_PATH) and key.endswith(".weight"):
            tensor += torch.nn.init.dirac_(torch.empty(shape))
        state[key] = tensor
    return state


def write_tiny_upscaler(path: Path) -> Path:
    """Write the tiny upscaler as a `.safetensors` file at `path` (folders created); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tiny_upscaler_state(), str(path))
    return path
