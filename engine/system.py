"""Facts about the machine for `GET /system_stats`, in ComfyUI's shape."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import torch

from engine.devices import DevicePolicy


def sdflow_version() -> str:
    try:
        return importlib.metadata.version("sdflow")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def ram_bytes() -> tuple[int, int]:
    """(total, available) system memory in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()}
        return fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        total = os.sysconf("SC_PHYS_PAGES") * page if page else 0
        return total, os.sysconf("SC_AVPHYS_PAGES") * page if page else 0


def device_stats(policy: DevicePolicy) -> dict[str, Any]:
    """One entry of `devices`: name, type, index and memory of the compute device."""
    device = policy.compute
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        reserved = torch.cuda.memory_reserved(device)
        allocated = torch.cuda.memory_allocated(device)
        name = f"{device} {torch.cuda.get_device_name(device)}"
        return {
            "name": name, "type": "cuda", "index": device.index, "vram_total": total, "vram_free": free,
            "torch_vram_total": reserved, "torch_vram_free": reserved - allocated,
        }
    total, free = ram_bytes()
    return {"name": "cpu", "type": "cpu", "index": None, "vram_total": total, "vram_free": free, "torch_vram_total": total, "torch_vram_free": free}


def system_stats(policy: DevicePolicy) -> dict[str, Any]:
    """`{"system": {...}, "devices": [...]}` as ComfyUI's `/system_stats` answers."""
    total, free = ram_bytes()
    version = sdflow_version()
    system = {
        "os": sys.platform,
        "ram_total": total,
        "ram_free": free,
        "comfyui_version": version,
        "sdflow_version": version,
        "python_version": sys.version,
        "pytorch_version": torch.__version__,
        "embedded_python": False,
        "argv": sys.argv,
        "machine": platform.machine(),
    }
    return {"system": system, "devices": [device_stats(policy)]}
