"""Figure 3: the batched augmentation engine against the tutorial's per-image PIL pipeline.

Both sides augment the same random uint8 images with the tutorial's settings into 2 views each.
Ours is ``augment.make_views`` on a (B, 3, R, R) uint8 batch on the training device (on CPU the
fused per-view kernel of ``augment_cpu``; a second row runs the batched torch ops, the CUDA
path, on the same CPU to show what the kernel buys); the
reference is the tutorial's own ``contrast_transforms`` imported from
``tutorial_reference.py``, timed two ways: one process looping over PIL images (one core),
and the tutorial's DataLoader with one worker process per core (how it trains).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from simclr_core.bench.core import (
    Check,
    Options,
    Section,
    fmt,
    fmt_ratio,
    load_reference_module,
    median,
    ratio,
    resolve_device,
    run_worker,
    timed,
)

N_VIEWS = 2


def _images(n: int, res: int, seed: int = 0) -> np.ndarray:
    """(n, res, res, 3) uint8 noise, the reference's STL10 stand-in."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, res, res, 3), dtype=np.uint8)


def measure(
    res: int, batch: int, repeats: int, device: str = "auto", threads: int | None = None, fused: bool = True
) -> dict[str, Any]:
    """(fresh process) views/s of augmenting one (batch, 3, res, res) uint8 batch, median of repeats.

    Also the first call's time: on CPU it includes loading (or, the first time on a machine,
    compiling) the fused kernel.
    """
    from simclr_core.augment import apply, sample_params
    from simclr_core.config import augmentation_preset

    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    cfg = augmentation_preset("tutorial", crop_size=res)
    images = torch.from_numpy(_images(batch, res)).permute(0, 3, 1, 2).contiguous().to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)

    def views() -> None:
        apply(images, sample_params(N_VIEWS * batch, cfg, (res, res), gen, dev), cfg, fused=fused)

    first = timed(views, dev, warmup=0, repeats=1)[0]
    times = timed(views, dev, warmup=1, repeats=repeats)
    return {
        "views_per_s": N_VIEWS * batch / median(times),
        "first_call_s": first,
        "threads": torch.get_num_threads(),
        "device": str(dev),
    }


def measure_reference(res: int, batch: int, repeats: int, images: int, workers: int) -> dict[str, Any]:
    """(fresh process) views/s of the tutorial's per-image pipeline: a plain loop, and its DataLoader."""
    from PIL import Image
    from torch.utils.data import DataLoader

    ref = load_reference_module()
    pipeline = ref.contrast_transforms(res)
    pil = [Image.fromarray(x) for x in _images(min(batch, 64), res)]

    def loop() -> None:
        for img in pil:
            for _ in range(N_VIEWS):
                pipeline(img)

    single = N_VIEWS * len(pil) / median(timed(loop, "cpu", warmup=1, repeats=repeats))
    dataset = ref.InMemoryImages(images, res, ref.ContrastiveTransformations(pipeline, N_VIEWS))
    loader = DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0
    )
    for _ in loader:  # warm-up epoch: worker start-up is not steady state
        pass
    rates = []
    for _ in range(repeats):
        # Whole epochs from iter() on: the workers fill batches in parallel, so timing from the first
        # batch's arrival (or per batch) would count batches made during the wait as free.
        t0, n = time.perf_counter(), 0
        for _ in loader:
            n += 1
        rates.append(N_VIEWS * batch * n / (time.perf_counter() - t0))
    return {"views_per_s_1_process": single, "views_per_s_loader": median(rates), "workers": workers}


def run(opts: Options) -> Section:
    res, batch = (32, 32) if opts.quick else (96, 256)
    repeats = 3 if opts.quick else max(5, opts.repeats)
    section = Section(
        "augment",
        f"3. Augmentation engine ({res}x{res}, tutorial preset, {N_VIEWS} views per image, batch {batch})",
        ["pipeline", "cores used", "views/s", "tutorial views/s", "speed-up"],
    )
    workers = os.cpu_count() or 1
    ours = run_worker("augment", res=res, batch=batch, repeats=repeats, device=opts.device)
    ours_1 = run_worker("augment", res=res, batch=batch, repeats=repeats, device=opts.device, threads=1)
    fused = ours["device"] == "cpu"
    ops = (
        run_worker("augment", res=res, batch=batch, repeats=repeats, device=opts.device, fused=False) if fused else None
    )
    ref: dict[str, Any] = {}
    if opts.reference:
        images = 8 * batch  # 8 batches per epoch, 2048 images at batch 256 as in the tutorial reference
        ref = run_worker("augment_reference", res=res, batch=batch, repeats=repeats, images=images, workers=workers)
    whole = ratio(ours["views_per_s"], ref.get("views_per_s_loader"), True)
    per_core = ratio(ours_1["views_per_s"], ref.get("views_per_s_1_process"), True)
    dev = ours["device"]
    section.rows += [
        [
            f"ours, make_views on {dev} vs tutorial DataLoader ({workers} workers)",
            f"{ours['threads']} threads / {workers} procs",
            fmt(ours["views_per_s"]),
            fmt(ref.get("views_per_s_loader")),
            fmt_ratio(whole),
        ],
        [
            "ours, 1 thread vs tutorial loop in 1 process",
            "1",
            fmt(ours_1["views_per_s"]),
            fmt(ref.get("views_per_s_1_process")),
            fmt_ratio(per_core),
        ],
    ]
    if ops is not None:
        section.rows.append(
            [
                f"ours without the fused kernel (batched torch ops, the CUDA path) on {dev}",
                f"{ops['threads']} threads",
                fmt(ops["views_per_s"]),
                fmt(ref.get("views_per_s_loader")),
                fmt_ratio(ratio(ops["views_per_s"], ref.get("views_per_s_loader"), True)),
            ]
        )
    section.checks.append(
        Check(
            "augmentation vs per-image pipeline (whole machine)",
            fmt_ratio(whole),
            ">= 5x",
            None if whole is None else whole >= 5,
        )
    )
    section.notes += [
        f"Median over {repeats} batches (ours) or epochs of 8 batches (tutorial DataLoader) after a warm-up. Same random uint8 images, float32 output, normalised.",
        "The tutorial's DataLoader figure includes collating the views into batches, as in its training;"
        " ours returns them already stacked (2B, 3, R, R) on the device.",
        f"Each process's first call took {fmt(ours['first_call_s'])} s"
        + (" (loading the fused kernel from numba's on-disk cache, or compiling it once per machine)" if fused else "")
        + "; it is not in the rates.",
    ]
    if not opts.reference:
        section.notes.append("Reference columns skipped: ../shared/bench/tutorial_reference.py is absent.")
    return section
