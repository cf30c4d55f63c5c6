"""Augmentation ablation: the SimCLR paper's Figure 5 (each operation alone and in pairs) on your data.

Every cell is a normal run of the fast recipe with the same seed and time budget, differing
only in its augmentation: the ``none`` preset (whole image resized, nothing random) with the
cell's operations switched on at the fast recipe's settings. "Off" is explicit in each cell's
config: probability 0 (flip, jitter, grayscale, blur) or the whole image (crop scale and ratio 1).
A reference cell with no operation at all shows what the encoder learns from resizing alone.
Cells run through the run queue (so the dashboard and the CLI share them) and are scored by
:mod:`simclr_core.knn_eval`; the plan is kept in ``<runs_root>/ablations/<id>.json``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from simclr_core.config import (
    METHOD_LABELS,
    AugmentationConfig,
    ConfigError,
    TrainConfig,
    augmentation_preset,
    recipe_config,
)
from simclr_core.knn_eval import eval_specs, read_result
from simclr_core.run_queue import ENDED, Entry, RunQueue
from simclr_core.store import Run, write_json_atomic

OPS = ("crop", "color", "gray", "blur", "flip")
LABELS = {"crop": "crop", "color": "colour", "gray": "grayscale", "blur": "blur", "flip": "flip"}
ALIASES = {"colour": "color", "jitter": "color", "grayscale": "gray", "grey": "gray", "greyscale": "gray"}
# Probability of an operation that the recipe leaves off (the fast recipe never blurs): the SimCLR paper's.
DEFAULT_P = {"flip_p": 0.5, "jitter_p": 0.8, "grayscale_p": 0.2, "blur_p": 0.5}
FOLDER = "ablations"
# Labelled images of a lab run's live kNN monitor (its step-0 level and per-epoch kNN), unless given: the
# cell is scored by the full kNN once it ends, so the monitor need only show the trend. On all 40,000
# CIFAR-10 images the monitor's first and last passes took ~25 s of a 1-minute cell; on 1,000, ~2 s.
LAB_VAL_LIMIT = 1000
GROUP_PREFIX = "ablation-"


def parse_ops(text: str | list[str]) -> list[str]:
    """'crop,color,blur' -> ['crop', 'color', 'blur']; 2 to 5 distinct known operations."""
    items = text.split(",") if isinstance(text, str) else list(text)
    ops: list[str] = []
    for raw in (i.strip().lower() for i in items if i.strip()):
        op = ALIASES.get(raw, raw)
        if op not in OPS:
            raise ConfigError(f"unknown augmentation operation {raw!r}; choose from {', '.join(OPS)}")
        if op in ops:
            raise ConfigError(f"operation {op!r} is listed twice")
        ops.append(op)
    if not 2 <= len(ops) <= 5:
        raise ConfigError(f"an ablation needs 2 to 5 operations, got {len(ops)}")
    return ops


def op_fields(op: str, recipe: AugmentationConfig) -> dict[str, Any]:
    """The fields that switch ``op`` on, at the recipe's settings (its probability, or the paper's if it has none)."""
    if op == "crop":
        return {"crop_scale": recipe.crop_scale, "crop_ratio": recipe.crop_ratio}
    if op == "color":
        return {
            "jitter_p": recipe.jitter_p or DEFAULT_P["jitter_p"],
            "jitter_brightness": recipe.jitter_brightness,
            "jitter_contrast": recipe.jitter_contrast,
            "jitter_saturation": recipe.jitter_saturation,
            "jitter_hue": recipe.jitter_hue,
        }
    if op == "gray":
        return {"grayscale_p": recipe.grayscale_p or DEFAULT_P["grayscale_p"]}
    if op == "blur":
        return {
            "blur_p": recipe.blur_p or DEFAULT_P["blur_p"],
            "blur_kernel": recipe.blur_kernel,
            "blur_sigma": recipe.blur_sigma,
        }
    if op == "flip":
        return {"flip_p": recipe.flip_p or DEFAULT_P["flip_p"]}
    raise ConfigError(f"unknown augmentation operation {op!r}")


def aug_for(ops: tuple[str, ...] | list[str], recipe: AugmentationConfig) -> AugmentationConfig:
    """The ``none`` preset (every operation explicitly off) with ``ops`` on; normalisation and size as the recipe's."""
    base = augmentation_preset("none", crop_size=recipe.crop_size)
    base = replace(base, mean=recipe.mean, std=recipe.std, blur_kernel=recipe.blur_kernel, blur_sigma=recipe.blur_sigma)
    for op in ops:
        base = replace(base, **op_fields(op, recipe))
    return base.validate()


