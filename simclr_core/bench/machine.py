"""Where the figures were measured: CPU, cores, accelerator, library versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (Linux) with its family/model numbers, else what platform reports."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in info.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_flags() -> set[str]:
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return set()
    for line in info.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def describe(device: torch.device) -> dict[str, str]:
    """Key facts for the table header; every value is a short string."""
    import pytorch_lightning as pl
    import torchvision

    flags = cpu_flags()
    out = {
        "cpu": cpu_model(),
        "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "cpu bf16": "avx512_bf16" if "avx512_bf16" in flags else ("amx_bf16" if "amx_bf16" in flags else "no"),
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch-lightning": pl.__version__,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    try:
        import umap

        out["umap-learn"] = umap.__version__
    except ImportError:
        pass
    return out
