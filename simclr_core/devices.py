"""What the machine can do fast, and TrainConfig's device/precision resolved to Lightning's terms.

Shared by training, the estimate, feature extraction and the benchmarks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from simclr_core.config import ConfigError


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 autocast runs ResNet-18 ~1.6x faster than fp32 (BENCHMARKS.md, 96 px, batch 256)
    and encodes ~2x faster, with loss and kNN within seed-to-seed noise of fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def torch_device(device: str) -> torch.device:
    """TrainConfig.device as the torch device a single process trains on (ConfigError as ``resolve_device``)."""
    accelerator, devices = resolve_device(device)
    if accelerator == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", devices[0] if devices else 0)


def resolve_device(device: str) -> tuple[str, Any]:
    """TrainConfig.device -> (Lightning accelerator, devices-or-None to use the count from config)."""
    if device == "auto":
        return ("gpu" if torch.cuda.is_available() else "cpu"), None
    if device == "cpu":
        return "cpu", None
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA GPU is visible here; use --device cpu or auto")
        if ":" in device:
            index = int(device.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
            return "gpu", [index]
        return "gpu", None
    raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


CPU_BF16_MIN_SIZE = 64  # image side from which bf16 autocast pays on a CPU


def resolve_precision(precision: str, accelerator: str, image_size: int | None = None) -> str:
    """'auto' -> bf16-mixed where it is faster (CUDA with bf16; AVX512-BF16/AMX CPUs for views of at least
    CPU_BF16_MIN_SIZE px), else 32 (fp16 on old GPUs).

    On a CPU, bf16 pays with large maps only: measured on 2 cores (ResNet-18, batch 256) 1.6x fp32's
    views/s at 96 px, but 0.85x at 32 px, where per-op casts outweigh the faster matmuls.
    The 64 px cut between the two measured sizes is not itself measured.
    """
    if precision != "auto":
        if precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("precision 16-mixed needs a CUDA GPU; on CPU use bf16-mixed or 32")
        return precision
    if accelerator == "gpu":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    large = image_size is None or image_size >= CPU_BF16_MIN_SIZE
    return "bf16-mixed" if cpu_has_fast_bf16() and large else "32"
