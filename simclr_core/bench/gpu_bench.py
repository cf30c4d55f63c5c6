"""GPU section (issue 17): where a CUDA training step's time goes, an STL10-sized epoch, the fast recipe on CIFAR-10.

``benchmarks/gpu_check.sh`` drives it on any CUDA machine; every function also runs on CPU at tiny
sizes, which is how ``tests/test_gpu_bench.py`` covers it without a GPU. Three measurements:

* ``step_breakdown``: the product's own step pieces (the module's views, network, InfoNCE and its
  configured fused AdamW), run by hand in Lightning's order on a batch already on the device. Each
  phase is timed with CUDA events recorded on the stream between phases (no host sync inside the
  step, so the pipeline runs as in training; an event span also holds the idle gaps that phase
  causes), a step without markers gives the wall time, and ``torch.profiler`` sums the time the
  GPU spends in kernels (the union of their intervals), hence how busy the GPU is.
* ``product_epoch``: ``train.train`` itself (Lightning, the pinned DataLoader over host uint8
  images, on-device augmentation, the run recorder) for one epoch over ``STL10_UNLABELED``
  synthetic uint8 images, swapped in through ``train``'s ``on_start`` hook, so no download is
  needed. The epoch time comes from the step times in metrics.jsonl.
* ``recipe_run``: ``python -m simclr_core train --recipe fast --max-minutes M`` on carved
  train/test splits of an image archive, then kNN (bank = the train split, queries = the test split)
  for the trained and a random-init encoder.

``python -m simclr_core.bench.gpu_bench {measure,bench,recipe,report} ...`` is the command line
(``--help``); ``report`` renders the JSON the others wrote into markdown and, on request, into
BENCHMARKS.md's ``gpu`` block.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from simclr_core.bench.core import ROOT, BenchError, Check, Options, Section, fmt, resolve_device, run_json

PHASES = ("augment", "forward", "loss", "backward", "optimizer")
STL10_UNLABELED = 100_000  # STL10's unlabelled split: the epoch the tutorial trains on
TUTORIAL_EPOCHS = 500
# ../shared/reference/tutorial17/events.out.tfevents.SimCLR: 500 epochs (194,999 steps) in 24.5 h on a TitanRTX.
TUTORIAL_EPOCH_S = 24.5 * 3600 / TUTORIAL_EPOCHS
TUTORIAL_PROBE = 0.8133  # linear probe, 500 labels per class, after those 500 epochs
TARGET_EPOCH_S = 5.0
TARGET_BUSY = 0.80
BATCHES = (256, 1024)
JSON_BENCH = "gpu_bench.json"
JSON_RECIPE = "recipe.json"
REPORT = "gpu_check.md"
TESTS_LOG = "cuda_tests.txt"  # pytest's output, ending with "gpu_check: pytest exit status N"


# -- timing primitives --------------------------------------------------------------------------------
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


# -- 1. the step, phase by phase ------------------------------------------------------------------------
def _train_config(image_size: int, batch: int, precision: str, **kw: Any) -> Any:
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
    torch.backends.cudnn.benchmark = True  # as train.build_trainer
    cfg = _train_config(image_size, batch, precision, channels_last=channels_last, device=str(dev))
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


# -- 2. the product's own loop over an STL10-sized epoch ------------------------------------------------
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
    cfg = _train_config(
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


def measure(
    batch: int = 256, quick: bool = False, device: str = "auto", precision: str = "bf16-mixed"
) -> dict[str, Any]:
    """(fresh process) The breakdown and the product epoch at one batch size; ``quick``: a tiny smoke test (CPU too)."""
    if quick:
        size, images, steps, warmup = 32, 5 * batch, 2, 1
    else:
        size, images, steps, warmup = 96, STL10_UNLABELED, 20, 3
    breakdown = step_breakdown(size, batch, steps=steps, warmup=warmup, precision=precision, device=device)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    epoch = product_epoch(batch, size, images, warmup=max(1, warmup), precision=precision, device=device)
    kernel = breakdown["kernel_s_per_step"]
    return {
        "batch": batch,
        "breakdown": breakdown,
        "epoch": epoch,
        # The product's step runs the same kernels, so their time over its measured step is how busy it kept the GPU.
        "busy_product": None if kernel is None else min(1.0, kernel / epoch["step_s"]),
    }


def machine_info(device: torch.device) -> dict[str, str]:
    from simclr_core.bench import machine

    info = machine.describe(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
        info["cuda (torch build)"] = str(torch.version.cuda)
        with contextlib.suppress(Exception):
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
    return info


def bench(
    batches: tuple[int, ...] = BATCHES, quick: bool = False, device: str = "auto", timeout: float = 600
) -> dict[str, Any]:
    """Each batch size in a fresh process (clean CUDA memory, one failure cannot hide the other)."""
    dev = resolve_device(device)
    results: dict[str, Any] = {"machine": machine_info(dev), "quick": quick, "measured_at": time.time(), "runs": []}
    for batch in batches:
        params = {"batch": batch, "quick": quick, "device": device}
        cmd = [sys.executable, "-m", "simclr_core.bench.gpu_bench", "measure", json.dumps(params)]
        t0 = time.perf_counter()
        try:
            res = run_json(cmd, timeout, f"gpu measure batch {batch}")
        except BenchError as err:
            res = {"batch": batch, "error": str(err)}
        res["seconds"] = time.perf_counter() - t0
        results["runs"].append(res)
    return results


# -- 3. the fast recipe for a few minutes, then kNN on the carved split ---------------------------------
def run_dir_problems(path: str | Path, state: str = "finished") -> list[str]:
    """What a run directory lacks to be valid (empty when valid): the contract of store.py, loaded for real."""
    from simclr_core.model import load_checkpoint
    from simclr_core.store import Run

    run = Run(path)
    problems = []
    try:
        cfg = run.config
        if "config" not in cfg or "kind" not in cfg:
            problems.append(f"config.json lacks config/kind: {sorted(cfg)}")
    except Exception as err:
        problems.append(f"config.json unreadable: {err}")
    status = run.raw_status()
    if status.get("state") != state:
        problems.append(f"status.json says {status.get('state')!r} ({status.get('message')}), expected {state!r}")
    rows = run.metrics()
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    if not losses:
        problems.append("metrics.jsonl has no train_loss rows")
    elif not all(math.isfinite(v) for v in losses):
        problems.append("metrics.jsonl has non-finite train_loss values")
    if not run.log_path.is_file():
        problems.append("train.log is missing")
    ckpt = run.checkpoint("last")
    if ckpt is None:
        problems.append("checkpoints/last.ckpt is missing")
    else:
        try:
            load_checkpoint(ckpt)
        except Exception as err:
            problems.append(f"last.ckpt does not load: {err}")
    return problems


def knn_on_splits(
    run_dir: str | Path, train_spec: str, test_spec: str, device: str | None = None, k: int = 20
) -> dict[str, Any]:
    """kNN accuracy (k, cosine) of the run's last checkpoint and of a random-init twin: bank = train split, queries = test split."""
    from simclr_core.features import RandomInit, features_for, resolve_source
    from simclr_core.knn import knn_accuracy
    from simclr_core.store import Run

    dev = resolve_device(device or "auto")
    source, _ = resolve_source(run=run_dir, which_checkpoint="last")
    c = Run(run_dir).train_config
    twin = RandomInit(
        c.get("backbone", "resnet18"),
        bool(c.get("small_input")),
        int(c.get("image_size", 96)),
        int(c.get("hidden_dim", 128)),
    )
    out: dict[str, Any] = {"k": k, "train_spec": train_spec, "test_spec": test_spec}
    t0 = time.perf_counter()
    for name, src in (("trained", source), ("random_init", twin)):
        bank = features_for(src, train_spec, device=dev, cache=False)
        query = features_for(src, test_spec, device=dev, cache=False)
        out[name] = knn_accuracy(
            bank.feats.to(dev), bank.labels.to(dev), query.feats.to(dev), query.labels.to(dev), k=k
        )
        out["bank"], out["queries"] = int(bank.feats.shape[0]), int(query.feats.shape[0])
    out["seconds"] = time.perf_counter() - t0
    return out


