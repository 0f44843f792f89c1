"""Make `import torchvision` work beside a CPU-only torch.

PyPI's torchvision wheel is built against the CUDA torch; beside the CPU build (`+cpu`) its
compiled ops cannot load, and its import fails with "operator torchvision::nms does not exist"
because its meta registrations refer to op schemas that were never defined. transformers,
diffusers and controlnet-aux import torchvision whenever it is installed, so that failure would
break them all.

`ensure_importable()` defines the two missing schemas up front (cheaply: torchvision itself is
not imported) when that mismatch is installed. torchvision's Python parts (transforms, models)
then work; its compiled ops still raise if called, which nothing in sdflow needs. With a
torchvision built for the installed torch (a GPU install, or the CPU wheels of the PyTorch index)
it does nothing.
"""

from __future__ import annotations

from importlib import metadata

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
#: kept alive for the life of the process: dropping the library object unregisters the schemas
_library: torch.library.Library | None = None


def mismatched() -> bool:
    """Whether a CPU-only torch sits beside a torchvision built for another (CUDA) torch."""
    try:
        torchvision_version = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return False
    return "+cpu" in torch.__version__ and "+cpu" not in torchvision_version


def ensure_importable() -> None:
    """Define torchvision's missing op schemas when the installed pair needs it (once)."""
    global _library
    if _library is not None or not mismatched():
        return
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
