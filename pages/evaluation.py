"""The Embeddings and Probe pages' helpers: frozen feature sets, maps, neighbours, probe and baseline jobs.

Results are cached per checkpoint (``_memo``, and the engine's files in the run directory), so
moving between pages or widgets never recomputes what is already known.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from pages import figures
from pages.ui import (
    STATE_ICONS,
    Task,
    attempt,
    data_root,
    eta_text,
    jobs,
    list_runs,
    open_run,
    run_state,
    runs_root,
    start_job,
    to_hwc,
    umap_ready,
)
from simclr_core.config import ConfigError

# ---------------------------------------------------------------------------------------------- embeddings

PROJECTIONS = {
    "UMAP 2-D": ("umap", 2),
    "UMAP 3-D": ("umap", 3),
    "PCA 2-D": ("pca", 2),
    "PCA 3-D": ("pca", 3),
    "t-SNE 2-D": ("tsne", 2),
}


class _Memo:
    """A small LRU of computed results shared by every session (features, maps) so reruns are instant."""

    def __init__(self, size: int = 12) -> None:
        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, key: tuple) -> Any:
        with self.lock:
            if key in self.items:
                self.items[key] = self.items.pop(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.pop(next(iter(self.items)))


@st.cache_resource
def _memo() -> _Memo:
    return _Memo()


def eval_specs(run: Any) -> tuple[str | None, str | None]:
    from simclr_core.features import default_eval_specs

    return attempt("find the labelled splits of this run", default_eval_specs, run.path) or (None, None)


def run_checkpoint(run: Any, which: str) -> Path | None:
    return run.checkpoint(which) or run.checkpoint("best" if which == "last" else "last")


def run_image_size(run: Any) -> int:
    return int(run.train_config.get("image_size") or 96)


def _ckpt_key(ckpt: Path) -> tuple:
    try:
        st_ = Path(ckpt).stat()
        return str(ckpt), st_.st_mtime_ns, st_.st_size
    except OSError:
        return str(ckpt), 0, 0


def feature_set(ckpt: Path, spec: str, which: str) -> Any:
    """Frozen features of a split, with a progress bar the first time (then memory, then the disk cache)."""
    from simclr_core.features import features_for

    key = ("feats", *_ckpt_key(ckpt), spec, which)
    found = _memo().get(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=f"Encoding {spec} with {Path(ckpt).name} ...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Encoding {spec}: {done:,} / {total:,} images")

    fs = attempt(f"encode {spec}", features_for, ckpt, spec, which, progress=progress)
    bar.empty()
    if fs is not None:
        _memo().put(key, fs)
    return fs


def embedding(ckpt: Path, spec: str, which: str, method_label: str, points: int) -> Any:
    from simclr_core.projection import embedding_table

    method, dims = PROJECTIONS[method_label]
    key = ("map", *_ckpt_key(ckpt), spec, which, method, dims, points)
    found = _memo().get(key)
    if found is not None:
        return found
    fs = feature_set(ckpt, spec, which)
    if fs is None:
        return None
    note = " (UMAP compiles on first use: up to a minute)" if method == "umap" and not umap_ready() else ""
    with st.spinner(f"Computing the {method_label} map of {min(points, fs.feats.shape[0]):,} points{note} ..."):
        table = attempt(f"compute the {method_label} map", embedding_table, fs, method, dims, points)
    if table is not None:
        _memo().put(key, table)
    return table


def feature_knn(ckpt: Path, spec: str, which: str) -> float | None:
    """kNN accuracy within the split: even-indexed images are the memory bank, odd ones the queries."""
    from simclr_core.knn import knn_accuracy

    key = ("knn", *_ckpt_key(ckpt), spec, which)
    found = _memo().get(key)
    if found is not None:
        return found
    fs = feature_set(ckpt, spec, which)
    if fs is None or fs.feats.shape[0] < 4:
        return None
    acc = attempt(
        "compute the kNN accuracy",
        knn_accuracy,
        fs.feats[0::2],
        fs.labels[0::2],
        fs.feats[1::2],
        fs.labels[1::2],
        k=20,
        num_classes=len(fs.classes) or None,
    )
    if acc is not None:
        _memo().put(key, acc)
    return acc


def selected_indices(event: Any) -> list[int]:
    """Dataset indices of the points selected on the map (box, lasso or click)."""
    try:
        points = event.selection.points  # type: ignore[union-attr]
    except AttributeError:
        return []
    out = []
    for p in points or []:
        value = p.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int | float):
            out.append(int(value))
    return list(dict.fromkeys(out))


def class_of(fs: Any, index: int) -> str:
    label = int(fs.labels[index])
    return fs.classes[label] if 0 <= label < len(fs.classes) else "unlabelled"


def neighbours(fs: Any, index: int, k: int) -> tuple[list[int], list[float]]:
    from simclr_core.projection import nearest_neighbours

    idx, sims = nearest_neighbours(fs.feats, index, k)
    return [int(i) for i in idx], [float(s) for s in sims]


def thumbnail_grid(
    images: Any,
    indices: list[int],
    classes: list[str],
    labels: Any,
    similarities: list[float] | None = None,
    per_row: int = 12,
) -> None:
    if images is None:
        return
    for start in range(0, len(indices), per_row):
        cols = st.columns(per_row)
        for j, i in enumerate(indices[start : start + per_row]):
            label = int(labels[i])
            name = classes[label] if 0 <= label < len(classes) else ""
            caption = name + (f" · {similarities[start + j]:.2f}" if similarities is not None else "")
            cols[j].image(to_hwc(images.images[i]), caption=caption, width="stretch")


# ---------------------------------------------------------------------------------------------- probe

PROBE_SIZES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
_STAGES = {
    "encoding the training split": 0.05,
    "encoding the test split": 0.3,
    "probing": 0.5,
    "random-init baseline": 0.7,
}


def probe_candidates() -> list[str]:
    """SimCLR runs that have a checkpoint (the only ones a probe can read)."""
    return [r.id for r in list_runs() if r.kind == "simclr" and (r.checkpoint("last") or r.checkpoint("best"))]


def start_probe(
    run_ids: list[str], sizes: list[int], repeats: int, which: str, ckpt: str, train: str | None, test: str | None
) -> Task | None:
    """Probe each run in a background thread; each result is written to its run's probe.json."""
    from simclr_core.features import default_eval_specs, resolve_source
    from simclr_core.probe import probe_report
    from simclr_core.store import Run

    root = runs_root()

    def work(task: Task) -> list[str]:
        done = []
        for i, run_id in enumerate(run_ids):
            source, run_dir = resolve_source(run=root / run_id, which_checkpoint=ckpt)
            tr_default, te_default = default_eval_specs(run_dir)
            tr, te = train or tr_default, test or te_default
            if not tr or not te:
                raise ConfigError(
                    f"{run_id}: its data has no labelled train/test split; give both specs under *Labelled data*"
                )

            def say(msg: str, i: int = i, run_id: str = run_id) -> None:
                task.report((i + _STAGES.get(msg, 0.5)) / len(run_ids), f"{run_id}: {msg}")

            report = probe_report(source, tr, te, sizes, repeats, which, progress=say)
            Run(run_dir).write_json("probe.json", report)
            done.append(run_id)
        return done

    label = ", ".join(run_ids) if len(run_ids) <= 2 else f"{len(run_ids)} runs"
    task = attempt("start the probe", jobs().start_task, "probe", f"Probe of {label}", work)
    return task