def cells(ops: list[str]) -> list[tuple[str, ...]]:
    """The reference (), each operation alone, each pair in the order given."""
    return [(), *((op,) for op in ops), *itertools.combinations(ops, 2)]


def cell_name(cell: tuple[str, ...]) -> str:
    return "abl-" + ("-".join(cell) if cell else "none")


def base_config(
    data: str,
    minutes: float,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    method: str = "simclr",
) -> TrainConfig:
    """The fast recipe of ``method`` on ``data`` with the budget; ``overrides`` (e.g. batch_size for tiny data) on top."""
    cfg = recipe_config("fast", data, method=method)
    cfg = replace(
        cfg,
        max_minutes=float(minutes),
        **({"seed": int(seed)} if seed is not None else {}),
        **{"val_limit": LAB_VAL_LIMIT, **(overrides or {})},
    )
    return cfg.validate()


def queue_ablation(
    runs_root: str | Path,
    data: str,
    ops: list[str] | str,
    minutes: float,
    *,
    seed: int | None = None,
    bank: str | None = None,
    scored: str | None = None,
    overrides: dict[str, Any] | None = None,
    method: str = "simclr",
) -> dict[str, Any]:
    """Queue every cell of the grid and save the plan; returns it ({id, ops, cells: [{ops, entry, aug}], ...}).

    ``method``: the objective every cell trains (the lesson is SimCLR's; the others show whether it holds
    for them too); supcon needs labelled training data (on unlabelled images each cell fails, saying so).
    """
    ops = parse_ops(ops)
    if not minutes > 0:
        raise ConfigError(f"minutes per run must be positive, got {minutes}")
    base = base_config(data, minutes, seed, overrides, method)
    bank, scored = eval_specs(data, bank, scored)
    ablation_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    queue = RunQueue(runs_root)
    planned = []
    for cell in cells(ops):
        cfg = replace(base, aug=aug_for(cell, base.aug))
        cfg.validate()
        planned.append((cell, cfg))
    plan: dict[str, Any] = {
        "id": ablation_id,
        "created_at": time.time(),
        "data": data,
        "ops": ops,
        "minutes_per_run": float(minutes),
        "recipe": "fast",
        "method": base.method,
        "seed": base.seed,
        "bank": bank,
        "scored": scored,
        "overrides": dict(overrides or {}),
        "cells": [],
    }
    group = GROUP_PREFIX + ablation_id
    for cell, cfg in planned:
        entry = queue.add(
            cfg,
            cell_name(cell),
            group=group,
            meta={"ablation": ablation_id, "ops": list(cell)},
            evaluate={"bank": bank, "scored": scored},
        )
        plan["cells"].append({"ops": list(cell), "entry": entry.id, "aug": cfg.aug.to_dict()})
    folder = Path(runs_root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / f"{ablation_id}.json", plan)
    return plan


def list_ablations(runs_root: str | Path) -> list[dict[str, Any]]:
    """Saved plans, newest first."""
    folder = Path(runs_root) / FOLDER
    plans = []
    for path in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        try:
            plan = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(plan, dict) and isinstance(plan.get("cells"), list):
            plans.append(plan)
    return plans