def recipe_run(
    train_spec: str,
    test_spec: str,
    minutes: float = 3.0,
    device: str = "cuda",
    recipe: str | None = "fast",
    runs_dir: str | Path | None = None,
    extra: list[str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """``python -m simclr_core train --data TRAIN --recipe RECIPE --max-minutes M --device D`` (exactly the CLI), checked, then kNN."""
    runs = Path(runs_dir or tempfile.mkdtemp(prefix="simclr-gpu-recipe-"))
    cmd = [
        sys.executable,
        "-m",
        "simclr_core",
        "train",
        "--data",
        train_spec,
        "--max-minutes",
        f"{minutes:g}",
        "--device",
        device,
        "--runs-dir",
        str(runs),
        "--name",
        f"gpu-check-{recipe or 'plain'}",
        "--no-progress",
    ]
    if recipe:
        cmd += ["--recipe", recipe]
    cmd += list(extra or [])
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SIMCLR_RUN_DIR", None)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"command": " ".join(cmd[1:]).replace(str(ROOT) + "/", ""), "train_spec": train_spec}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout or minutes * 60 + 240
        )
    except subprocess.TimeoutExpired as err:
        out["problems"] = [f"train gave no answer within {err.timeout:.0f} s"]
        return out
    out.update(rc=proc.returncode, seconds=time.perf_counter() - t0)
    found = re.findall(r"^run directory: (.+)$", proc.stdout, re.M)
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        out["problems"] = [f"train exited {proc.returncode}: " + " | ".join(tail)[-1500:]]
        return out
    run_dir = Path(found[-1].strip())
    from simclr_core.store import Run

    run = Run(run_dir)
    out["run_dir"] = str(run_dir)
    out["problems"] = run_dir_problems(run_dir)
    status, rows, cfg = run.raw_status(), run.metrics(), run.train_config
    steps = [r for r in rows if "train_loss" in r]
    knn_rows = [r["knn_acc"] for r in rows if "knn_acc" in r]
    out.update(
        state=status.get("state"),
        message=status.get("message"),
        steps=int(steps[-1]["step"]) if steps else 0,
        epochs=int(steps[-1]["epoch"]) + 1 if steps else 0,
        views_per_s=statistics.median(r["views_per_s"] for r in steps) if steps else None,
        final_loss=statistics.fmean(r["train_loss"] for r in steps[-5:]) if steps else None,
        knn_monitor=knn_rows[-1] if knn_rows else None,
        config={
            k: cfg.get(k)
            for k in (
                "image_size",
                "batch_size",
                "backbone",
                "small_input",
                "lr",
                "temperature",
                "n_views",
                "precision",
                "epochs",
                "max_minutes",
            )
        },
        precision=run.config.get("precision"),
    )
    if not out["problems"]:
        out["knn"] = knn_on_splits(run_dir, train_spec, test_spec, device=device)
    return out


# -- report --------------------------------------------------------------------------------------------
def _source(spec: str) -> str:
    """A spec's file name and query (``/long/path/cifar10-train.tar.gz?split=train`` -> ``cifar10-train.tar.gz?...``)."""
    path, _, query = spec.partition("?")
    return Path(path).name + ("?" + query if query else "") if "/" in path else spec


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def next_step(epoch_s: float | None, batch: int = 256) -> str:
    """What would reach the tutorial's 81.33 % STL10 figure in under an hour: epochs x epoch time."""
    if not epoch_s:
        return "No epoch time was measured, so no plan for the tutorial's 81.33 % can be given."
    total = TUTORIAL_EPOCHS * epoch_s
    per_hour = int(3600 // epoch_s)
    verdict = "under an hour" if total <= 3600 else f"{total / 3600:.1f} h, over the hour"
    need = 3600 / TUTORIAL_EPOCHS
    return (
        f"The tutorial's {100 * TUTORIAL_PROBE:.2f} % (linear probe, 500 labels per class) took {TUTORIAL_EPOCHS} "
        f"epochs at batch 256, {TUTORIAL_EPOCH_S:.0f} s per epoch on a TitanRTX (24.5 h). At {epoch_s:.2f} s per "
        f"epoch (batch {batch}) here, {TUTORIAL_EPOCHS} epochs x {epoch_s:.2f} s = {total / 60:.0f} min: {verdict} "
        f"(an hour holds {per_hour} epochs; under an hour needs <= {need:.1f} s per epoch). Next step: `python -m "
        f"simclr_core train --data stl10:unlabeled --batch-size {batch} --epochs {TUTORIAL_EPOCHS} --max-minutes 60 "
        f"--device cuda`, then `probe --run RUN --sizes 10,500`."
    )


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in runs if "epoch" in r and r["epoch"].get("epoch_s")]
    return min(ok, key=lambda r: r["epoch"]["epoch_s"]) if ok else None


def checks(
    bench_res: dict[str, Any] | None, tests: dict[str, Any] | None, recipe: dict[str, Any] | None
) -> list[Check]:
    """The issue's targets and the pass/fail checks, from the JSON the steps wrote."""
    out = []
    if tests is not None:
        summary = tests.get("summary") or ""
        passed = tests.get("rc") == 0 and "passed" in summary and not re.search(r"failed|error", summary)
        all_skipped = tests.get("rc") == 0 and "passed" not in summary  # no CUDA here (CPU smoke run)
        out.append(
            Check("GPU: CUDA checks (pytest -m cuda)", summary or "-", "all pass", None if all_skipped else passed)
        )
    if bench_res is not None:
        errors = [r for r in bench_res["runs"] if "error" in r]
        best = _best(bench_res["runs"])
        out.append(
            Check(
                "GPU: training benchmark ran (batches " + ", ".join(str(r["batch"]) for r in bench_res["runs"]) + ")",
                "ok" if not errors else f"{len(errors)} failed",
                "no errors",
                not errors,
            )
        )
        epoch_s = best["epoch"]["epoch_s"] if best else None
        busy = best.get("busy_product") if best else None
        label = f" (batch {best['batch']})" if best else ""
        e = best["epoch"] if best else {}
        sizes = f"{e.get('images', STL10_UNLABELED):,} images, {e.get('image_size', 96)} px"
        out.append(
            Check(
                f"GPU: STL10-sized epoch ({sizes})" + label,
                "-" if epoch_s is None else f"{epoch_s:.2f} s",
                f"<= {TARGET_EPOCH_S:g} s",
                None if epoch_s is None else epoch_s <= TARGET_EPOCH_S,
            )
        )
        out.append(
            Check(
                "GPU: busy share of the training step" + label,
                _pct(busy),
                f">= {100 * TARGET_BUSY:.0f} %",
                None if busy is None else busy >= TARGET_BUSY,
            )
        )
    if recipe is not None and not recipe.get("skipped"):
        ok = not recipe.get("problems") and "knn" in recipe
        measured = f"kNN {_pct(recipe['knn']['trained'])}" if "knn" in recipe else "; ".join(recipe.get("problems", []))
        out.append(
            Check("GPU: fast recipe run finishes, valid run directory, kNN measured", measured[:200], "finished", ok)
        )
    return out


def section(
    bench_res: dict[str, Any] | None, tests: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None
) -> Section:
    """The ``gpu`` block of BENCHMARKS.md."""
    quick = bool(bench_res and bench_res.get("quick"))
    info = (bench_res or {}).get("machine", {})
    where = info["gpu"].split(",")[0] if "gpu" in info else f"{info.get('device', 'unknown')} (no GPU)"
    sec = Section(
        "gpu",
        f"GPU: training step and STL10-sized epoch on one {where}",
        [
            "batch",
            "views/s",
            "s/step",
            "STL10 epoch (steady)",
            "first epoch (with warm-up)",
            "GPU busy",
            *(f"{p} %" for p in PHASES),
            "CUDA peak MiB",
        ],
    )
    for r in (bench_res or {}).get("runs", []):
        if "error" in r:
            sec.rows.append([str(r["batch"]), f"failed: {r['error'][:300]}"])
            continue
        e, b = r["epoch"], r["breakdown"]
        shares = b.get("shares") or {}
        peak = max(e.get("cuda_peak_mib") or 0, b.get("cuda_peak_mib") or 0) or None
        sec.rows.append(
            [
                str(r["batch"]),
                fmt(e["views_per_s"]),
                fmt(e["step_s"]),
                f"{e['epoch_s']:.2f} s",
                "-" if e.get("first_epoch_s") is None else f"{e['first_epoch_s']:.2f} s",
                _pct(r.get("busy_product")),
                *(f"{100 * shares[p]:.1f}" if p in shares else "-" for p in PHASES),
                fmt(peak),
            ]
        )
    runs = [r for r in (bench_res or {}).get("runs", []) if "breakdown" in r]
    if runs:
        sec.extra_tables.append(
            (
                "Hand-timed step (batch on the device; CUDA events between phases, ms)",
                ["batch", *PHASES, "sum of phases", "wall step", "kernel time", "GPU busy"],
                [
                    [
                        str(r["batch"]),
                        *(fmt(1000 * r["breakdown"]["phases_s"][p]) for p in PHASES),
                        fmt(1000 * r["breakdown"]["phase_total_s"]),
                        fmt(1000 * r["breakdown"]["wall_step_s"]),
                        fmt(
                            None
                            if r["breakdown"]["kernel_s_per_step"] is None
                            else 1000 * r["breakdown"]["kernel_s_per_step"]
                        ),
                        _pct(r["breakdown"]["busy"]),
                    ]
                    for r in runs
                ],
            ),
        )
    if recipe is not None:
        if recipe.get("skipped"):
            sec.notes.append(f"Fast recipe on CIFAR-10: not run ({recipe['skipped']}).")
        else:
            knn = recipe.get("knn") or {}
            sec.extra_tables.append(
                (
                    f"Fast recipe, GPU variant, {recipe.get('config', {}).get('max_minutes')} min on "
                    f"`{_source(recipe.get('train_spec', '?'))}` (kNN on its carved train/test split)",
                    [
                        "state",
                        "steps",
                        "epochs",
                        "views/s",
                        "final loss",
                        "kNN monitor",
                        "kNN test (trained)",
                        "kNN test (random init)",
                        "problems",
                    ],
                    [
                        [
                            str(recipe.get("state")),
                            str(recipe.get("steps", "-")),
                            str(recipe.get("epochs", "-")),
                            fmt(recipe.get("views_per_s")),
                            fmt(recipe.get("final_loss")),
                            _pct(recipe.get("knn_monitor")),
                            _pct(knn.get("trained")),
                            _pct(knn.get("random_init")),
                            "; ".join(recipe.get("problems") or []) or "none",
                        ]
                    ],
                ),
            )
            sec.notes.append(f"Recipe command: `{recipe.get('command')}`; its settings: {recipe.get('config')}.")
            if knn:
                sec.notes.append(
                    f"kNN: k={knn['k']}, cosine, bank = {knn['bank']:,} train-split images, "
                    f"queries = {knn['queries']:,} test-split images (h features, last.ckpt)."
                )
    best = _best(runs)
    e0 = runs[0]["epoch"] if runs else {}
    sizes = f"{e0.get('images', STL10_UNLABELED):,} synthetic uint8 images of {e0.get('image_size', 96)} px"
    sec.seconds = sum(r.get("seconds", 0.0) for r in (bench_res or {}).get("runs", []))
    sec.notes += [
        f"STL10-sized epoch: `train.train` (Lightning, pinned DataLoader over host uint8 images, augmentation on the "
        f"device, run recorder) over {sizes}, ResNet-18, bf16-mixed + "
        "channels_last; steady = mean step after the warm-up steps x steps per epoch, first = from training start to "
        "the last step (cudnn autotuning included; validation and checkpoint excluded).",
        "Shares: CUDA events between the phases of the hand-timed step (forward and loss under autocast, backward, "
        "fused AdamW); an event span holds the idle time its phase causes. GPU busy: kernel time per step "
        "(torch.profiler, union of kernel intervals) over the product's measured step time.",
        next_step(best["epoch"]["epoch_s"] if best else None, best["batch"] if best else 256),
    ]
    if bench_res:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(bench_res.get("measured_at", time.time())))
        sec.notes.append(
            f"Measured by `benchmarks/gpu_check.sh` at {when} on: "
            + "; ".join(f"{k} {v}" for k, v in bench_res.get("machine", {}).items())
            + "."
        )
    if quick:
        sec.notes.insert(0, "--quick: smoke-test sizes, not the real figures.")
    sec.checks = checks(bench_res, tests, recipe)
    return sec


