"""GPU section (issue 17): where a CUDA training step's time goes, an STL10-sized epoch, the fast recipe on CIFAR-10.

``benchmarks/gpu_check.sh`` drives it on any CUDA machine; every function also runs on CPU at tiny
sizes, which is how ``tests/test_gpu_bench.py`` covers it without a GPU. Three measurements, one
module each, and the report:

* ``gpu_step.step_breakdown``: the product's own step pieces timed phase by phase with CUDA events,
  and how busy the GPU is (``torch.profiler``).
* ``gpu_epoch.product_epoch``: ``train.train`` itself for one epoch over ``STL10_UNLABELED``
  synthetic uint8 images; the epoch time from metrics.jsonl.
* ``gpu_recipe.recipe_run``: ``python -m simclr_core train --recipe fast --max-minutes M`` on carved
  train/test splits of an image archive, then kNN for the trained and a random-init encoder.
* ``gpu_report``: the targets as checks, the ``gpu`` block of BENCHMARKS.md and gpu_check.md.

This module runs them: ``measure`` (one batch size, in a fresh process), ``bench`` (each batch size)
and the command line ``python -m simclr_core.bench.gpu_bench {measure,bench,recipe,report} ...``
(``--help``); ``report`` renders the JSON the others wrote into markdown and, on request, into
BENCHMARKS.md's ``gpu`` block. The names of the parts are re-exported here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from simclr_core.bench.core import BenchError, Options, Section, resolve_device, run_json
from simclr_core.bench.gpu_epoch import STL10_UNLABELED, product_epoch, synthetic_images
from simclr_core.bench.gpu_recipe import knn_on_splits, recipe_run, run_dir_problems
from simclr_core.bench.gpu_report import checks, exit_code, next_step, render, section, write_benchmarks
from simclr_core.bench.gpu_step import PHASES, PhaseClock, device_busy_us, step_breakdown, union_us

__all__ = [
    "BATCHES",
    "JSON_BENCH",
    "JSON_RECIPE",
    "PHASES",
    "REPORT",
    "STL10_UNLABELED",
    "TESTS_LOG",
    "PhaseClock",
    "bench",
    "checks",
    "device_busy_us",
    "exit_code",
    "knn_on_splits",
    "machine_info",
    "main",
    "measure",
    "next_step",
    "product_epoch",
    "recipe_run",
    "render",
    "run",
    "run_dir_problems",
    "section",
    "step_breakdown",
    "synthetic_images",
    "union_us",
    "write_benchmarks",
]

BATCHES = (256, 1024)
JSON_BENCH = "gpu_bench.json"
JSON_RECIPE = "recipe.json"
REPORT = "gpu_check.md"
TESTS_LOG = "cuda_tests.txt"  # pytest's output, ending with "gpu_check: pytest exit status N"


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


def run(opts: Options) -> Section:
    """``python -m simclr_core bench gpu``: the training measurements only (the script adds tests and the recipe)."""
    if opts.torch_device.type != "cuda" and not opts.quick:
        raise BenchError("the GPU section needs a CUDA device (or --quick for a CPU smoke test)")
    batches = (8,) if opts.quick else BATCHES
    return section(bench(batches, quick=opts.quick, device=opts.device))


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