@st.fragment(run_every=1.0)
def probe_progress() -> None:
    task = jobs().tasks.get("probe")
    if task is None:
        return
    seen = st.session_state.setdefault("_probe_seen", set())
    if task.alive():
        st.progress(task.progress, text=f"{task.name}: {task.message}")
    elif id(task) not in seen:
        seen.add(id(task))
        if task.error:
            st.session_state["_probe_error"] = f"{task.name} failed: {task.error}"
        st.rerun(scope="app")  # the results below come from the files just written
    if st.session_state.get("_probe_error") and not task.alive():
        st.error(st.session_state["_probe_error"])


def _probe_report(run_id: str) -> dict[str, Any] | None:
    run = open_run(run_id)
    report = run.read_json("probe.json") if run is not None else None
    return report if isinstance(report, dict) and report.get("table") else None


def _supervised_points(train_data: str) -> list[dict[str, Any]]:
    points = []
    for run in list_runs():
        if run.kind != "supervised" or run.train_config.get("train_data") != train_data:
            continue
        results = run.read_json("results.json") or {}
        for r in results.get("results") or []:
            if isinstance(r.get("test_acc"), int | float):
                points.append({"run": run.id, **r})
    return points


def probe_results(run_ids: list[str]) -> None:
    """The figure, table and CSV of the chosen runs' probe.json (instant: nothing is recomputed)."""
    reports = {rid: rep for rid in run_ids if (rep := _probe_report(rid)) is not None}
    missing = [rid for rid in run_ids if rid not in reports]
    if missing:
        st.caption("No probe results yet for " + ", ".join(missing) + ": press *Run probe*.")
    if not reports:
        return
    supervised = _supervised_points(next(iter(reports.values())).get("train_data", ""))
    st.plotly_chart(figures.probe_figure(reports, supervised), width="stretch", key="chart.probe")
    rows = figures.probe_table(reports)
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={k: pct for k in ("probe test acc", "± std", "probe train acc", "kNN acc", "random-init probe")},
    )
    import pandas as pd

    st.download_button(
        "Download CSV",
        pd.DataFrame(rows).to_csv(index=False),
        file_name="probe.csv",
        mime="text/csv",
        icon=":material/download:",
        key="btn.probe_csv",
    )
    capped = [rid for rid, rep in reports.items() if rep.get("capped")]
    if capped:
        st.caption(f"Sizes were capped at what the training split holds for: {', '.join(capped)}.")


