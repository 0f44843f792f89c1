"""Stable Diffusion services: checkpoint loading, text encoding and (later) sampling; see DESIGN.md.

sdflow never contacts a model hub: everything a library would fetch ships in `diffusion/assets`.
The switch below is set before any Hugging Face library is imported.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
