"""Figure 1: end-to-end training throughput against the tutorial's recipe, and the learning-quality check.

Ours runs the product's own path, ``train.train(config)`` into a temporary run directory
(on-device augmentation inside the step, the run recorder, metrics.jsonl), in a fresh
process. Its steady-state rate comes from the per-step wall times the recorder writes to
metrics.jsonl: views over the time from the end of the last warm-up step to the end of the
last timed step, the same window the reference's own StepTimer measures.
"""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

from simclr_core.bench.core import (
    PEAK_KEY,
    BenchError,
    Check,
    Options,
    Section,
    fmt,
    fmt_ratio,
    peak_rss_mib,
    ratio,
    run_reference,
    run_worker,
)
from simclr_core.metrics import EPOCH_METRICS, TRAIN_LOSS

QUALITY_SEEDS = (0, 1)
STL10_UNLABELED = 100_000


def _epoch(views_per_s: float) -> str:
    seconds = 2 * STL10_UNLABELED / views_per_s
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _config(**kw: Any) -> Any:
    from simclr_core.config import AugmentationConfig, TrainConfig

    size = int(kw.pop("image_size"))
    blur = int(kw.pop("blur_kernel", 9))
    aug = AugmentationConfig(crop_size=size, blur_kernel=blur)
    return TrainConfig(image_size=size, aug=aug, **kw)


