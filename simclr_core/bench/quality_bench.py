"""``bench quality``: how much a recipe learns in M minutes, scored on images it never trained on.

Each cell trains with the CLI a user would type (``train --recipe R --max-minutes M``) in a fresh
process, then scores ``last.ckpt`` with ``probe``: kNN (k=20, cosine; bank = every labelled training
image) and the seed's linear probe at 10 / 100 / 500 / all labels per class, next to a random-init
encoder on the same subsets. CIFAR-10 comes from ``../shared/data`` as an 80/20 split carved from the
training images (train on the 80 %, score on the 20 %: no test split is ever used for a choice);
``shapes`` trains on ``shapes:unlabeled`` and is scored on ``shapes:test`` with ``shapes:train`` as the
labelled set, plus the kNN accuracy of its 2-D UMAP map (do classes form islands?).

Every cell's result is appended to ``benchmarks/quality.jsonl`` with its commands, so the variants
tried while tuning stay on record and the tables are rendered from all of them.

Method cells (``DATA:VARIANT:BUDGET:METHOD``, e.g. ``cifar10:fast:1ep:byol``) train the recipe with
``--method``; a budget ``Nep`` is N epochs with no time limit, so methods are compared at equal step
counts whatever else the machine runs (a shared machine distorts minutes, not steps). supcon trains on
the labelled bank. They go to ``benchmarks/methods.jsonl`` and their own table, with steps/s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from simclr_core.bench.core import ROOT, BenchError, Check, Options, Section

RESULTS = ROOT / "benchmarks" / "quality.jsonl"
METHOD_RESULTS = ROOT / "benchmarks" / "methods.jsonl"
WORKDIR = ROOT / "test-artifacts" / "quality"  # the cells' run directories, kept for screenshots and a look
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-train.tar.gz"
# (data, recipe, minutes[, variant flags]); the default cells of the section.
DEFAULT_CELLS = [
    ("cifar10", "tutorial", 5.0),
    ("cifar10", "fast", 5.0),
    ("cifar10", "fast", 20.0),
    ("shapes", "tutorial", 5.0),
    ("shapes", "fast", 5.0),
    ("shapes", "fast-nojitter", 5.0),
]
# Named variants: extra train flags on top of a recipe (the crop + colour lesson, the tutorial at 32 px).
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "tutorial": ("tutorial", ["--image-size", "32", "--aug", "{tut32}", "--monitor", "knn_acc"]),
    "fast": ("fast", []),
    "fast-nojitter": ("fast", ["--aug", "{nojitter}"]),
    "fast-eval48": ("fast", ["--eval-scale", "1.5"]),  # FixRes: scored at 48 px (helps 5 minutes, hurts 20)
    "fast-headbn": ("fast", ["--head-batch-norm"]),  # BatchNorm in SimCLR's projection head, as BYOL/VICReg's
    # + crops of 8-100 % (the SimCLR paper's): equal to 20-100 % after 5 minutes (53.5 / 53.3 kNN), so tried at 20
    "fast-headbn-crop8": ("fast", ["--head-batch-norm", "--aug", "{crop8}"]),
    # Per-method recipe tries: wider projections (Barlow Twins and VICReg use 2,048-8,192-d in their papers).
    "fast-w256": ("fast", ["--hidden-dim", "256"]),
    "fast-w512": ("fast", ["--hidden-dim", "512"]),
    "fast-w1024": ("fast", ["--hidden-dim", "1024"]),
    "fast-m96": ("fast", ["--target-momentum", "0.96"]),  # BYOL: a target that follows faster in a short run
    "fast-lr4e-3": ("fast", ["--lr", "0.004"]),
}


def specs(data: str) -> tuple[str, str, str, str]:
    """(train images, labelled bank, scored images, probe sizes) of a quality dataset."""
    if data == "cifar10":
        if not CIFAR.is_file():
            raise BenchError(f"{CIFAR} is absent (the shared CIFAR-10 images); run the shapes cells only")
        return f"{CIFAR}?split=train", f"{CIFAR}?split=train", f"{CIFAR}?split=test", "10,100,500,4000"
    if data == "shapes":
        return "shapes:unlabeled", "shapes:train", "shapes:test", "10,100,500"
    raise BenchError(f"unknown quality dataset {data!r}; use cifar10 or shapes")


def _aug_files(workdir: Path) -> dict[str, str]:
    """JSON files for the variants' augmentations: the tutorial's at 32 px (3 px blur), fast without jitter."""
    from dataclasses import replace

    from simclr_core.config import augmentation_preset, fast_recipe

    tut = augmentation_preset("tutorial", crop_size=32)
    tut.blur_kernel = 3  # the tutorial's 9 px kernel is sized for 96 px views
    fast = fast_recipe().aug
    files = {"tut32": tut, "nojitter": replace(fast, jitter_p=0.0), "crop8": replace(fast, crop_scale=(0.08, 1.0))}
    out = {}
    for name, cfg in files.items():
        path = workdir / f"aug-{name}.json"
        path.write_text(cfg.to_json())
        out[name] = str(path)
    return out


def _cli(args: list[str], log: Path) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "simclr_core", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"`simclr_core {' '.join(args[:1])}` failed (log {log}): {proc.stderr.strip()[-600:]}")
    return proc.stdout


def map_knn(run_dir: Path, spec: str) -> float:
    """kNN accuracy (k=20, leave-one-out) on the 2-D UMAP coordinates of the scored images' features."""
    import numpy as np
    import torch

    from simclr_core.features import features_for
    from simclr_core.projection import project

    fs = features_for(run_dir / "checkpoints" / "last.ckpt", spec)
    coords = torch.from_numpy(np.ascontiguousarray(project(fs.feats, "umap", 2, seed=0), dtype=np.float32))
    labels = torch.as_tensor(fs.labels)
    # Map distances are Euclidean (cosine would rank by angle around the origin): a plain majority vote.
    dist = torch.cdist(coords, coords)
    dist.fill_diagonal_(float("inf"))
    idx = dist.topk(20, largest=False).indices
    votes = torch.zeros(len(labels), int(labels.max()) + 1).scatter_add_(1, labels[idx], torch.ones(idx.shape))
    return float((votes.argmax(1) == labels).float().mean())


