"""The Probe page's work: probe runs in the background, show their probe.json, train the supervised baseline.

The probe is the engine's ``run_probe`` (the CLI's path) run as a task; it writes each run's
probe.json (a checkpoint file's report: ``<data root>/probes/``), and the results shown come from
those files, so a later visit redraws them without recomputing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboard import figures
from dashboard.errors import attempt, describe_error, log
from dashboard.jobs import jobs, start_job
from dashboard.services import list_runs, open_run, run_state
from dashboard.state import runs_root
from dashboard.widgets import STATE_ICONS, eta_text

if TYPE_CHECKING:
    from dashboard.jobs import RunJob
    from simclr_core.jobs import Job

PROBE_SIZES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
Report = figures.Report


def probe_candidates() -> list[str]:
    """SimCLR runs that have a checkpoint (the only ones a probe can read)."""
    return [r.id for r in list_runs() if r.kind == "simclr" and (r.checkpoint("last") or r.checkpoint("best"))]


def start_probe(
    run_ids: list[str], sizes: list[int], repeats: int, which: str, ckpt: str, train: str | None, test: str | None
) -> Job[list[str]] | None:
    """Probe each run in a background task; each result is written to its run's probe.json."""
    from dashboard.paths import check_data
    from simclr_core.features import resolve_source
    from simclr_core.probe_run import ProbeStage, run_probe

    if attempt("check the data folders", lambda: check_data(train, test) or True) is None:
        return None
    root = runs_root()

    def work(task: Job[list[str]]) -> list[str]:
        done: list[str] = []
        for i, run_id in enumerate(run_ids):

            def stage(s: ProbeStage, i: int = i, run_id: str = run_id) -> None:
                task.report((i + s.fraction) / len(run_ids), f"{run_id}: {s.label}")

            source, run_dir = resolve_source(run=root / run_id, which_checkpoint=ckpt)
            run_probe(source, run_dir, train, test, sizes=sizes, repeats=repeats, which=which, progress=stage)
            done.append(run_id)
        return done

    label = ", ".join(run_ids) if len(run_ids) <= 2 else f"{len(run_ids)} runs"
    return attempt("start the probe", jobs().start_task, "probe", f"Probe of {label}", work)


def checkpoint_report_path(ckpt: Path) -> Path:
    """Where a checkpoint file's probe report lives (it has no run directory): ``<data root>/probes/<id>.json``.

    Named by the checkpoint's identity (path, mtime, size), so a changed file is probed afresh.
    """
    from simclr_core.data import data_root
    from simclr_core.features import checkpoint_identity

    ident = json.dumps(checkpoint_identity(ckpt), sort_keys=True).encode()
    return data_root() / "probes" / f"{hashlib.sha256(ident).hexdigest()[:16]}.json"


def start_checkpoint_probe(
    ckpt: Path, label: str, sizes: list[int], repeats: int, which: str, train: str, test: str
) -> Job[list[str]] | None:
    """Probe a checkpoint file (an upload, the tutorial's SimCLR.ckpt) in a background task; see checkpoint_report."""
    from dashboard.paths import check_data
    from simclr_core.probe_run import ProbeStage, run_probe
    from simclr_core.store import write_json_atomic

    if attempt("check the data folders", lambda: check_data(train, test) or True) is None:
        return None
    target = checkpoint_report_path(ckpt)

    def work(task: Job[list[str]]) -> list[str]:
        def stage(s: ProbeStage) -> None:
            task.report(s.fraction, f"{label}: {s.label}")

        report = run_probe(ckpt, None, train, test, sizes=sizes, repeats=repeats, which=which, progress=stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(target, report)
        return [label]

    return attempt("start the probe", jobs().start_task, "probe", f"Probe of {label}", work)


def checkpoint_report(ckpt: Path) -> Report | None:
    """The last probe report of this checkpoint file, or None."""
    try:
        report = json.loads(checkpoint_report_path(ckpt).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("table") else None


@st.fragment(run_every=1.0)
def probe_progress() -> None:
    """The running probe's progress bar; when it ends, a rerun of the page shows the new results."""
    task = jobs().tasks.get("probe")
    if task is None:
        return
    seen = st.session_state.setdefault("_probe_seen", set())
    if task.is_alive():
        st.progress(task.progress.fraction, text=f"{task.label}: {task.progress.message}")
    elif id(task) not in seen:
        seen.add(id(task))
        if task.error is not None:
            log.error("%s failed", task.label, exc_info=task.error)
            st.session_state["_probe_error"] = f"{task.label} failed: {describe_error(task.error)}"
        st.rerun(scope="app")  # the results below come from the files just written
    if st.session_state.get("_probe_error") and not task.is_alive():
        st.error(st.session_state["_probe_error"])


def _probe_report(run_id: str) -> Report | None:
    run = open_run(run_id)
    report = run.read_json("probe.json") if run is not None else None
    return report if isinstance(report, dict) and report.get("table") else None


def _supervised_points(train_data: str) -> list[dict[str, Any]]:
    """The supervised baseline's results on the same training data, one point per size."""
    points = []
    for run in list_runs():
        if run.kind != "supervised" or run.train_config.get("train_data") != train_data:
            continue
        results = run.read_json("results.json") or {}
        for r in results.get("results") or []:
            if isinstance(r.get("test_acc"), int | float):
                points.append({"run": run.id, **r})
    return points


def probe_results(run_ids: list[str], checkpoints: dict[str, Report | None] | None = None) -> None:
    """The figure, table and CSV of the chosen runs' probe.json and of checkpoint files' reports (label: report).

    Instant: nothing is recomputed.
    """
    reports = {rid: rep for rid in run_ids if (rep := _probe_report(rid)) is not None}
    reports.update({label: rep for label, rep in (checkpoints or {}).items() if rep is not None})
    missing = [rid for rid in [*run_ids, *(checkpoints or {})] if rid not in reports]
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


def start_supervised(run_id: str, size: int, minutes: float, train: str | None, test: str | None) -> RunJob | None:
    """The supervised baseline for a run's encoder and data, in the server's one training slot."""
    from dashboard.paths import check_data
    from simclr_core.probe_run import labelled_splits
    from simclr_core.supervised import SupervisedJob, baseline_config

    run = open_run(run_id)
    if run is None:
        return None
    if attempt("check the data folders", lambda: check_data(train, test) or True) is None:
        return None
    splits = attempt("find the labelled data", labelled_splits, run.path, train, test)
    if splits is None:
        return None
    cfg = baseline_config(run.train_config, *splits, [int(size)], float(minutes))
    root = runs_root()
    return start_job(lambda: SupervisedJob(cfg, root, name=f"supervised-{size}"), what="start the supervised baseline")


@st.fragment(run_every=1.5)
def supervised_progress() -> None:
    """The baseline's progress and Stop while it trains; when it ends, a rerun adds its point to the figure."""
    job = jobs().training_job()
    if job is None or job.run is None or job.run.kind != "supervised":
        return
    status = run_state(job.run)
    state = status.get("state", "?")
    name = job.run.id
    if job.is_alive():
        st.progress(
            float(status.get("progress") or 0.0),
            text=f"{name}: {state}, ETA {eta_text(status.get('eta_s'))} {status.get('message') or ''}",
        )
        if st.button("Stop baseline", icon=":material/stop:", key="btn.stop_supervised"):
            job.stop()
    else:
        st.caption(f"{STATE_ICONS.get(state, '')} {name}: {state}. {status.get('message') or ''}")
        seen = st.session_state.setdefault("_sup_seen", set())
        if name not in seen:
            seen.add(name)
            st.rerun(scope="app")
