"""Wire types the engine's own nodes use: images and masks, laid out as in ComfyUI.

IMAGE is a float tensor `[B, H, W, C]` in 0..1 and MASK a float tensor `[B, H, W]` in 0..1, so
ComfyUI plugins that take or return them interoperate with sdflow nodes unchanged.
"""

from __future__ import annotations

from typing import Annotated

import torch

from engine.native import Socket

IMAGE = "IMAGE"
MASK = "MASK"

Image = Annotated[torch.Tensor, Socket(IMAGE)]
Mask = Annotated[torch.Tensor, Socket(MASK)]
