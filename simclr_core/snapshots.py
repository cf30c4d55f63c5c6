"""Backbone-only snapshots of a run at a few points of its training, so its map can be replayed.

The Embeddings page replays how the clusters formed: the map of one fixed set of images at each
snapshot. A snapshot is the backbone f alone (the head g is not needed for features) in float16,
with the float32 BatchNorm statistics kept exact: ResNet-10 ~9.8 MB, ResNet-18 ~22 MB per file
(float16 weights give features within cosine 0.9999 of float32 ones). ``points(count)`` spreads
them evenly over training, from the random init at step 0 to the end, measured in the same
progress the status reports (steps or the time budget, whichever is further).

Layout in the run directory: ``snapshots/step-<8-digit step>.pt``, each a ``torch.save`` dict
of plain tensors and numbers (read back with ``weights_only=True``):
``backbone`` (state dict), ``step``, ``epoch``, ``progress`` in [0, 1], ``elapsed_s`` (training
time), ``time`` (Unix seconds) and ``arch`` = {backbone, small_input, hidden_dim, image_size,
mean, std}.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr_core.model import CheckpointError, SimCLRNet


def points(count: int) -> list[float]:
    """``count`` progress fractions from 0 (the random init) to 1 (the end), evenly spaced."""
    if count <= 0:
        return []
    if count == 1:
        return [1.0]
    return [k / (count - 1) for k in range(count)]


def path_for(folder: Path, step: int) -> Path:
    return folder / f"step-{int(step):08d}.pt"


def _half(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().cpu().contiguous()
    return value.half() if value.is_floating_point() and value.dim() > 1 else value  # BN stats stay float32


def save(
    folder: Path, backbone: nn.Module, *, step: int, epoch: int, progress: float, elapsed_s: float, arch: dict[str, Any]
) -> Path:
    """Write one snapshot atomically (tmp + rename); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = path_for(folder, step)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    blob = {
        "backbone": {k: _half(v) for k, v in backbone.state_dict().items()},
        "step": int(step),
        "epoch": int(epoch),
        "progress": float(progress),
        "elapsed_s": float(elapsed_s),
        "time": time.time(),
        "arch": dict(arch),
    }
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


@dataclass
class Snapshot:
    """One snapshot read back: a SimCLRNet whose backbone holds the snapshot (its head is unused)."""

    net: SimCLRNet
    step: int
    epoch: int
    progress: float
    elapsed_s: float
    arch: dict[str, Any]


def load(path: str | Path) -> Snapshot:
    """Read a snapshot without unpickling objects; raises CheckpointError with the reason."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        arch = dict(blob["arch"])
        net = SimCLRNet(str(arch["backbone"]), int(arch.get("hidden_dim", 128)), bool(arch["small_input"]))
        net.backbone.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in blob["backbone"].items()}
        )
    except Exception as err:  # torch and a foreign dict raise many types
        raise CheckpointError(f"snapshot {path.name} cannot be read ({type(err).__name__}: {str(err)[:200]})") from None
    return Snapshot(
        net.eval(), int(blob["step"]), int(blob["epoch"]), float(blob["progress"]), float(blob["elapsed_s"]), arch
    )