def run_cell(
    data: str,
    variant: str,
    minutes: float,
    workdir: Path,
    extra: list[str] | None = None,
    results: Path = RESULTS,
    method: str | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Train one cell, score it, return the record (also appended to ``results``).

    ``method``: train with ``--method`` (supcon on the labelled bank); ``epochs``: that many epochs and no
    time budget (``minutes`` is then only the label), for comparisons at equal step counts.
    """
    recipe, flags = VARIANTS[variant]
    train_spec, bank, scored, sizes = specs(data)
    files = _aug_files(workdir)
    flags = [f.format(**files) for f in flags] + list(extra or [])
    budget = ["--max-minutes", f"{minutes:g}"] if epochs is None else ["--epochs", str(epochs), "--max-minutes", "600"]
    if method is not None:
        # The method's own recipe settings written out, so the record says what ran whatever the recipe becomes.
        given = _flag_values(flags)
        flags += [t for flag, v in method_flags(method).items() if flag not in given for t in (flag, v)]
        variant_flags = list(flags)
        flags += ["--method", method]
        train_spec = bank if method == "supcon" else train_spec
    name = f"q-{data}-{variant}-{minutes:g}m" if epochs is None else f"q-{data}-{variant}-{epochs}ep"
    name += f"-{method}" if method else ""
    train_args = ["train", "--recipe", recipe, "--data", train_spec, *budget, *flags]
    train_args += ["--runs-dir", str(workdir / "runs"), "--name", name, "--no-progress"]
    t0 = time.time()
    out = _cli(train_args, workdir / f"{name}.train.log")
    match = re.search(r"run directory: (\S+)", out)
    if not match:
        raise BenchError(f"train printed no run directory (log {workdir / f'{name}.train.log'})")
    run_dir = Path(match.group(1))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "train_loss" in r]
    probe_args = ["probe", "--run", str(run_dir), "--train-data", bank, "--test-data", scored]
    probe_args += ["--sizes", sizes, "--repeats", "1", "--json"]
    if method is not None:  # the random-init encoder is the same for every method: the recipe's cells score it
        probe_args.append("--no-random-baseline")
    report = _json(_cli(probe_args, workdir / f"{name}.probe.log"))
    table = {
        str(r["size"]): {
            "probe": r["probe_test_acc_mean"],
            "knn": r["knn_acc_mean"],
            "random_probe": r.get("random_probe_test_acc_mean"),
            "random_knn": r.get("random_knn_acc_mean"),
        }
        for r in report["table"]
    }
    record: dict[str, Any] = {
        "data": data,
        "variant": variant,
        "minutes": minutes,
        "train_command": "python -m simclr_core " + " ".join(train_args[:-5]),
        "probe_command": "python -m simclr_core probe --run RUN " + " ".join(probe_args[3:]),
        "steps": steps[-1]["step"] if steps else 0,
        "epochs": _epochs(run_dir, steps[-1]["step"]) if steps else 0.0,
        "lr_last_over_peak": (steps[-1]["lr"] / max(r["lr"] for r in steps)) if steps else None,
        "knn_monitor": [(r["step"], r["knn_acc"]) for r in rows if "knn_acc" in r],
        "rankme": [(r["step"], r["rankme"]) for r in rows if r.get("rankme") is not None],
        "steps_per_s": _steps_per_s(steps),
        "table": table,
        "map_knn": map_knn(run_dir, scored) if data == "shapes" and method is None else None,
        "seconds": round(time.time() - t0),
        "created_at": time.time(),
    }
    if method is not None:
        record.update(
            method=method, budget=f"{epochs}ep" if epochs is not None else f"{minutes:g}m", flags=variant_flags
        )
    results.parent.mkdir(exist_ok=True)
    with results.open("a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def method_flags(method: str) -> dict[str, str]:
    """The train flags by which ``method``'s fast recipe differs from SimCLR's, e.g. ``{"--hidden-dim": "512"}``."""
    from simclr_core.config import FAST_METHOD_SETTINGS

    return {"--" + k.replace("_", "-"): f"{v:g}" for k, v in FAST_METHOD_SETTINGS.get(method, {}).items()}


def _flag_values(flags: list[str]) -> dict[str, float | str | bool]:
    """``--flag value`` pairs (numbers as floats, so "512" and "512.0" agree); a bare ``--flag`` is True."""
    out: dict[str, float | str | bool] = {}
    for i, tok in enumerate(flags):
        if tok.startswith("--"):
            value = flags[i + 1] if i + 1 < len(flags) and not flags[i + 1].startswith("--") else True
            try:
                out[tok] = float(value) if value is not True else True
            except ValueError:
                out[tok] = value
    return out


def _record_flags(r: dict[str, Any]) -> list[str]:
    """The flags a method cell trained with beyond ``--recipe fast`` (records before ``flags``: its variant's)."""
    return r["flags"] if "flags" in r else list(VARIANTS.get(r["variant"], ("", []))[1])


def is_recipe_cell(r: dict[str, Any]) -> bool:
    """Whether a method cell trained its method's current fast recipe (a try otherwise)."""
    return _flag_values(_record_flags(r)) == _flag_values(
        [t for pair in method_flags(r["method"]).items() for t in pair]
    )


def _steps_per_s(steps: list[dict[str, Any]]) -> float | None:
    """Training steps per second between the first and last recorded step (validation pauses included)."""
    if len(steps) < 2:
        return None
    return round((steps[-1]["step"] - steps[0]["step"]) / max(1e-9, steps[-1]["time"] - steps[0]["time"]), 3)


def _json(text: str) -> dict[str, Any]:
    return json.loads(text[text.index("{") :])


def _epochs(run_dir: Path, steps: int) -> float:
    meta = json.loads((run_dir / "config.json").read_text())
    return round(steps * meta["config"]["batch_size"] / max(1, meta.get("train_images", 1)), 2)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def latest(records: list[dict[str, Any]]) -> dict[tuple[str, str, float], dict[str, Any]]:
    """The newest record per (data, variant, minutes)."""
    out: dict[tuple[str, str, float], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r["created_at"]):
        out[(r["data"], r["variant"], float(r["minutes"]))] = r
    return out


def load_records(path: Path = RESULTS) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def section_from(records: list[dict[str, Any]]) -> Section:
    """The BENCHMARKS.md block: one row per cell (newest result), the targets of issue 11 as checks."""
    headers = [
        "data",
        "recipe",
        "minutes",
        "steps (epochs)",
        "kNN",
        "probe 10 / 100 / 500 / all",
        "random init kNN / probe all",
        "2-D map kNN",
        "lr at end / peak",
    ]
    rows, cells = [], latest(records)
    for (data, variant, minutes), r in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        sizes = list(r["table"])
        top = r["table"][sizes[-1]]
        rows.append(
            [
                data,
                variant,
                f"{minutes:g}",
                f"{r['steps']} ({r['epochs']:g})",
                _pct(top["knn"]),
                " / ".join(_pct(r["table"][s]["probe"]) for s in sizes),
                f"{_pct(top['random_knn'])} / {_pct(top['random_probe'])}",
                _pct(r.get("map_knn")),
                f"{r['lr_last_over_peak']:.3f}" if r.get("lr_last_over_peak") is not None else "",
            ]
        )
    section = Section(
        "quality", "Learning per minute (kNN and linear probe after M minutes of training)", headers, rows
    )
    section.notes = [
        "Accuracies in %. CIFAR-10: trained on 40,000 of the shared training images, scored on the other 10,000 "
        "(an 80/20 split carved from the training images); kNN k=20 cosine with all 40,000 as the bank; probe = "
        "the seed's logistic regression on frozen h. shapes: trained on shapes:unlabeled, bank/probe on "
        "shapes:train, scored on shapes:test. Random init: the same architecture untrained, same subsets.",
        "Commands per cell are in benchmarks/quality.jsonl (train_command, probe_command). Regenerate: "
        "`python -m simclr_core bench quality --out BENCHMARKS.md` (about 1 h for all cells on 2 cores); "
        "`--cells cifar10:fast:5,shapes:fast:5` runs a subset and keeps the other rows.",
    ]
    section.checks = _checks(cells)
    return section


def _checks(cells: dict[tuple[str, str, float], dict[str, Any]]) -> list[Check]:
    def top(key: tuple[str, str, float], field: str) -> float | None:
        r = cells.get(key)
        return None if r is None else r["table"][list(r["table"])[-1]][field]

    def check(name: str, value: float | None, goal: float) -> Check:
        return Check(
            name, _pct(value) or "not measured", f">= {100 * goal:.0f} %", None if value is None else value >= goal
        )

    shapes_fast, shapes_plain = top(("shapes", "fast", 5.0), "knn"), top(("shapes", "fast-nojitter", 5.0), "knn")
    gap = None if shapes_fast is None or shapes_plain is None else shapes_fast - shapes_plain
    map_r = cells.get(("shapes", "fast", 5.0))
    return [
        check("CIFAR-10 fast 20 min: kNN", top(("cifar10", "fast", 20.0), "knn"), 0.60),
        check("CIFAR-10 fast 20 min: probe, all labels", top(("cifar10", "fast", 20.0), "probe"), 0.65),
        check("CIFAR-10 fast 5 min: kNN", top(("cifar10", "fast", 5.0), "knn"), 0.50),
        check("shapes demo 5 min: kNN on shapes:test", shapes_fast, 0.80),
        check("shapes demo 5 min: kNN on the 2-D UMAP", None if map_r is None else map_r.get("map_knn"), 0.70),
        check("shapes 5 min: kNN lost without colour jitter", gap, 0.15),
    ]


def parse_cells(text: str) -> list[tuple]:
    """'cifar10:fast:5,shapes:fast-nojitter:5' -> (data, variant, minutes) cells; with a 4th field METHOD
    ('cifar10:fast:1ep:byol') -> (data, variant, minutes, method, epochs) method cells, the budget in minutes
    or 'Nep' epochs (minutes then 0). Refuses unknown datasets, variants and methods."""
    from simclr_core.config import METHODS, ConfigError

    cells: list[tuple] = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        parts = item.split(":")
        if len(parts) not in (3, 4) or parts[0] not in ("cifar10", "shapes") or parts[1] not in VARIANTS:
            raise ConfigError(
                f"quality cell {item!r} must be DATA:VARIANT:MINUTES[:METHOD] with DATA cifar10|shapes and VARIANT "
                f"{'|'.join(VARIANTS)}"
            )
        if len(parts) == 4 and parts[3] not in METHODS:
            raise ConfigError(f"quality cell {item!r}: unknown method {parts[3]!r}; choose one of {', '.join(METHODS)}")
        epochs = None
        try:
            if len(parts) == 4 and parts[2].endswith("ep"):
                epochs, minutes = int(parts[2][:-2]), 0.0
            else:
                minutes = float(parts[2])
        except ValueError:
            raise ConfigError(f"quality cell {item!r}: the budget must be minutes or Nep (epochs)") from None
        cells.append(
            (parts[0], parts[1], minutes) if len(parts) == 3 else (parts[0], parts[1], minutes, parts[3], epochs)
        )
    return cells


def methods_section_from(records: list[dict[str, Any]], recipe_records: list[dict[str, Any]] = ()) -> Section:
    """The BENCHMARKS.md block of the method cells: the newest result per (data, budget, method).

    SimCLR's minute cells are the recipe's own (``recipe_records``, quality.jsonl: the same command without
    ``--method``), unless a ``:simclr`` method cell of that budget was run; rows go data, budget, then method
    in ``METHODS`` order, so each budget reads as one comparison.
    """
    from simclr_core.config import METHODS

    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (data, variant, minutes), r in latest(list(recipe_records)).items():
        if variant == "fast" and minutes > 0:
            cells[(data, f"{minutes:g}m", "simclr")] = r
    tries = []
    for r in sorted(records, key=lambda r: r["created_at"]):
        if is_recipe_cell(r):
            cells[(r["data"], r["budget"], r["method"])] = r
        else:
            tries.append(r)

    def order(key: tuple[str, str, str]) -> tuple:
        data, budget, method = key
        return data, budget.endswith("ep"), float(budget.rstrip("mep")), METHODS.index(method)

    headers = ["data", "method", "budget", "steps (epochs)", "steps/s", "kNN", "probe per class sizes", "RankMe"]
    rows = []
    for (data, budget, method), r in sorted(cells.items(), key=lambda kv: order(kv[0])):
        sizes = list(r["table"])
        top = r["table"][sizes[-1]]
        rank = r.get("rankme") or []
        rows.append(
            [
                data,
                method,
                budget,
                f"{r['steps']} ({r['epochs']:g})",
                f"{r['steps_per_s']:.2f}" if r.get("steps_per_s") else "",
                _pct(top["knn"]),
                " / ".join(f"{s}: {_pct(r['table'][s]['probe'])}" for s in sizes),
                f"{rank[-1][1]:.0f}" if rank else "",
            ]
        )
    section = Section("methods", "Methods compared on the same data and budget (kNN and linear probe)", headers, rows)
    section.notes = [
        "Accuracies in %, scored as in the quality table (CIFAR-10: the carved 80/20 split of the training images, "
        "never a test split; shapes: shapes:test, bank and probe on shapes:train). Every method trains its own fast "
        "recipe, `--recipe fast --method M` (FAST_METHOD_SETTINGS; its paper's head: BatchNorm for byol, "
        "barlowtwins and vicreg); supcon trains on the labels of the bank, so it is a supervised reference, "
        "not self-supervised.",
        "Budget Nm: N minutes on this 2-core machine, one cell at a time on a quiet machine (what a user gets in "
        "those minutes: a method's cost per step counts against it). Budget Nep: N epochs with no time budget, "
        "the same steps for every method. RankMe: effective rank of the embeddings at the last monitor point.",
        "Regenerate: `python -m simclr_core bench quality --cells cifar10:fast:5:byol,cifar10:fast:5:vicreg,... "
        "--out BENCHMARKS.md`; records in benchmarks/methods.jsonl (SimCLR's minute rows: benchmarks/quality.jsonl).",
    ]
    if tries:
        section.notes.append(
            "Tries for the methods' own fast recipes (variant: extra train flags; kNN / probe all, %): "
            + "; ".join(_try_text(r) for r in tries)
            + "."
        )
    return section


def _try_text(r: dict[str, Any]) -> str:
    top = r["table"][list(r["table"])[-1]]
    flags = " ".join(_record_flags(r)) or "SimCLR's settings"
    return f"{r['method']} {r['data']} {r['budget']} `{flags}` {_pct(top['knn'])} / {_pct(top['probe'])}"


def run(opts: Options) -> Section:
    import tempfile

    cells = parse_cells(opts.cells) if opts.cells else DEFAULT_CELLS
    results = RESULTS
    if opts.quick:  # a smoke test: tiny cells, recorded apart from the real figures
        cells, results = (
            [(c[0], c[1], 0.1) for c in cells if c[0] == "shapes"][:1],
            Path(tempfile.mkdtemp()) / "q.jsonl",
        )
    workdir = Path(tempfile.mkdtemp()) if opts.quick else WORKDIR
    workdir.mkdir(parents=True, exist_ok=True)
    method_results = METHOD_RESULTS if not opts.quick else results.with_name("m.jsonl")
    for cell in cells:
        data, variant, minutes = cell[:3]
        method, epochs = cell[3:] if len(cell) == 5 else (None, None)
        print(
            f"   {data} {variant} {f'{epochs} epochs' if epochs else f'{minutes:g} min'} {method or ''} ...", flush=True
        )
        try:
            out = method_results if method else results
            r = run_cell(data, variant, minutes, workdir, results=out, method=method, epochs=epochs)
        except BenchError as err:
            print(f"   skipped: {err}", flush=True)
            continue
        top = r["table"][list(r["table"])[-1]]
        print(f"   kNN {_pct(top['knn'])} %, probe (all) {_pct(top['probe'])} %, {r['steps']} steps", flush=True)
    if any(len(c) == 5 for c in cells):
        return methods_section_from(load_records(method_results), load_records(results))
    return section_from(load_records(results))
