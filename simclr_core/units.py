"""Byte counts in words, shared by modules that must not import torch (the downloads) and those that do."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """Decimal units (1 GB = 10^9 bytes), as dataset and download sizes are quoted."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
