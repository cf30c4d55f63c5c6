"""Size caps with least-recently-used eviction for the folders that only grow: decoded caches and uploads.

A folder's entries are its children (a decoded dataset's folder, an uploaded checkpoint's file);
temporary names (``.tmp-*``, ``*.tmp``) are a writer's and never counted or removed here. An entry's
last use is its modification time, set by ``touch`` on every read (atime is unreliable under
``relatime``/``noatime``). Removing an entry a process has memory-mapped is safe on Linux: the pages
stay valid until it unmaps them.

The caps live in ``<data root>/cache.json`` (set with ``python -m simclr_core cache --cap ...``); an
environment variable (``SIMCLR_STUDIO_CACHE_CAP_GB``, ``SIMCLR_STUDIO_UPLOADS_CAP_GB``) overrides it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = {"decoded": "SIMCLR_STUDIO_CACHE_CAP_GB", "uploads": "SIMCLR_STUDIO_UPLOADS_CAP_GB"}
DEFAULT_CAPS = {"decoded": 20 * 2**30, "uploads": 2 * 2**30}
SETTINGS = "cache.json"


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int  # bytes
    used: float  # last use, seconds since the epoch


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total


def _temporary(name: str) -> bool:
    return name.startswith(".tmp-") or name.endswith(".tmp")


def entries(folder: Path) -> list[Entry]:
    """The folder's entries, least recently used first."""
    found = []
    for child in folder.iterdir() if folder.is_dir() else ():
        if _temporary(child.name):
            continue
        with contextlib.suppress(OSError):
            found.append(Entry(child, _size(child), child.lstat().st_mtime))
    return sorted(found, key=lambda e: e.used)


def touch(path: Path) -> None:
    """Mark ``path`` (an entry) as used now."""
    with contextlib.suppress(OSError):
        os.utime(path)


def remove(entry: Entry) -> None:
    if entry.path.is_dir() and not entry.path.is_symlink():
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        entry.path.unlink(missing_ok=True)


def evict(folder: Path, cap: int, keep: tuple[Path, ...] = ()) -> list[Entry]:
    """Remove least recently used entries until the folder holds at most ``cap`` bytes; ``keep`` stays."""
    current = entries(folder)
    total = sum(e.size for e in current)
    kept = {Path(p).resolve() for p in keep}
    removed = []
    for entry in current:
        if total <= cap:
            break
        if entry.path.resolve() in kept:
            continue
        remove(entry)
        total -= entry.size
        removed.append(entry)
    return removed


def read_settings(root: Path) -> dict[str, int]:
    try:
        data = json.loads((root / SETTINGS).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: int(v) for k, v in data.items() if k in KINDS and isinstance(v, int | float) and v >= 0}


def write_settings(root: Path, caps: dict[str, int]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    merged = {**read_settings(root), **caps}
    tmp = root / f".{SETTINGS}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(merged, indent=1))
    os.replace(tmp, root / SETTINGS)


def parse_size(text: str) -> int:
    """'20GB', '500MB', '1.5G', '0' -> bytes (binary units); ValueError on anything else."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(value[-1:])
    number = float(value[:-1] if scale else value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"not a size: {text!r}")
    return int(number * (scale or 2**30))  # a bare number means GiB, as the environment variables


def cap(root: Path, kind: str) -> int:
    """The cap in bytes of ``kind`` ("decoded" or "uploads"): environment, then cache.json, then the default."""
    env = os.environ.get(KINDS[kind], "").strip()
    if env:
        with contextlib.suppress(ValueError):
            return parse_size(env)
    return read_settings(root).get(kind, DEFAULT_CAPS[kind])


def enforce(root: Path, kind: str, keep: tuple[Path, ...] = ()) -> list[Entry]:
    """Evict ``<root>/<kind>`` down to its cap, keeping ``keep`` (the entry just written)."""
    return evict(root / kind, cap(root, kind), keep)


def age(seconds_since_epoch: float) -> str:
    hours = (time.time() - seconds_since_epoch) / 3600
    return f"{hours:.1f} h ago" if hours < 48 else f"{hours / 24:.0f} days ago"
