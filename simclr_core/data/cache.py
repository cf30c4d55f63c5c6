"""On-disk cache of decoded datasets: ``<root>/decoded/<key>/{images.npy, labels.npy, meta.json}``.

Each entry is built in a temporary folder and renamed into place in one step, so a killed
process never leaves a half-written cache. Images are filled chunk by chunk straight into a
memory-mapped ``.npy`` so that even STL10's 2.8 GB unlabelled split is never held twice.
The folder is capped (``lru``): each hit marks its entry used, each new entry evicts the least
recently used ones beyond the cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from simclr_core.data import lru
from simclr_core.data.imageset import ImageSet
from simclr_core.processes import pid_alive

CACHE_VERSION = 1
# Larger caches are memory-mapped; smaller ones are read into RAM (faster random access).
MMAP_THRESHOLD_BYTES = 16 * 1024**2


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def cache_key(slug: str, canonical: str, image_size: int, fingerprint: str = "") -> str:
    """Folder name: readable slug, size, source hash (spec + size) and content hash (fingerprint)."""
    slug = re.sub(r"[^A-Za-z0-9+_.-]+", "_", slug)[:60].strip("_") or "data"
    source = _digest(f"v{CACHE_VERSION}|{canonical}|{image_size}")
    return f"{slug}-{image_size}px-{source}-{_digest(fingerprint)}"


def decoded_dir(root: Path) -> Path:
    return root / "decoded"


def load_cached(path: Path, spec: str) -> ImageSet | None:
    """The cached ImageSet at ``path`` or None when there is none (or it is unreadable)."""
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        images_file = path / "images.npy"
        mapped = images_file.stat().st_size > MMAP_THRESHOLD_BYTES
        # mmap_mode="c": copy-on-write pages, so torch gets a writable array and the file is never modified.
        images = np.load(images_file, mmap_mode="c" if mapped else None)
        labels = np.load(path / "labels.npy")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    lru.touch(path)
    return ImageSet(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels.astype(np.int64, copy=False)),
        classes=list(meta["classes"]),
        spec=spec,
        warnings=list(meta.get("warnings", [])),
        cache_path=path,
        mapped=mapped,
        cached=True,
    )


def _remove_leftovers(base: Path, source_hash: str, keep: str) -> None:
    """Drop temp folders of dead writers and stale entries of the same source (an edited folder)."""
    for entry in base.iterdir() if base.is_dir() else ():
        name = entry.name
        if name.startswith(".tmp-"):
            parts = name.split("-")
            pid = int(parts[-2]) if len(parts) > 2 and parts[-2].isdigit() else -1
            stale = time.time() - entry.stat().st_mtime > 24 * 3600
            if stale or (pid > 0 and not pid_alive(pid)):
                shutil.rmtree(entry, ignore_errors=True)
        elif name != keep and name.split("-")[-2:-1] == [source_hash]:
            shutil.rmtree(entry, ignore_errors=True)


class CacheWriter:
    """Writes one entry: ``images`` is a (N, 3, S, S) uint8 memmap to fill, then ``commit``."""

    def __init__(self, root: Path, key: str, n: int, image_size: int) -> None:
        self.base = decoded_dir(root)
        self.base.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.final = self.base / key
        self.tmp = self.base / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.tmp.mkdir()
        self.images = np.lib.format.open_memmap(
            self.tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, 3, image_size, image_size)
        )

    def shrink(self, keep: np.ndarray) -> None:
        """Keep only rows ``keep`` (sorted indices), copying in chunks (files that failed to decode)."""
        old_file = self.tmp / "images_full.npy"
        self.images.flush()
        del self.images
        os.replace(self.tmp / "images.npy", old_file)
        old = np.load(old_file, mmap_mode="r")
        self.images = np.lib.format.open_memmap(
            self.tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(keep), *old.shape[1:])
        )
        for start in range(0, len(keep), 4096):
            self.images[start : start + 4096] = old[keep[start : start + 4096]]
        del old
        old_file.unlink()

    def commit(self, labels: np.ndarray, classes: list[str], meta: dict) -> Path:
        self.images.flush()
        del self.images
        np.save(self.tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
        info = {
            "version": CACHE_VERSION,
            "classes": list(classes),
            "n": int(len(labels)),
            "created": time.time(),
            **meta,
        }
        (self.tmp / "meta.json").write_text(json.dumps(info, indent=1))
        try:
            os.rename(self.tmp, self.final)
        except OSError:
            if (self.final / "meta.json").is_file():
                # Another process finished the same entry first; theirs is complete, use it.
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                # A damaged entry (edited or deleted by hand): replace it.
                shutil.rmtree(self.final, ignore_errors=True)
                os.rename(self.tmp, self.final)
        _remove_leftovers(self.base, self.key.split("-")[-2], keep=self.key)
        lru.enforce(self.base.parent, "decoded", keep=(self.final,))
        return self.final

    def abort(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.images
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
