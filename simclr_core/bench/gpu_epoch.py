"""The GPU section's product epoch: ``train.train`` itself over an STL10-sized set of synthetic images.

Lightning, the pinned DataLoader over host uint8 images, on-device augmentation and the run
store's callbacks, for one epoch over ``STL10_UNLABELED`` synthetic uint8 images swapped in through
``train``'s ``on_start`` hook, so no download is needed. The epoch time comes from the step times
in metrics.jsonl.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from typing import Any

import torch

from simclr_core.bench.core import BenchError
from simclr_core.bench.gpu_step import bench_config

STL10_UNLABELED = 100_000  # STL10's unlabelled split: the epoch the tutorial trains on


def synthetic_images(n: int, image_size: int, seed: int = 0, distinct: int = 8192) -> torch.Tensor:
    """(n, 3, S, S) uint8 noise: ``distinct`` random images repeated (content does not change the cost)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = torch.from_numpy(rng.integers(0, 256, (min(n, distinct), 3, image_size, image_size), dtype=np.uint8))
    out = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    for start in range(0, n, len(base)):
        stop = min(n, start + len(base))
        out[start:stop] = base[: stop - start]
    return out


def product_epoch(
    batch: int = 256,
    image_size: int = 96,
    images: int = STL10_UNLABELED,
    warmup: int = 5,
    precision: str = "bf16-mixed",
    device: str = "auto",
    max_minutes: float = 3.0,
    seed: int = 0,
) -> dict[str, Any]:
    """One epoch of ``train.train`` over ``images`` synthetic uint8 images; its time from metrics.jsonl.

    ``epoch_s``: the steady-state time of one epoch (the mean step after ``warmup`` steps, times the
    steps of an epoch); ``first_epoch_s``: from the start of training to the last step, warm-up
    (cudnn autotuning) included, validation and checkpointing excluded. Training data is swapped in
    through ``train``'s ``on_start`` hook (the configured shapes set only has to exist); the number of
    steps taken is checked, so a change of that seam fails loudly instead of timing the wrong epoch.
    """
    from simclr_core.train import train

    pixels = synthetic_images(images, image_size, seed)
    cfg = bench_config(
        image_size,
        batch,
        precision,
        data=f"shapes:unlabeled?n={batch}",
        val_data="shapes:train?n=2",  # 20 labelled images: validation and the kNN monitor cost nothing
        epochs=1,
        max_minutes=max_minutes,
        device=device,
        seed=seed,
    )

    def swap(run: Any, prepared: Any) -> None:
        prepared.data.train_images = pixels

    with tempfile.TemporaryDirectory(prefix="simclr-gpu-epoch-") as runs:
        run = train(cfg, runs_root=runs, on_start=swap)
        if run is None:
            raise BenchError("train.train returned no run")
        status = run.raw_status()
        rows = run.metrics()
        meta = run.config
    steps = [r for r in rows if "train_loss" in r]
    expected = images // batch
    timed_out = "time budget" in str(status.get("message", ""))
    if status.get("state") != "finished":
        raise BenchError(f"the epoch ended {status.get('state')}: {status.get('message')}")
    if len(steps) != expected and not timed_out:
        raise BenchError(f"the epoch ran {len(steps)} steps, not {images:,} // {batch} = {expected}")
    if len(steps) <= warmup + 1:
        raise BenchError(f"only {len(steps)} steps within {max_minutes} min: too few to time past {warmup} warm-up")
    bad = [r["step"] for r in steps if not math.isfinite(r["train_loss"])]
    if bad:
        raise BenchError(f"non-finite training loss at steps {bad[:5]}")
    t = {int(r["step"]): float(r["time"]) for r in steps}
    first, last = warmup, max(t)
    step_s = (t[last] - t[first]) / (last - first)
    out = {
        "batch": batch,
        "image_size": image_size,
        "images": images,
        "steps": len(steps),
        "steps_per_epoch": expected,
        "complete": len(steps) == expected,
        "step_s": step_s,
        "epoch_s": step_s * expected,
        "first_epoch_s": t[last] - float(status.get("started_at") or t[min(t)]) if len(steps) == expected else None,
        "views_per_s": batch * cfg.n_views / step_s,
        "final_loss": statistics.fmean(r["train_loss"] for r in steps[-5:]),
        "precision": meta.get("precision"),
        "device": meta.get("device"),
    }
    if torch.cuda.is_available() and str(meta.get("device", "")).startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out
