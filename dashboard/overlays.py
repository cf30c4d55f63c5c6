"""The Train page's *Compare runs* overlays: any TensorBoard event file's scalars drawn beside the runs.

Matched by metric name (``simclr_core.tensorboard_events``), so the tutorial's published 500-epoch SimCLR run
lies on the same axes as a few CPU minutes. Brought three ways: an upload, a path on the server (inside
the allowed roots, like every path field), or the tutorial's own file downloaded as the seed downloads
its checkpoints. Overlays stay in the session, by label, until removed.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.errors import attempt
from dashboard.figures import MetricRow
from simclr_core.tensorboard_events import EventFileError, metric_names, metric_rows, read_scalars

OVERLAYS = "keep.compare_overlays"  # {label: metric rows}
MAX_FILES_SEARCHED = 10_000  # a folder path: how many entries to look through for event files


def overlays() -> dict[str, list[MetricRow]]:
    return dict(st.session_state.get(OVERLAYS) or {})


def _add(label: str, rows: list[MetricRow]) -> str:
    names = metric_names(rows)
    if not names:
        raise EventFileError(f"{label} holds no scalar curves")
    st.session_state[OVERLAYS] = {**overlays(), label: rows}
    st.toast(f"Added {label}: {len(rows):,} steps of {', '.join(names[:4])} ...", icon=":material/stacked_line_chart:")
    return label


def rows_from_upload(name: str, data: bytes) -> list[MetricRow]:
    return metric_rows(read_scalars(data, name=name))


def event_file_in(typed: str) -> Path:
    """The event file a typed server path names: the file itself, or the newest one in a folder (a run's)."""
    from dashboard.paths import roots
    from simclr_core.path_policy import inside

    path = inside(typed, roots())
    if not path.is_dir():
        return path
    found = []
    for i, candidate in enumerate(path.rglob("events.out.tfevents.*")):
        if i >= MAX_FILES_SEARCHED:
            break
        if candidate.is_file():
            found.append(candidate)
    if not found:
        raise EventFileError(f"no events.out.tfevents.* file in {typed}")
    return max(found, key=lambda p: p.stat().st_mtime)


def rows_from_path(typed: str) -> tuple[str, list[MetricRow]]:
    path = event_file_in(typed)
    return path.name, metric_rows(read_scalars(path))


def rows_from_tutorial(key: str) -> tuple[str, list[MetricRow]]:
    """The tutorial's event file: found in the data root, else downloaded with a progress bar."""
    from simclr_core.data import data_root
    from simclr_core.tutorial_files import FILES, fetch

    bar = st.progress(0.0, text=f"looking for {FILES[key].title} ...")
    try:
        path = fetch(key, data_root(), lambda text, frac: bar.progress(min(max(frac, 0.0), 1.0), text=text))
    finally:
        bar.empty()
    return f"tutorial: {FILES[key].title}", metric_rows(read_scalars(path))


def controls() -> None:
    """Add (upload, path, the tutorial's run) and remove overlays."""
    from simclr_core.tutorial_files import FILES

    ss = st.session_state
    with st.expander("Overlay a TensorBoard event file (e.g. the tutorial's 500-epoch SimCLR run)"):
        st.caption(
            "Curves are matched by metric name: `train_loss`, `train_acc_top5`, `val_acc_top5`, `lr` ... "
            "(a group prefix such as `train/` is ignored). Use *x axis: epoch* or a log axis to put a short run "
            "beside a long one."
        )
        a, b = st.columns(2)
        with a:
            if st.button("The tutorial's SimCLR run", icon=":material/download:", key="btn.overlay_tutorial"):
                got = attempt("load the tutorial's run", rows_from_tutorial, "simclr_events")
                if got is not None:
                    attempt("add it", _add, *got)
            st.caption(
                f"{FILES['simclr_events'].size}, downloaded once from the tutorial's saved-models repository "
                "into the data cache."
            )
            upload = st.file_uploader("Upload an event file", key="upload.events", type=None)
            if upload is not None and upload.file_id != ss.get("_overlay_upload"):
                ss["_overlay_upload"] = upload.file_id
                rows = attempt("read the upload", rows_from_upload, upload.name, upload.getvalue())
                if rows is not None:
                    attempt("add it", _add, upload.name, rows)
        with b:
            typed = st.text_input(
                "Or a path on the server",
                key="keep.overlay_path",
                placeholder="runs/<run>/tensorboard or .../events.out.tfevents.*",
                help="A file, or a folder whose newest event file is used; inside the data cache, the runs folder "
                "or the working directory.",
            )
            if st.button("Add", key="btn.overlay_path", disabled=not typed):
                got = attempt("read that path", rows_from_path, typed)
                if got is not None:
                    attempt("add it", _add, *got)
        for i, (label, rows) in enumerate(overlays().items()):
            name, remove = st.columns([5, 1], vertical_alignment="center")
            name.markdown(f":material/stacked_line_chart: **{label}** · {len(rows):,} steps")
            if remove.button("Remove", key=f"btn.overlay_remove.{i}"):
                ss[OVERLAYS] = {k: v for k, v in overlays().items() if k != label}
                st.rerun()
