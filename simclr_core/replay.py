"""A run's training replayed as maps: the same images placed by each snapshot's features, frame by frame.

Each frame is a 2-D PCA of the backbone features h of one fixed set of labelled images under one
snapshot (``snapshots.py``), standardised and turned onto the frame before it by orthogonal
Procrustes (``projection.procrustes``): PCA's axes and signs are arbitrary per frame, so without the
alignment points would flip and spin between frames; with it they move only as far as the encoder
changed, and classes can be watched pulling together into islands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simclr_core import snapshots
from simclr_core.config import ConfigError
from simclr_core.features import encode
from simclr_core.projection import pca, procrustes, standardise, subsample

Progress = Callable[[int, int], None]  # (snapshots done, total)


@dataclass
class Frame:
    """One snapshot's map: ``coords (n, 2) float32``, standardised and aligned to the frame before."""

    step: int
    epoch: int
    progress: float  # share of the run's training done at the snapshot, in [0, 1]
    coords: np.ndarray


@dataclass
class Replay:
    """Frames over the same points: ``labels (n,)`` and ``indices (n,)`` into the split ``spec``."""

    frames: list[Frame]
    labels: np.ndarray
    indices: np.ndarray
    classes: list[str]
    spec: str


def aligned_maps(features: Sequence[torch.Tensor | np.ndarray]) -> list[np.ndarray]:
    """2-D PCA of each ``(n, D)`` feature matrix (same rows in each), each aligned to the previous map."""
    maps: list[np.ndarray] = []
    for feats in features:
        x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
        coords = pca(np.ascontiguousarray(x, dtype=np.float32), 2)
        maps.append(procrustes(coords, maps[-1]) if maps else standardise(coords))
    return maps


def replay(
    snapshot_paths: Sequence[str | Path],
    images_u8: torch.Tensor,
    labels: np.ndarray,
    indices: np.ndarray,
    classes: list[str],
    spec: str,
    progress: Progress | None = None,
    device: str | torch.device = "cpu",
) -> Replay:
    """Encode ``images_u8: (n, 3, H, W) uint8`` with every snapshot (h, no augmentation) and align the maps."""
    if len(snapshot_paths) < 1:
        raise ConfigError("this run has no snapshots; runs trained before snapshots existed (or with 0) have none")
    if images_u8.shape[0] < 4:
        raise ConfigError(f"a replay needs at least 4 labelled images, got {images_u8.shape[0]}")
    frames_meta, features = [], []
    for i, path in enumerate(snapshot_paths):
        snap = snapshots.load(path)
        arch = snap.arch
        feats = encode(
            snap.net,
            images_u8,
            which="h",
            device=device,
            image_size=int(arch["image_size"]),
            mean=tuple(arch["mean"]),
            std=tuple(arch["std"]),
            precision="32",
        )
        frames_meta.append((snap.step, snap.epoch, snap.progress))
        features.append(feats)
        if progress is not None:
            progress(i + 1, len(snapshot_paths))
    maps = aligned_maps(features)
    frames = [Frame(s, e, p, c) for (s, e, p), c in zip(frames_meta, maps, strict=True)]
    return Replay(frames, np.asarray(labels, dtype=np.int64), np.asarray(indices, dtype=np.int64), list(classes), spec)


def run_replay(
    run_snapshots: Sequence[Path], spec: str, limit: int | None = 1000, seed: int = 0, progress: Progress | None = None
) -> Replay:
    """The replay of a run's snapshots on (a seeded subsample of) the labelled split ``spec``."""
    from simclr_core.data import load_dataset

    if not run_snapshots:
        raise ConfigError("this run has no snapshots; runs trained before snapshots existed (or with 0) have none")
    size = int(snapshots.load(run_snapshots[0]).arch["image_size"])
    data = load_dataset(spec, image_size=size)
    idx = subsample(len(data), limit, seed)
    pick = torch.from_numpy(idx)
    labels = np.asarray(data.labels)[idx]
    return replay(run_snapshots, data.images[pick].contiguous(), labels, idx, list(data.classes), spec, progress)