def render(sec: Section, tests: dict[str, Any] | None, bench_res: dict[str, Any] | None) -> str:
    """The standalone report (gpu_check.md): targets first, then the section, then the slowest kernels."""
    from simclr_core.bench.report import render_checks, render_section

    checks_table = render_checks(sec.checks).replace("target (issue 6)", "target (issue 17)", 1)
    parts = ["# GPU check", "", checks_table, "", render_section(sec)]
    if tests and tests.get("failures"):
        parts += ["## Failed CUDA checks", "", "```", tests["failures"][-6000:], "```", ""]
    for r in (bench_res or {}).get("runs", []):
        top = r.get("breakdown", {}).get("top_kernels")
        if top:
            parts += [
                f"## Top kernels, batch {r['batch']} ({r['breakdown']['steps']} profiled steps)",
                "",
                "```",
                top,
                "```",
                "",
            ]
    return "\n".join(parts)


def write_benchmarks(path: Path, sec: Section) -> None:
    """Replace (or add) the ``gpu`` block of BENCHMARKS.md, keeping the other blocks, the machine table and the notes."""
    from simclr_core.bench import EXTRA, SECTIONS, report

    report.write(path, [sec], None, [*SECTIONS, *EXTRA], quick=False)


def exit_code(found: list[Check]) -> int:
    """0: every check passed and every target met; 1: a check failed (a mismatch, a crash); 3: a target missed."""
    if not found:
        return 3  # nothing was checked
    hard = [c for c in found if not c.name.startswith(("GPU: STL10", "GPU: busy"))]
    if any(c.met is False for c in hard):
        return 1
    return 3 if any(c.met is not True for c in found) else 0