def _train_rows(cfg: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Train ``cfg`` into a throw-away run directory; (step rows, validation rows, config.json)."""
    from simclr_core.train import train

    with tempfile.TemporaryDirectory(prefix="simclr-bench-") as runs:
        run = train(cfg, runs_root=runs)
        if run.state != "finished":
            raise BenchError(f"training ended {run.state}: {run.raw_status().get('message')}")
        rows = run.metrics()
        meta = run.config
    steps = [r for r in rows if TRAIN_LOSS in r]
    return steps, [r for r in rows if any(name in r for name in EPOCH_METRICS)], meta


def measure(
    image_size: int = 96,
    batch: int = 256,
    warmup: int = 2,
    steps: int = 3,
    precision: str = "bf16-mixed",
    channels_last: bool = True,
    small_input: bool = False,
    device: str = "auto",
    idle: bool = False,
) -> dict[str, Any]:
    """(fresh process) Steady-state augmented views/s of ``train.train`` on shapes at this size.

    The run uses exactly ``warmup + steps`` optimiser steps (one epoch over that many images).
    """
    import torch

    import simclr_core.train  # noqa: F401  (the idle baseline must import what training imports)

    if idle:
        return {"peak_rss_mib": peak_rss_mib()}
    n = batch * (warmup + steps)
    # The labelled split doubles as the (20-image) validation set, so no second dataset is held in memory.
    spec = f"shapes:train?n={-(-n // 10)}"
    cfg = _config(
        data=spec,
        val_data=spec,
        image_size=image_size,
        batch_size=batch,
        epochs=1,
        limit_images=n,
        val_limit=20,
        precision=precision,
        channels_last=channels_last,
        small_input=small_input,
        device=device,
        seed=0,
    )
    from simclr_core.data import load_dataset

    load_dataset(spec, image_size)  # generate and cache the images before the clock matters
    steps_rows, _, meta = _train_rows(cfg)
    by_step = {int(r["step"]): float(r["time"]) for r in steps_rows}
    if warmup not in by_step or warmup + steps not in by_step:
        raise BenchError(f"metrics.jsonl lacks steps {warmup} or {warmup + steps}: {sorted(by_step)}")
    views = batch * cfg.n_views
    window = by_step[warmup + steps] - by_step[warmup]
    per_step = [by_step[s] - by_step[s - 1] for s in range(warmup + 1, warmup + steps + 1)]
    out = {
        "views_per_s": views * steps / window,
        "step_s_median": statistics.median(per_step),
        "step_s": per_step,
        "precision": meta.get("precision"),
        "device": meta.get("device"),
        "peak_rss_mib": peak_rss_mib(),
    }
    if torch.cuda.is_available() and str(meta.get("device", "")).startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure_quality(
    precision: str,
    seed: int,
    image_size: int = 32,
    batch: int = 128,
    steps_per_epoch: int = 10,
    epochs: int = 6,
    val_limit: int = 2000,
    device: str = "auto",
) -> dict[str, Any]:
    """(fresh process) Final loss (mean of the last 5 steps) and kNN accuracy after a fixed number of steps."""
    cfg = _config(
        data="shapes:unlabeled",
        image_size=image_size,
        batch_size=batch,
        epochs=epochs,
        limit_images=batch * steps_per_epoch,
        val_limit=val_limit,
        precision=precision,
        device=device,
        seed=seed,
        lr=1e-3,
        blur_kernel=3,
        monitor="knn_acc",
    )
    steps_rows, val_rows, meta = _train_rows(cfg)
    knn = [r["knn_acc"] for r in val_rows if "knn_acc" in r]
    return {
        "loss": statistics.fmean(r["train_loss"] for r in steps_rows[-5:]),
        "knn_acc": knn[-1] if knn else None,
        "steps": int(steps_rows[-1]["step"]),
        "precision": meta.get("precision"),
    }


def _reference_train(opts: Options, res: int, batch: int, warmup: int, steps: int) -> dict[str, Any]:
    images = max(2048, batch * (warmup + steps))
    return run_reference(
        [
            "--res",
            str(res),
            "--batch",
            str(batch),
            "--images",
            str(images),
            "--steps",
            str(steps),
            "--warmup",
            str(warmup),
        ],
        timeout=3600,
    )


def _quality(opts: Options, section: Section) -> None:
    """bf16 vs fp32 from the same seeds: the difference between precisions against the seed-to-seed spread."""
    kw = {"image_size": 32, "batch": 16, "steps_per_epoch": 2, "epochs": 1, "val_limit": 100} if opts.quick else {}
    results = {
        (p, s): run_worker("quality", precision=p, seed=s, device=opts.device, **kw)
        for p in ("32", "bf16-mixed")
        for s in QUALITY_SEEDS
    }
    rows = []
    verdict = True
    for metric in ("loss", "knn_acc"):
        vals = {k: v[metric] for k, v in results.items()}
        if any(v is None for v in vals.values()):
            section.notes.append(f"learning quality: no {metric} recorded")
            verdict = False
            continue
        fp32 = [vals[("32", s)] for s in QUALITY_SEEDS]
        bf16 = [vals[("bf16-mixed", s)] for s in QUALITY_SEEDS]
        # Paired by seed (same data order and views): the precision effect vs the seed effect.
        diff = statistics.fmean(b - f for b, f in zip(bf16, fp32, strict=True))
        noise = max(abs(fp32[0] - fp32[1]), abs(bf16[0] - bf16[1]))
        ok = abs(diff) <= noise
        verdict = verdict and ok
        rows.append(
            [
                metric,
                " / ".join(fmt(v) for v in fp32),
                " / ".join(fmt(v) for v in bf16),
                f"{diff:+.4f}",
                fmt(noise),
                "yes" if ok else "no",
            ]
        )
    steps = results[("32", QUALITY_SEEDS[0])]["steps"]
    section.extra_tables.append(
        (
            f"Learning quality: {steps} steps on shapes, seeds {QUALITY_SEEDS[0]} and {QUALITY_SEEDS[1]}",
            [
                "metric",
                "fp32 (per seed)",
                "bf16-mixed (per seed)",
                "mean bf16 - fp32",
                "seed-to-seed spread",
                "within noise",
            ],
            rows,
        )
    )
    section.checks.append(
        Check(
            "learning quality: bf16 within noise of fp32 (loss, kNN)",
            "yes" if verdict else "no",
            "|bf16 - fp32| <= seed spread",
            verdict,
        )
    )


def run(opts: Options) -> Section:
    if opts.quick:
        res, batch, warmup, steps, ref_steps = 32, 16, 1, 2, 2
    elif opts.torch_device.type == "cuda":  # step times are taken without a device sync: average over more steps
        res, batch, warmup, steps, ref_steps = 96, 256, 5, 30, 20
    else:
        res, batch, warmup, steps, ref_steps = 96, 256, 2, 4, 3
    section = Section(
        "train",
        f"1. Training throughput ({res}x{res}, ResNet-18, batch {batch}, 2 views, steady state)",
        ["recipe", "precision", "views/s", "s/step", "STL10 epoch", "peak RSS MiB", "vs tutorial"],
    )
    common = {"image_size": res, "batch": batch, "warmup": warmup, "steps": steps, "device": opts.device}
    ref = None
    if opts.reference:
        ref = _reference_train(opts, res, batch, warmup, ref_steps)
        section.rows.append(
            [
                f"tutorial reference ({ref['workers']} DataLoader workers, PIL per image)",
                "32 (fp32)",
                fmt(ref["views_per_s"]),
                fmt(2 * batch / ref["views_per_s"]),
                _epoch(ref["views_per_s"]),
                fmt(ref[PEAK_KEY]),
                "1x",
            ]
        )
    variants = [
        ("ours, fp32, contiguous (NCHW)", {"precision": "32", "channels_last": False}),
        ("ours, fp32, channels_last", {"precision": "32", "channels_last": True}),
        ("ours, fast path: bf16-mixed + channels_last", {"precision": "bf16-mixed", "channels_last": True}),
    ]
    if opts.quick:
        variants = variants[-1:]
    fast = None
    for label, kw in variants:
        res_ = run_worker("train", **common, **kw, timeout=3600)
        r = ratio(res_["views_per_s"], ref["views_per_s"] if ref else None, True)
        section.rows.append(
            [
                label,
                res_["precision"],
                fmt(res_["views_per_s"]),
                fmt(res_["step_s_median"]),
                _epoch(res_["views_per_s"]),
                fmt(res_[PEAK_KEY]),
                fmt_ratio(r),
            ]
        )
        fast = (res_, r)
    assert fast is not None
    section.checks.append(
        Check(
            "training throughput vs tutorial (bf16 fast path)",
            fmt_ratio(fast[1]),
            ">= 3.0x",
            None if fast[1] is None else fast[1] >= 3.0,
        )
    )
    section.notes += [
        f"Same model (torchvision ResNet-18 + 512-512-128 head), same image size and batch. Ours: `train.train` on "
        f"shapes, {warmup} warm-up + {steps} timed steps, rate over the timed window from metrics.jsonl step times; "
        f"s/step is the median step. Tutorial: `tutorial_reference.py --res {res} --batch {batch} --warmup {warmup} "
        f"--steps {ref_steps}` (its own timer; fewer timed steps to keep it affordable), random uint8 images.",
        "The tutorial runs fp32 (its Trainer sets no precision); ours uses bf16 autocast for the network with "
        "float32 augmentation and loss. The fp32 rows separate the levers.",
        "Peak RSS: the largest process of each side's process tree (ours includes the dataset and the run recorder).",
        f"STL10 epoch: the time one epoch of STL10's {STL10_UNLABELED:,} unlabelled images would take at this rate "
        "(2 views each); the tutorial reports about a day for 500 epochs on a TitanRTX, ~170 s per epoch.",
    ]
    _quality(opts, section)
    return section
