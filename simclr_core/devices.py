"""What the machine can do fast; shared by training, feature extraction and the benchmarks."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 autocast runs ResNet-18 ~1.6x faster than fp32 (BENCHMARKS.md, 96 px, batch 256)
    and encodes ~2x faster, with loss and kNN within seed-to-seed noise of fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