def run(opts: Options) -> Section:
    """``python -m simclr_core bench gpu``: the training measurements only (the script adds tests and the recipe)."""
    if opts.torch_device.type != "cuda" and not opts.quick:
        raise BenchError("the GPU section needs a CUDA device (or --quick for a CPU smoke test)")
    batches = (8,) if opts.quick else BATCHES
    return section(bench(batches, quick=opts.quick, device=opts.device))


# -- command line -------------------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simclr_core.bench.gpu_bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="(fresh process) breakdown + product epoch for one batch; prints JSON")
    m.add_argument("params", help="JSON keyword arguments of measure(), e.g. '{\"batch\": 256}'")
    b = sub.add_parser("bench", help=f"measure each batch size; writes OUT/{JSON_BENCH}")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--batches", default=",".join(map(str, BATCHES)))
    b.add_argument("--device", default="auto")
    b.add_argument("--quick", action="store_true", help="tiny sizes (32 px, 5 steps): checks the plumbing, e.g. on CPU")
    b.add_argument("--timeout", type=float, default=600, help="seconds allowed per batch size (default 600)")
    r = sub.add_parser("recipe", help=f"train with a recipe for a few minutes, then kNN; writes OUT/{JSON_RECIPE}")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--train-spec", required=True)
    r.add_argument("--test-spec", required=True)
    r.add_argument("--minutes", type=float, default=3.0)
    r.add_argument("--device", default="cuda")
    r.add_argument("--recipe", default="fast", help="'' to train without --recipe (the quick CPU smoke test)")
    r.add_argument("--runs-dir", default=None)
    r.add_argument("--timeout", type=float, default=None, help="seconds for the training (default: minutes + 4 min)")
    r.add_argument("--skip", default=None, metavar="WHY", help="record the step as not run, with this reason")
    r.add_argument("extra", nargs="*", help="more train flags, after --")
    rep = sub.add_parser("report", help=f"render OUT/*.json into OUT/{REPORT} (and BENCHMARKS.md); exit 0/1/3")
    rep.add_argument("--out", required=True, type=Path)
    rep.add_argument("--tests-rc", type=int, default=None)
    rep.add_argument(
        "--tests-log", type=Path, default=None, help=f"pytest output (default OUT/{TESTS_LOG}): summary and failures"
    )
    rep.add_argument("--write-benchmarks", type=Path, default=None, metavar="BENCHMARKS.md")
    args = p.parse_args(argv)

    if args.cmd == "measure":
        print(json.dumps(measure(**json.loads(args.params))), flush=True)
        return 0
    if args.cmd == "bench":
        args.out.mkdir(parents=True, exist_ok=True)
        batches = tuple(int(x) for x in args.batches.split(","))
        res = bench(batches, quick=args.quick, device=args.device, timeout=args.timeout)
        (args.out / JSON_BENCH).write_text(json.dumps(res, indent=1))
        from simclr_core.bench.report import render_section

        print(render_section(section(res)))
        return 1 if any("error" in x for x in res["runs"]) else 0
    if args.cmd == "recipe":
        args.out.mkdir(parents=True, exist_ok=True)
        if args.skip:
            res = {"skipped": args.skip}
        else:
            res = recipe_run(
                args.train_spec,
                args.test_spec,
                args.minutes,
                args.device,
                args.recipe or None,
                args.runs_dir,
                args.extra,
                args.timeout,
            )
        (args.out / JSON_RECIPE).write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v for k, v in res.items() if k != "config"}, indent=1))
        return 1 if res.get("problems") else 0
    tests = None
    log_path = args.tests_log or args.out / TESTS_LOG
    if args.tests_rc is None and log_path.is_file():  # a fetched folder: the script noted pytest's exit status
        found = re.findall(r"^gpu_check: pytest exit status (\d+)$", log_path.read_text(errors="replace"), re.M)
        args.tests_rc = int(found[-1]) if found else None
    if args.tests_rc is not None:
        log = log_path.read_text(errors="replace") if log_path.is_file() else ""
        lines = [
            ln.strip("= ") for ln in log.strip().splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)
        ]
        fail = log.split("= FAILURES =")[-1] if "= FAILURES =" in log else ""
        tests = {
            "rc": args.tests_rc,
            "summary": lines[-1] if lines else f"exit status {args.tests_rc}",
            "failures": fail,
        }
    bench_res, recipe = _read(args.out / JSON_BENCH), _read(args.out / JSON_RECIPE)
    sec = section(bench_res, tests, recipe)
    text = render(sec, tests, bench_res)
    (args.out / REPORT).write_text(text)
    print(text)
    if args.write_benchmarks:
        if bench_res is None or bench_res.get("quick") or "gpu" not in bench_res.get("machine", {}):
            print(f"{args.write_benchmarks} not written: no full-size GPU measurement in {args.out}")
        else:
            write_benchmarks(args.write_benchmarks, sec)
            print(f"wrote the gpu block of {args.write_benchmarks}")
    code = exit_code(sec.checks)
    print(
        {
            0: "GPU check: all checks passed, all targets met",
            1: "GPU check FAILED: see the targets table above",
            3: "GPU check: checks passed, but a target was missed or not measured",
        }[code]
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
