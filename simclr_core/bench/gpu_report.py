"""The GPU section's report: the issue's targets as checks, the ``gpu`` block of BENCHMARKS.md, gpu_check.md.

Everything here reads the JSON the measurements wrote (``gpu_bench bench`` and ``recipe``) and
pytest's summary; nothing is measured.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from simclr_core.bench.core import Check, Section, fmt
from simclr_core.bench.gpu_epoch import STL10_UNLABELED
from simclr_core.bench.gpu_step import PHASES

TUTORIAL_EPOCHS = 500
# ../shared/reference/tutorial17/events.out.tfevents.SimCLR: 500 epochs (194,999 steps) in 24.5 h on a TitanRTX.
TUTORIAL_EPOCH_S = 24.5 * 3600 / TUTORIAL_EPOCHS
TUTORIAL_PROBE = 0.8133  # linear probe, 500 labels per class, after those 500 epochs
TARGET_EPOCH_S = 5.0
TARGET_BUSY = 0.80


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
