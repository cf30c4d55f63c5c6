"""Where the time of one training step goes: phase timings and torch.profiler's top operators.

Not a figure with a reference: notes for "Where the time goes" in BENCHMARKS.md. The step is
the module's own pieces (its views, network and configured optimiser) run by hand in Lightning's
order (autocast around forward and loss, backward, optimiser step), so each phase can be timed on its own:
augment -> forward (f, g) -> loss -> backward -> optimiser.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import torch

from simclr_core.bench.core import Options, Section, fmt, resolve_device, run_worker, sync

PHASES = ("augment", "forward", "loss", "backward", "optimizer")


def measure(
    image_size: int = 96,
    batch: int = 256,
    precision: str = "bf16-mixed",
    channels_last: bool = True,
    steps: int = 3,
    device: str = "auto",
    top: int = 15,
) -> dict[str, Any]:
    """(fresh process) Median seconds per phase over ``steps`` steps, then a profiled step's top ops."""
    from torch.profiler import ProfilerActivity, profile, record_function

    from simclr_core.config import AugmentationConfig, TrainConfig
    from simclr_core.loss import info_nce
    from simclr_core.module import SimCLRModule

    dev = resolve_device(device)
    cfg = TrainConfig(
        image_size=image_size,
        batch_size=batch,
        precision=precision,
        channels_last=channels_last,
        aug=AugmentationConfig(crop_size=image_size),
    )
    module = SimCLRModule(cfg).to(dev)  # the product's network, layout and optimiser (configure_optimizers)
    net = module.net
    opt = module.configure_optimizers()["optimizer"]
    images = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    bf16 = precision.startswith("bf16")

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step(times: dict[str, list[float]] | None) -> None:
        marks = [time.perf_counter()]

        def mark() -> None:
            sync(dev)
            marks.append(time.perf_counter())

        with record_function("augment"):
            views = module._views(images, gen)
        mark()
        with autocast():
            with record_function("forward"):
                _, z = net(views)
            mark()
            with record_function("loss"):
                loss, _ = info_nce(z, cfg.temperature)
            mark()
        with record_function("backward"):
            loss.backward()
        mark()
        with record_function("optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)
        mark()
        if times is not None:
            for name, a, b in zip(PHASES, marks[:-1], marks[1:], strict=True):
                times[name].append(b - a)

    step(None)  # warm-up: oneDNN primitives, allocator
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    for _ in range(steps):
        step(times)
    phases = {p: statistics.median(v) for p, v in times.items()}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step(None)
    sort = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=top, max_name_column_width=48)
    return {"phases": phases, "table": table, "device": str(dev), "threads": torch.get_num_threads()}


def run(opts: Options) -> Section:
    res, batch = (32, 16) if opts.quick else (96, 256)
    section = Section(
        "profile",
        f"Profile of one training step ({res}x{res}, batch {batch}, {resolve_device(opts.device)})",
        ["precision", "channels_last", *PHASES, "total s", "views/s (step only)"],
    )
    for precision, cl in (("32", False), ("bf16-mixed", True)):
        out = run_worker(
            "profile",
            image_size=res,
            batch=batch,
            precision=precision,
            channels_last=cl,
            steps=2 if opts.quick else 3,
            device=opts.device,
        )
        total = sum(out["phases"].values())
        section.rows.append(
            [precision, str(cl), *(fmt(out["phases"][p]) for p in PHASES), fmt(total), fmt(2 * batch / total)]
        )
        section.notes.append(f"top operators ({precision}, self time):\n\n```\n{out['table']}\n```")
    section.notes.insert(0, "Median seconds per phase over the timed steps, after a warm-up step.")
    return section
