"""Figure 2: the InfoNCE loss alone (forward + backward) against the tutorial's, time and peak memory.

The tutorial builds a (2N, 2N, D) broadcast tensor for ``F.cosine_similarity`` and ranks by
a full argsort; ours is one normalised (2N, D) @ (D, 2N) matmul and ranks by counting. Peak
memory is the high-water RSS of a fresh process running the loss minus that of an idle
process with the same imports (torch alone maps ~0.7 GiB, which the loss must not be
charged for); on CUDA it is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from simclr_core.bench.core import (
    BenchError,
    Check,
    Options,
    Section,
    fmt,
    fmt_ratio,
    median,
    peak_rss_mib,
    ratio,
    resolve_device,
    run_reference,
    run_worker,
    timed,
)

HIDDEN_DIM = 128  # the tutorial's projection size
TEMPERATURE = 0.07
MIB_FLOOR = 1.0  # ru_maxrss deltas below ~1 MiB are allocator noise, not the loss


def measure(batch: int, repeats: int = 10, device: str = "auto", idle: bool = False) -> dict[str, Any]:
    """(in a fresh process) ms per forward+backward of ``info_nce`` on (2*batch, 128) float32 features."""
    from simclr_core.loss import info_nce

    if idle:
        return {"peak_rss_mib": peak_rss_mib()}
    dev = resolve_device(device)
    torch.manual_seed(0)
    feats = torch.randn(2 * batch, HIDDEN_DIM, device=dev, requires_grad=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)

    def step() -> None:
        feats.grad = None
        loss, _ = info_nce(feats, TEMPERATURE)
        loss.backward()

    times = timed(step, dev, warmup=2, repeats=repeats)
    out = {"ms": 1000 * median(times), "peak_rss_mib": peak_rss_mib(), "device": str(dev)}
    if dev.type == "cuda":
        out["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(dev) - before) / 2**20
    return out


def _available_mib() -> float:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def reference_peak_estimate_mib(batch: int) -> float:
    """The tutorial's loss keeps ~6 float32 copies of the (2N, 2N, D) broadcast tensor alive (13 GB at N=1024)."""
    return 6 * (2 * batch) ** 2 * HIDDEN_DIM * 4 / 2**20


def run(opts: Options) -> Section:
    batches = [64] if opts.quick else [256, 1024, 4096]
    section = Section(
        "loss",
        "2. Loss alone (InfoNCE forward + backward, 2N x 128 features)",
        ["batch N", "ours ms", "tutorial ms", "speed-up", "ours peak MiB", "tutorial peak MiB", "less memory"],
    )
    device = opts.torch_device
    ours_idle = run_worker("loss", batch=1, idle=True)["peak_rss_mib"]
    ref_idle = None
    if opts.reference:
        ref_idle = run_worker("idle", imports=[], reference=True)["peak_rss_mib"]
    for batch in batches:
        ours = run_worker("loss", batch=batch, repeats=max(3, opts.repeats * 2), device=opts.device)
        ours_mem = ours["cuda_peak_mib"] if "cuda_peak_mib" in ours else ours["peak_rss_mib"] - ours_idle
        ours_mem = max(ours_mem, MIB_FLOOR)
        ref_ms = ref_mem = None
        note = ""
        if opts.reference:
            need = reference_peak_estimate_mib(batch)
            if need > 0.8 * _available_mib():
                note = f"tutorial not run: it would need ~{need / 1024:.0f} GiB (only {_available_mib() / 1024:.0f} available)"
            else:
                runs = 1 if opts.quick else (3 if batch <= 256 else 2)
                try:
                    res = [run_reference(["--loss-only", "--batch", str(batch), "--steps", "1"]) for _ in range(runs)]
                    ref_ms = median([r["ms_per_call"] for r in res])
                    ref_mem = max(median([r["peak_rss_mib"] for r in res]) - ref_idle, MIB_FLOOR)
                except BenchError as err:
                    note = f"tutorial failed: {err}"
        speed, mem = ratio(ours["ms"], ref_ms, False), ratio(ours_mem, ref_mem, False)
        row = [str(batch), fmt(ours["ms"]), fmt(ref_ms), fmt_ratio(speed), fmt(ours_mem), fmt(ref_mem), fmt_ratio(mem)]
        section.rows.append(row)
        if note:
            section.notes.append(f"N={batch}: {note}.")
        if batch == 1024:
            section.checks.append(
                Check("loss at batch 1024: speed", fmt_ratio(speed), ">= 100x", None if speed is None else speed >= 100)
            )
            section.checks.append(
                Check(
                    "loss at batch 1024: peak memory", fmt_ratio(mem), ">= 10x less", None if mem is None else mem >= 10
                )
            )
    section.notes += [
        f"Both in float32 on the same features; ours on {device} (median of {max(3, opts.repeats * 2)} calls after 2 warm-ups), "
        "the tutorial's `--loss-only` on CPU (median over separate runs of 1 timed call after its own warm-up).",
        f"Peak memory = ru_maxrss of the measuring process minus that of an idle process with the same imports "
        f"(ours {fmt(ours_idle)} MiB"
        + (f", tutorial {fmt(ref_idle)} MiB" if ref_idle else "")
        + f"); deltas under {MIB_FLOOR:.0f} MiB show as {MIB_FLOOR:.0f}."
        + (" On CUDA ours is torch.cuda.max_memory_allocated." if device.type == "cuda" else ""),
    ]
    if not opts.reference:
        section.notes.append("Reference columns skipped: ../shared/bench/tutorial_reference.py is absent.")
    return section
