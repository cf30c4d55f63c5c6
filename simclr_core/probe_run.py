"""A probe of one encoder, end to end: the one path behind ``probe`` (CLI) and the dashboard's Probe page.

``probe_report`` encodes the labelled splits, runs the probe sweep (+ kNN) and, on the same
subsets, the random-init encoder's; ``run_probe`` adds what a run needs around it: the
labelled splits of the run's source as defaults, the optional supervised baseline, and
``<run>/probe.json``, which the dashboard reads back without recomputing. Both report their
stage as a :class:`ProbeStage` value, so callers draw progress without matching messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from simclr_core.config import ConfigError
from simclr_core.features import (
    FeatureSet,
    RandomInit,
    checkpoint_identity,
    default_eval_specs,
    eval_side,
    features_for,
    run_dir_of,
)
from simclr_core.model import load_checkpoint
from simclr_core.probe import DEFAULT_SIZES, ProbeConfig, SweepResult, make_plan, probe_sweep

Source = str | Path | RandomInit  # a checkpoint file or a random-init encoder


class ProbeStage(Enum):
    """What a probe is doing; ``fraction`` is about how much of it is done when the stage starts."""

    ENCODE_TRAIN = ("encoding the training split", 0.05)
    ENCODE_TEST = ("encoding the test split", 0.3)
    PROBE = ("probing", 0.5)
    RANDOM_INIT = ("random-init baseline", 0.7)
    SUPERVISED = ("supervised baseline", 0.9)

    def __init__(self, label: str, fraction: float) -> None:
        self.label = label
        self.fraction = fraction


StageCallback = Callable[[ProbeStage], None]
StepProgress = Callable[[str, float], None]  # (message, fraction of the current step)


@dataclass(frozen=True)
class Baseline:
    """The seed's supervised ResNet trained beside the probe (``probe --baseline supervised``)."""

    runs_root: Path  # where its own run directory goes
    max_minutes: float
    sizes: tuple[int, ...] | None = None  # images per class; default: the largest size probed


def _table(encoder: SweepResult, baseline: SweepResult | None) -> list[dict[str, Any]]:
    """One flat row per size for plots and CSV: ``probe_*``, ``knn_*`` and ``random_*`` means/stds."""
    rows = []
    base = {s["size"]: s for s in baseline.summary} if baseline else {}
    for s in encoder.summary:
        row: dict[str, Any] = {"size": s["size"]}
        for key, value in s.items():
            if key.endswith(("_mean", "_std")):
                row[key if key.startswith("knn_") else f"probe_{key}"] = value
        for key, value in base.get(s["size"], {}).items():
            if key.endswith(("_mean", "_std")):
                row[f"random_{key}" if key.startswith("knn_") else f"random_probe_{key}"] = value
        rows.append(row)
    return rows


def encoder_hparams(source: Source) -> dict[str, Any]:
    """The architecture of ``source`` (backbone, small_input, image_size, hidden_dim, ...)."""
    return asdict(source) if isinstance(source, RandomInit) else dict(load_checkpoint(source).hparams)


