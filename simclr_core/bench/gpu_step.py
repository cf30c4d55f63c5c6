"""The GPU section's step breakdown: where a CUDA training step's time goes, phase by phase.

``step_breakdown`` runs the product's own step pieces (the module's views, network, InfoNCE and its
configured fused AdamW) by hand in Lightning's order on a batch already on the device. Each phase
is timed with CUDA events recorded on the stream between phases (no host sync inside the step, so
the pipeline runs as in training; an event span also holds the idle gaps that phase causes), a
step without markers gives the wall time, and ``torch.profiler`` sums the time the GPU spends in
kernels (the union of their intervals), hence how busy the GPU is. Also runs on CPU at tiny sizes.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from typing import Any

import torch

from simclr_core.bench.core import resolve_device

PHASES = ("augment", "forward", "loss", "backward", "optimizer")


class PhaseClock:
    """Marks between the phases of a step: CUDA events on the current stream, else ``perf_counter``.

    On CUDA nothing waits at a mark; ``spans()`` synchronises once at the end. On CPU every op has
    finished when it returns, so a mark is the time.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def spans(self) -> list[float]:
        """Seconds between consecutive marks."""
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks[:-1], self.marks[1:], strict=True)]
        return [b - a for a, b in zip(self.marks[:-1], self.marks[1:], strict=True)]


def union_us(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals: kernels on several streams count once."""
    total, end = 0.0, -math.inf
    for lo, hi in sorted(intervals):
        if hi <= end:
            continue
        total += hi - max(lo, end)
        end = hi
    return total


def device_busy_us(prof: Any) -> float | None:
    """Microseconds in which the profiled GPU ran a kernel, memcpy or memset (None when none was recorded)."""
    from torch.autograd import DeviceType

    spans = [
        (float(e.time_range.start), float(e.time_range.end))
        for e in prof.events()
        if getattr(e, "device_type", None) == DeviceType.CUDA
    ]
    return union_us(spans) if spans else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_config(image_size: int, batch: int, precision: str, **kw: Any) -> Any:
    from simclr_core.config import AugmentationConfig, TrainConfig

    aug = AugmentationConfig(crop_size=image_size)
    return TrainConfig(image_size=image_size, batch_size=batch, precision=precision, aug=aug, **kw).validate()


def step_breakdown(
    image_size: int = 96,
    batch: int = 256,
    steps: int = 20,
    warmup: int = 3,
    profile_steps: int = 3,
    precision: str = "bf16-mixed",
    channels_last: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Seconds per phase (median over ``steps``), wall seconds per step, and the GPU's busy fraction.

    The step is Lightning's order for ``bf16-mixed``: views outside autocast, forward and loss under
    it, backward, optimiser step. ``busy`` = kernel time per step / wall time per step (CUDA only;
    None on CPU). The uint8 batch starts on the device, so no input pipeline is timed here.
    """
    from torch.profiler import ProfilerActivity, profile

    from simclr_core.loss import info_nce
    from simclr_core.module import SimCLRModule

    dev = resolve_device(device)
    torch.backends.cudnn.benchmark = True  # as process.configure_process for training
    cfg = bench_config(image_size, batch, precision, channels_last=channels_last, device=str(dev))
    module = SimCLRModule(cfg).to(dev)  # the product's network, layout and optimiser
    net = module.net
    opt = module.configure_optimizers()["optimizer"]
    g = torch.Generator(device=dev).manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8, generator=g, device=dev)
    bf16 = precision.startswith("bf16")

    def step(clock: PhaseClock | None) -> None:
        mark = clock.mark if clock is not None else (lambda: None)
        mark()
        views = module._views(images, g)
        mark()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            _, z = net(views)
            mark()
            loss, _ = info_nce(z, cfg.temperature, cfg.n_views)
            mark()
        loss.backward()
        mark()
        opt.step()
        opt.zero_grad(set_to_none=True)
        mark()

    for _ in range(warmup):  # cudnn autotuning, allocator, numba/oneDNN first calls
        step(None)
    _sync(dev)
    clocks = [PhaseClock(dev) for _ in range(steps)]
    for clock in clocks:  # back to back, as in training: read after the last step, so no step waits for a read
        step(clock)
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    for clock in clocks:
        for name, span in zip(PHASES, clock.spans(), strict=True):
            times[name].append(span)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(None)
    _sync(dev)
    wall = (time.perf_counter() - t0) / steps

    kernel_s = top = None
    if dev.type == "cuda":
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(profile_steps):
                step(None)
            _sync(dev)
        busy_us = device_busy_us(prof)
        kernel_s = None if busy_us is None else busy_us / 1e6 / profile_steps
        with contextlib.suppress(Exception):  # the table is a note; its sort key has been renamed across versions
            top = prof.key_averages().table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60)
    phases = {p: statistics.median(v) for p, v in times.items()}
    total = sum(phases.values())
    out = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "image_size": image_size,
        "batch": batch,
        "views": batch * cfg.n_views,
        "precision": precision,
        "channels_last": channels_last,
        "steps": steps,
        "phases_s": phases,
        "shares": {p: v / total for p, v in phases.items()} if total > 0 else None,
        "phase_total_s": total,
        "wall_step_s": wall,
        "kernel_s_per_step": kernel_s,
        "busy": None if kernel_s is None else min(1.0, kernel_s / wall),
        "top_kernels": top,
    }
    if dev.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out
