"""Seeds for independent, reproducible random streams (augmentation per rank and step, epoch order, subsets)."""

from __future__ import annotations

import hashlib


def stream_seed(*parts: int | str) -> int:
    """A 63-bit seed mixed from ``parts`` (stable across processes and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
