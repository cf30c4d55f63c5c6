"""A run's score for comparisons (ablation cells, augmentation tries): the kNN of ``bench quality``.

The same number as the kNN column of ``bench quality`` and of ``probe`` at all labels: the
backbone features ``h`` of ``last.ckpt``, a cosine k=20 vote (temperature 0.07) with every
labelled image of the bank split as the memory bank, scored on a held-out labelled split. The
scored split must never be a benchmark's test set (choices are made on it): for the built-in
``shapes`` it is the generated ``shapes:test``, for an image folder or archive the split carved
from it (``?split=test``), and ``cifar10``/``stl10`` from torchvision need a carved split named.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from simclr_core.config import ConfigError

RESULT_FILE = "knn_eval.json"
K = 20


def eval_specs(data: str, bank: str | None = None, scored: str | None = None) -> tuple[str, str]:
    """(bank, scored) for a training spec: the given ones, else its labelled train and held-out splits."""
    from simclr_core.data.spec import parse_spec, sibling_spec

    kind = parse_spec(data).kind
    if bank is None:
        bank = sibling_spec(data, "train")
    if scored is None:
        if kind in ("cifar10", "stl10"):
            raise ConfigError(
                f"{kind}'s test split is a benchmark's test set, not for choosing augmentations; name a carved "
                "held-out split to score on (e.g. an image archive's '?split=test')"
            )
        scored = sibling_spec(data, "test")
    return bank, scored


def evaluate_run(run_dir: str | Path, bank: str | None = None, scored: str | None = None, k: int = K) -> dict[str, Any]:
    """kNN accuracy of the run's last.ckpt; written to ``<run>/knn_eval.json`` and returned.

    Returns {knn_acc (fraction), bank, scored, k, n_bank, n_scored, checkpoint, seconds}.
    """
    import torch

    from simclr_core.features import features_for, resolve_source
    from simclr_core.knn import knn_accuracy
    from simclr_core.store import Run

    t0 = time.time()
    run = Run(run_dir)
    bank, scored = eval_specs(str(run.train_config.get("data") or ""), bank, scored)
    source, _ = resolve_source(run=run.path, which_checkpoint="last")
    b = features_for(source, bank, "h", cache=False)
    s = features_for(source, scored, "h", cache=False)
    bank_mask, scored_mask = b.labels >= 0, s.labels >= 0
    if int(bank_mask.sum()) < 2 or not bool(scored_mask.any()):
        raise ConfigError(f"kNN needs labelled images in both {bank!r} and {scored!r}")
    labels = b.labels[bank_mask]
    n_classes = int(torch.cat([labels, s.labels[scored_mask]]).max()) + 1
    acc = knn_accuracy(
        b.feats[bank_mask],
        labels,
        s.feats[scored_mask],
        s.labels[scored_mask],
        k=min(k, len(labels)),
        num_classes=n_classes,
    )
    result = {
        "knn_acc": acc,
        "bank": bank,
        "scored": scored,
        "k": k,
        "n_bank": len(labels),
        "n_scored": int(scored_mask.sum()),
        "checkpoint": str(source),
        "seconds": round(time.time() - t0, 2),
        "created_at": time.time(),
    }
    run.write_json(RESULT_FILE, result)
    return result


def read_result(run_dir: str | Path) -> dict[str, Any]:
    """``<run>/knn_eval.json``, or {} before the evaluation ran."""
    from simclr_core.store import Run

    return Run(run_dir).read_object(RESULT_FILE)