def start_supervised(run_id: str, size: int, minutes: float, train: str | None, test: str | None) -> Any:
    """The supervised baseline for a run's data, in the server's one training slot."""
    from simclr_core.features import default_eval_specs
    from simclr_core.supervised import SupervisedConfig, SupervisedJob

    run = open_run(run_id)
    if run is None:
        return None
    tr_default, te_default = default_eval_specs(run.path)
    cfg = run.train_config
    sup = SupervisedConfig(
        train_data=train or tr_default or "shapes:train",
        test_data=test or te_default or "shapes:test",
        sizes=[int(size)],
        image_size=int(cfg.get("image_size") or 96),
        backbone=cfg.get("backbone", "resnet18"),
        small_input=bool(cfg.get("small_input")),
        max_minutes=float(minutes),
    )
    return start_job(
        lambda: SupervisedJob(sup, runs_root(), name=f"supervised-{size}"), what="start the supervised baseline"
    )


@st.fragment(run_every=1.5)
def supervised_progress() -> None:
    job = jobs().training_job()
    if job is None or getattr(job.job, "run", None) is None or job.job.run.kind != "supervised":
        return
    status = run_state(job.job.run)
    state = status.get("state", "?")
    if job.alive():
        st.progress(
            float(status.get("progress") or 0.0),
            text=f"{job.name}: {state}, ETA {eta_text(status.get('eta_s'))} {status.get('message') or ''}",
        )
        if st.button("Stop baseline", icon=":material/stop:", key="btn.stop_supervised"):
            job.job.stop()
    else:
        st.caption(f"{STATE_ICONS.get(state, '')} {job.name}: {state}. {status.get('message') or ''}")
        seen = st.session_state.setdefault("_sup_seen", set())
        if job.name not in seen:
            seen.add(job.name)
            st.rerun(scope="app")


def uploaded_checkpoint(upload: Any) -> Path | None:
    """Save an uploaded checkpoint under the data root (named by its content) once it loads; else say why."""

    from simclr_core.model import load_checkpoint

    data = upload.getvalue()
    folder = data_root() / "uploads"
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.ckpt"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        if attempt(f"use {upload.name}", load_checkpoint, tmp) is None:
            tmp.unlink(missing_ok=True)
            return None
        tmp.replace(path)
    return path