def probe_report(
    source: Source,
    train_data: str,
    test_data: str,
    sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES,
    repeats: int = 3,
    which: str = "h",
    subset: str = "random",
    val_fraction: float = 0.0,
    seed: int = 0,
    knn_k: int | None = 20,
    random_baseline: bool = True,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    cfg: ProbeConfig | None = None,
    progress: StageCallback | None = None,
    steps: StepProgress | None = None,
) -> dict[str, Any]:
    """Features -> probe sweep (+ kNN) for ``source`` and, on the same subsets, for a random-init encoder.

    ``source``: a checkpoint path or :class:`simclr_core.features.RandomInit`. Returns the JSON
    object that ``probe --json`` prints and probe.json stores (fields documented in
    :mod:`simclr_core.commands.probe`). ``progress(stage)`` is called as each stage starts;
    ``steps(message, fraction)`` within stages: the datasets' download and decoding, images encoded
    (``"encoding the training split (512/5000 images)"``) and sizes probed (``"probing (2/6 sizes)"``).
    """

    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")

    def say(stage: ProbeStage) -> None:
        if progress is not None:
            progress(stage)

    def counted(label: str, unit: str) -> Callable[[int, int], None] | None:
        if steps is None:
            return None
        return lambda done, total: steps(f"{label} ({done}/{total} {unit})", done / total if total else 1.0)

    def features(src: Source, spec: str, size: int | None, label: str) -> FeatureSet:
        return features_for(
            src, spec, which, size, device=device, progress=counted(label, "images"), data_progress=steps
        )

    t0 = time.time()
    say(ProbeStage.ENCODE_TRAIN)
    train = features(source, train_data, image_size, ProbeStage.ENCODE_TRAIN.label)
    say(ProbeStage.ENCODE_TEST)
    test = features(source, test_data, image_size, ProbeStage.ENCODE_TEST.label)
    t_feats = time.time() - t0
    plan = make_plan(train.labels, sizes, repeats, subset, val_fraction, seed)
    say(ProbeStage.PROBE)
    t1 = time.time()
    enc = probe_sweep(
        train.feats,
        train.labels,
        test.feats,
        test.labels,
        cfg=cfg,
        knn_k=knn_k,
        plan=plan,
        seed=seed,
        device=device,
        progress=counted(ProbeStage.PROBE.label, "sizes"),
    )
    t_probe = time.time() - t1
    base = None
    if isinstance(source, RandomInit):
        arch, src = source, {"kind": "random_init", **source.identity()["random_init"]}
        random_baseline = False
    else:
        ckpt = load_checkpoint(source)
        hp = ckpt.hparams
        run_dir = run_dir_of(source)
        src = {
            "kind": "checkpoint",
            **checkpoint_identity(source),
            "run": str(run_dir) if run_dir else None,
            "format": ckpt.source,
            "method": hp.get("method", "simclr"),  # the training objective (simclr_core/methods)
            "epoch": ckpt.epoch,
            "global_step": ckpt.global_step,
        }
        arch = RandomInit(
            hp.get("backbone", "resnet18"),
            bool(hp.get("small_input", False)),
            int(image_size or eval_side(hp) or 96),
            int(hp.get("hidden_dim", 128)),
            seed,
        )
    if random_baseline:
        say(ProbeStage.RANDOM_INIT)
        random_label = ProbeStage.RANDOM_INIT.label
        rtrain = features(
            arch, train_data, image_size or arch.image_size, f"{random_label}: encoding the training split"
        )
        rtest = features(arch, test_data, image_size or arch.image_size, f"{random_label}: encoding the test split")
        base = probe_sweep(
            rtrain.feats,
            rtrain.labels,
            rtest.feats,
            rtest.labels,
            cfg=cfg,
            knn_k=knn_k,
            plan=plan,
            seed=seed,
            device=device,
            progress=counted(f"{random_label}: probing", "sizes"),
        )
    return {
        "source": src,
        "features": which,
        "train_data": train_data,
        "test_data": test_data,
        "image_size": int(train.meta.get("image_size") or image_size or arch.image_size),
        "n_train": int(train.feats.shape[0]),
        "n_test": int(test.feats.shape[0]),
        "feature_dim": int(train.feats.shape[1]),
        "classes": [train.classes[c] for c in plan.classes] if train.classes else plan.classes,
        "sizes": plan.sizes,
        "requested_sizes": plan.requested,
        "max_per_class": plan.max_per_class,
        "capped": plan.capped,
        "repeats": plan.repeats,
        "subset": plan.subset,
        "seed": seed,
        "selection": enc.selection,
        "val_size": enc.val_size,
        "knn_k": knn_k,
        "probe": enc.probe,
        "table": _table(enc, base),
        "encoder": enc.to_dict(),
        "random_init": base.to_dict() if base else None,
        "supervised": None,
        "timing_s": {"features": t_feats, "probe": t_probe, "total": time.time() - t0},
        "created_at": time.time(),
    }


def labelled_splits(run_dir: Path | None, train_data: str | None, test_data: str | None) -> tuple[str, str]:
    """The given specs, else the labelled train/test splits of the source the run was trained on."""
    train_default, test_default = default_eval_specs(run_dir)
    train_data, test_data = train_data or train_default, test_data or test_default
    if not train_data or not test_data:
        raise ConfigError(
            "no labelled train/test split to probe on: name both labelled dataset specs (e.g. shapes:train and "
            "shapes:test)" + (f"; {run_dir.name}'s training data has none" if run_dir is not None else "")
        )
    return train_data, test_data


def run_probe(
    source: Source,
    run_dir: Path | None = None,
    train_data: str | None = None,
    test_data: str | None = None,
    *,
    baseline: Baseline | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Probe ``source`` (from ``features.resolve_source``) and, when it belongs to a run, write ``<run>/probe.json``.

    ``train_data``/``test_data`` default to the labelled splits of the run's source (ConfigError
    when there are none). ``options`` are :func:`probe_report`'s keyword arguments (sizes, repeats,
    which, subset, val_fraction, seed, knn_k, random_baseline, image_size, device, cfg, progress,
    steps). With ``baseline`` the supervised ResNet trains too (blocking; Ctrl-C ends it early,
    evaluated) and its results land in the report's ``supervised``.
    """
    train_data, test_data = labelled_splits(run_dir, train_data, test_data)
    report = probe_report(source, train_data, test_data, **options)
    progress = options.get("progress")
    if baseline is not None:
        if progress is not None:
            progress(ProbeStage.SUPERVISED)
        report["supervised"] = _supervised(
            source, report, baseline, options.get("val_fraction", 0.0), options.get("device")
        )
    if run_dir is not None:
        from simclr_core.store import Run

        Run(run_dir).write_json("probe.json", report)
    return report


def _supervised(
    source: Source, report: dict[str, Any], baseline: Baseline, val_fraction: float, device: str | None
) -> dict[str, Any]:
    """The baseline on the report's data; with the report's seed it trains on the probe's repeat-0 subsets."""
    from simclr_core.supervised import SupervisedJob, baseline_config

    cfg = baseline_config(
        encoder_hparams(source),
        report["train_data"],
        report["test_data"],
        list(baseline.sizes or [max(report["sizes"])]),
        baseline.max_minutes,
        subset=report["subset"],
        val_fraction=val_fraction,
        seed=report["seed"],
        image_size=report["image_size"],
        device=device or "auto",
    )
    job = SupervisedJob(cfg, baseline.runs_root).start()
    result = job.wait()
    assert job.run is not None
    return {
        "run": str(job.run.path),
        "results": result["results"] if result else [],
        "max_minutes": baseline.max_minutes,
    }
