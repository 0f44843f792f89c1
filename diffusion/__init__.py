"""Stable Diffusion services: checkpoint loading, text encoding, sampling, LoRA, ControlNet,
preprocessors and upscalers; see DESIGN.md.

sdflow never contacts a model hub: everything a library would fetch ships in `diffusion/assets`.
The switch below is set, and torchvision made importable, before any Hugging Face library is imported.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from diffusion.torchvision_compat import ensure_importable  # noqa: E402

ensure_importable()
