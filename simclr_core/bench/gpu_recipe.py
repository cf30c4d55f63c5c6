"""The GPU section's recipe run: the fast recipe for a few minutes through the CLI, then kNN on a carved split.

``recipe_run`` is exactly ``python -m simclr_core train --recipe fast --max-minutes M`` on the train
split of an image archive; ``run_dir_problems`` checks the run directory against the store's
contract; ``knn_on_splits`` scores the trained and a random-init encoder (bank = the train split,
queries = the test split).
"""

from __future__ import annotations

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

from simclr_core.bench.core import ROOT, resolve_device


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