def _cell_state(cell: dict[str, Any], entries: dict[str, Entry], runs_root: Path) -> dict[str, Any]:
    entry = entries.get(cell["entry"])
    out: dict[str, Any] = {"ops": cell["ops"], "aug": cell["aug"], "entry": cell["entry"]}
    run_id = entry.run if entry is not None else cell.get("run")
    out["state"] = entry.state if entry is not None else ("finished" if run_id else "unknown")
    out["message"] = entry.message if entry is not None else ""
    out["run"] = str(runs_root / run_id) if run_id else None
    result = read_result(runs_root / run_id) if run_id and (runs_root / run_id).is_dir() else {}
    out["knn_acc"] = result.get("knn_acc")
    return out


def _runs_by_entry(runs_root: Path, wanted: set[str]) -> dict[str, str]:
    """Run directory names by the queue entry that made them (for entries cleared from the queue)."""
    from simclr_core.run_queue import entry_of_run
    from simclr_core.store import list_runs

    out = {}
    for run in list_runs(runs_root):
        made_by = entry_of_run(run).get("entry")
        if made_by in wanted:
            out[made_by] = run.id
    return out


def matrix(runs_root: str | Path, plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's cells as they stand now: the ``ablate --out`` object.

    ``matrix[i][j]``: kNN accuracy (fraction, None until scored) of ops[i] with ops[j], ops[i] alone
    on the diagonal; pairs fill both halves (the pipeline's order is fixed, so (a, b) is (b, a)).
    ``cells``: each cell's ops, state, kNN, run directory and augmentation config; ``reference``: no op.
    """
    root = Path(runs_root)
    entries = {e.id: e for e in RunQueue(root).entries()}
    missing = {c["entry"] for c in plan["cells"] if c["entry"] not in entries}
    found = _runs_by_entry(root, missing) if missing else {}
    cells_now = [_cell_state({**c, "run": found.get(c["entry"])}, entries, root) for c in plan["cells"]]
    ops = list(plan["ops"])
    grid: list[list[float | None]] = [[None] * len(ops) for _ in ops]
    runs: list[list[str | None]] = [[None] * len(ops) for _ in ops]
    reference = None
    for c in cells_now:
        if not c["ops"]:
            reference = c
            continue
        a = ops.index(c["ops"][0])
        b = ops.index(c["ops"][-1])
        for i, j in {(a, b), (b, a)}:
            grid[i][j], runs[i][j] = c["knn_acc"], c["run"]
    scored = sorted((c for c in cells_now if c["knn_acc"] is not None), key=lambda c: -c["knn_acc"])
    return {
        **{k: plan[k] for k in ("id", "data", "ops", "minutes_per_run", "recipe", "seed", "bank", "scored")},
        "method": plan.get("method", "simclr"),  # plans saved before methods were offered trained SimCLR
        "labels": [LABELS[o] for o in ops],
        "matrix": grid,
        "runs": runs,
        "reference": reference,
        "cells": cells_now,
        "ranking": [{"ops": c["ops"], "knn_acc": c["knn_acc"]} for c in scored],
        "done": all(c["state"] in ENDED for c in cells_now),
    }


def table(result: dict[str, Any]) -> str:
    """The matrix as text: kNN % per (row op, column op), the reference and the ranking."""
    labels = result["labels"]
    width = max(10, *(len(x) for x in labels)) + 1

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    lines = [
        f"kNN accuracy (%) on {result['scored']}, {method_label(result['method'])}, "
        f"{result['minutes_per_run']:g} min per run (row: 1st op, column: 2nd op)"
    ]
    lines.append("".ljust(width) + "".join(x.rjust(width) for x in labels))
    for label, row in zip(labels, result["matrix"], strict=True):
        lines.append(label.ljust(width) + "".join(pct(v).rjust(width) for v in row))
    ref = result.get("reference") or {}
    lines.append(f"no augmentation (reference): {pct(ref.get('knn_acc'))}")
    if result["ranking"]:
        best = result["ranking"][0]
        lines.append(f"best: {' + '.join(LABELS[o] for o in best['ops']) or 'none'} ({pct(best['knn_acc'])})")
    return "\n".join(lines)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def run_of(result: dict[str, Any], row: int, col: int) -> Run | None:
    path = result["runs"][row][col]
    return Run(path) if path else None
