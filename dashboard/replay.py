"""The Embeddings page's training replay: a run's snapshots encoded once, drawn as an animated map.

Encoding every snapshot is the slow part (seconds per snapshot on a CPU), so the result is kept in
the Embeddings page's shared memo, keyed by the run's snapshot files and the points asked for: a
run still training gets a new key with each new snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from dashboard import figures
from dashboard.errors import attempt
from dashboard.evaluation import _remembered

if TYPE_CHECKING:
    from simclr_core.replay import Replay
    from simclr_core.store import Run

MAX_POINTS = 1000  # per frame: encoding cost grows with points x snapshots


def replay_of(run: Run, spec: str, points: int) -> Replay | None:
    """The aligned maps of ``spec`` (at most MAX_POINTS images) at each snapshot of ``run``."""
    from dashboard.paths import check_data
    from simclr_core.replay import run_replay

    files = run.snapshots()
    if attempt("check the data folder", lambda: check_data(spec) or True) is None:
        return None
    limit = min(points, MAX_POINTS)

    def compute() -> Replay | None:
        bar = st.progress(0.0, text=f"Encoding {spec} with {len(files)} snapshots ...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Encoding {spec}: snapshot {done} of {total}")

        result = attempt("replay the training", run_replay, files, spec, limit, 0, progress)
        bar.empty()
        return result

    key = ("replay", str(run.path), tuple((p.name, p.stat().st_mtime_ns) for p in files), spec, limit)
    return _remembered(key, compute)


def section(run: Run, spec: str, points: int) -> None:
    """'Clusters forming': a toggle, then the map at each snapshot with Play and a slider."""
    st.subheader("Clusters forming", anchor=False)
    files = run.snapshots()
    if not files:
        st.caption(
            "This run kept no snapshots (trained before they existed, or with `--snapshots 0`): new runs keep "
            "10 small backbone-only snapshots to replay here."
        )
        return
    on = st.toggle(
        f"Replay the training ({len(files)} snapshots)",
        key="keep.emb_replay",
        help="The same images placed by each snapshot's features (PCA 2-D, each frame aligned to the one "
        "before), from the random init to the end of training.",
    )
    if not on:
        return
    rep = replay_of(run, spec, points)
    if rep is None:
        return
    st.plotly_chart(figures.replay_figure(rep), width="stretch", key="chart.replay")
    st.caption(
        f"{len(rep.indices):,} images of {spec} · {len(rep.frames)} snapshots from step {rep.frames[0].step} to "
        f"{rep.frames[-1].step} · PCA 2-D of h, each frame turned (orthogonal Procrustes) onto the one before, "
        "so points move only as far as the encoder changed."
    )
