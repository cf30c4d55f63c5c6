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


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' -> bf16-mixed where the device has fast bf16 (CUDA with bf16, AVX512-BF16/AMX CPUs), else 32 (fp16 on old GPUs)."""
    if precision != "auto":
        if precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("precision 16-mixed needs a CUDA GPU; on CPU use bf16-mixed or 32")
        return precision
    if accelerator == "gpu":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32"
