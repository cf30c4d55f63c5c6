""" "Try these augmentations": a short fast-recipe run of the Augment page's settings, scored, on a leaderboard.

A try is a queue entry of group ``try`` (the fast recipe on the chosen data with the given
augmentation and budget, kNN-scored when it finishes); its meta keeps the preset it started
from, so the leaderboard can say what changed. Tries outlive the queue: a cleared entry is
found again through its run's ``queue_entry.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from simclr_core.ablation import base_config
from simclr_core.config import PRESETS, AugmentationConfig, ConfigError
from simclr_core.knn_eval import eval_specs, read_result
from simclr_core.run_queue import Entry, RunQueue, entry_of_run
from simclr_core.store import Run, list_runs

GROUP = "try"


def _range(lo: float, hi: float, pct: bool = False) -> str:
    f = (lambda v: f"{100 * v:g} %") if pct else (lambda v: f"{v:g}")
    return f(lo) if lo == hi else f"{f(lo)}–{f(hi)}"


def describe(aug: AugmentationConfig) -> str:
    """The augmentation in words, operation by operation, in the order they apply."""
    parts = [f"flip p={aug.flip_p:g}" if aug.flip_p else "no flip"]
    if tuple(aug.crop_scale) == (1.0, 1.0) and tuple(aug.crop_ratio) == (1.0, 1.0):
        parts.append("no crop (whole image)")
    else:
        parts.append(f"crop {_range(*aug.crop_scale, pct=True)} of the area, aspect {_range(*aug.crop_ratio)}")
    if aug.jitter_p:
        strengths = "/".join(
            f"{v:g}" for v in (aug.jitter_brightness, aug.jitter_contrast, aug.jitter_saturation, aug.jitter_hue)
        )
        parts.append(f"colour jitter p={aug.jitter_p:g} ({strengths})")
    else:
        parts.append("no colour jitter")
    parts.append(f"grayscale p={aug.grayscale_p:g}" if aug.grayscale_p else "no grayscale")
    if aug.blur_p:
        parts.append(f"blur p={aug.blur_p:g} ({aug.blur_kernel} px, σ {_range(*aug.blur_sigma)})")
    else:
        parts.append("no blur")
    return ", ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "–".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def diff(aug: AugmentationConfig, preset: str) -> list[str]:
    """``field old → new`` for every setting that differs from the preset (the output size aside)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(PRESETS)}")
    base, now = PRESETS[preset].to_dict(), aug.to_dict()
    return [
        f"{name} {_show(base[name])} → {_show(now[name])}"
        for name in now
        if name != "crop_size" and now[name] != base[name]
    ]


def queue_try(
    runs_root: str | Path,
    data: str,
    aug: AugmentationConfig,
    preset: str,
    minutes: float,
    overrides: dict[str, Any] | None = None,
    bank: str | None = None,
    scored: str | None = None,
    method: str = "simclr",
) -> Entry:
    """Queue a fast-recipe run of ``aug`` on ``data`` for ``minutes`` with ``method``, kNN-scored when it finishes."""
    if not minutes > 0:
        raise ConfigError(f"a try needs a positive time budget, got {minutes} minutes")
    bank, scored = eval_specs(data, bank, scored)
    cfg = base_config(data, minutes, overrides=overrides, method=method)
    cfg.aug = replace(aug, crop_size=cfg.image_size).validate()
    cfg.validate()
    return RunQueue(runs_root).add(
        cfg,
        "try",
        group=GROUP,
        meta={"preset": preset, "words": describe(cfg.aug), "diff": diff(cfg.aug, preset)},
        evaluate={"bank": bank, "scored": scored},
    )


def leaderboard(runs_root: str | Path) -> list[dict[str, Any]]:
    """Every try, best kNN first (unscored ones last, newest first among them).

    Each row: entry, state, run (directory name or None), method, preset, words, diff, knn_acc, minutes, added_at.
    """
    root = Path(runs_root)
    rows: dict[str, dict[str, Any]] = {}
    for e in RunQueue(root).entries():
        if e.group == GROUP:
            rows[e.id] = _row(e.id, e.state, e.run, e.meta, e.config, e.added_at)
    for run in list_runs(root):
        made = entry_of_run(run)
        if made.get("group") == GROUP and made.get("entry") not in rows:
            status = run.status()
            rows[made["entry"]] = _row(
                made["entry"],
                str(status.get("state")),
                run.id,
                made.get("meta") or {},
                run.train_config,
                float(status.get("created_at") or 0.0),
            )
    for row in rows.values():
        row["knn_acc"] = read_result(root / row["run"]).get("knn_acc") if row["run"] else None
    return sorted(rows.values(), key=lambda r: (r["knn_acc"] is None, -(r["knn_acc"] or 0.0), -r["added_at"]))


def _row(
    entry: str, state: str, run: str | None, meta: dict[str, Any], config: dict[str, Any], added: float
) -> dict[str, Any]:
    return {
        "entry": entry,
        "state": state,
        "run": run,
        "method": str(config.get("method") or "simclr"),
        "preset": meta.get("preset", ""),
        "words": meta.get("words", ""),
        "diff": list(meta.get("diff") or []),
        "minutes": config.get("max_minutes"),
        "added_at": added,
    }


def runs_of(rows: list[dict[str, Any]], runs_root: str | Path) -> list[Run]:
    return [Run(Path(runs_root) / r["run"]) for r in rows if r["run"]]
