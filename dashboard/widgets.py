"""What several pages draw: the shared sidebar, notices, the Train page's live panel and its comparison.

The live panel and the sidebar's badge are fragments that rerun on their own while a job
runs, reading the run store: the background job writes it, the page only polls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboard import figures, services
from dashboard.jobs import resume_training, running_job
from dashboard.state import KEYS, runs_root, runs_root_refusal
from simclr_core.config import PRESETS, AugmentationConfig
from simclr_core.metrics import KNN_ACC, TRAIN_LOSS, VIEWS_PER_S

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from dashboard.figures import MetricRow

STATE_ICONS = {  # Material icons: rendered by st.markdown and headings, independent of emoji fonts
    "queued": ":material/schedule:",
    "running": ":green[:material/directions_run:]",
    "finished": ":blue[:material/check_circle:]",
    "stopped": ":orange[:material/stop_circle:]",
    "failed": ":red[:material/error:]",
    "interrupted": ":orange[:material/warning:]",
}
LIVE = ("queued", "running")


def eta_text(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m {seconds % 60:02d}s"
    )


def aug_summary(aug: dict[str, object]) -> str:
    """One line saying which augmentation the Train page will use."""
    if not aug:
        return "The tutorial's augmentations."
    cfg = AugmentationConfig.from_dict(aug)
    for name, preset in PRESETS.items():
        if {**preset.to_dict(), "crop_size": cfg.crop_size} == cfg.to_dict():
            return f"Preset **{name}**, crop to {cfg.crop_size} px."
    return (
        f"Custom: crop {cfg.crop_size} px, scale {cfg.crop_scale[0]:g}–{cfg.crop_scale[1]:g}, "
        f"jitter p={cfg.jitter_p:g} ({cfg.jitter_brightness:g}/{cfg.jitter_contrast:g}/"
        f"{cfg.jitter_saturation:g}/{cfg.jitter_hue:g}), gray p={cfg.grayscale_p:g}, blur p={cfg.blur_p:g}."
    )


# ---------------------------------------------------------------------------------------------- sidebar


def notices() -> None:
    """Messages queued by callbacks and shared links (they run before the page can draw)."""
    ss = st.session_state
    if ss.get("_notice"):
        st.toast(ss.pop("_notice"), icon=":material/link:")
    if ss.get("_notice_error"):
        st.error(ss.pop("_notice_error"))


def sidebar() -> None:
    """Runs folder, dataset and run pickers shared by every page, plus the running job.

    Both pickers are bound to the address (``?data_spec=...&run_id=<run name>``): it is the page's share link.
    Streamlit leaves a bound widget's value out of the address while it equals the widget's default, and the
    default option here would be the current spec or the newest run, which someone opening the link later may not
    get; so neither picker has a default option (``index=None``) and both keys are assigned on every run: Streamlit
    writes a value set from code into the address from the session's second run on (the first interaction).
    """
    from simclr_core.data import data_root

    ss = st.session_state
    with st.sidebar:
        job = running_job()
        if job is not None and job.run is not None:
            st.fragment(_training_badge, run_every=2.0)(job.run.id, _state_of(job.run.id))
        ss["data_spec"] = ss.get("data_spec") or KEYS["data_spec"].default()  # cleared: the default spec
        st.selectbox(
            "Dataset",
            services.dataset_choices(),
            key="data_spec",
            bind="query-params",
            index=None,
            accept_new_options=True,
            help="Built-in `shapes[:split]`, `cifar10`/`stl10` (downloaded), or a folder / .zip / .tar.gz "
            "path. Type a spec or path to use another one.",
        )
        runs = services.run_names()
        if ss.get("_select_run") in runs:
            ss["run_id"] = ss.pop("_select_run")
        ss["run_id"] = ss.get("run_id") if ss.get("run_id") in runs else (runs[0] if runs else None)
        st.selectbox(
            "Run",
            runs,
            key="run_id",
            # The bare run name: a label (name · method · state) would change when the run ends, and a link made
            # while it trained would stop matching. The state is the caption below.
            bind="query-params",
            index=None,
            placeholder="no runs yet",
            help="The run shown on the Train, Embeddings and Probe pages.",
        )
        if ss.get("run_id"):
            st.caption(run_summary(ss["run_id"]))
        with st.expander("Settings"):
            st.text_input("Runs folder", key="runs_root", help="Where runs are stored; created on the first run.")
            refusal = runs_root_refusal()
            if refusal:
                st.error(f"{refusal} Showing {runs_root()} instead.", icon=":material/block:")
            st.caption(f"Data cache: `{data_root()}`")
    notices()


def _state_of(name: str) -> str:
    run = services.open_run(name)
    return "" if run is None else str(services.run_state(run).get("state", "?"))


def run_summary(name: str) -> str:
    """What the sidebar says below its run picker (which shows bare names): the method, or the kind, and the state."""
    run = services.open_run(name)
    if run is None:
        return ""
    state = str(services.run_state(run).get("state", "?"))
    what = run.train_config.get("method", "simclr") if run.kind == "simclr" else run.kind
    return f"{STATE_ICONS.get(state, '')} {what} · {state}".strip()


def _training_badge(name: str, drawn_state: str) -> None:
    """The background job's badge; polls while it runs, so every page notices when it ends or changes state.

    A change of state (queued -> running) reruns the page once, so the run's caption and buttons do not go on
    saying "queued" until the user next clicks.
    """
    if running_job() is None or _state_of(name) != drawn_state:
        st.rerun(scope="app")  # refresh the run's state in the picker and the page's buttons
    st.info(f"Training **{name}** in the background.", icon=":material/model_training:")


# ---------------------------------------------------------------------------------------------- Train page


def _last(rows: list[MetricRow], metric: str) -> float | None:
    for row in reversed(rows):
        if isinstance(row.get(metric), int | float):
            return row[metric]
    return None


def _buttons(run_id: str, state: str, kind: str) -> None:
    """Stop (or the disabled 'Stopping ...') for this server's running job, Resume for a stopped run."""
    job = running_job()
    ours = job is not None and job.run is not None and job.run.id == run_id and state in LIVE
    if ours and job.stopping:
        st.button(
            "Stopping ...",
            icon=":material/hourglass_top:",
            key="btn.stopping",
            width="stretch",
            disabled=True,
            help="The current step finishes and last.ckpt is saved; then Resume appears.",
        )
    elif ours:
        # on_click runs before the fragment's next rerun, so a click during a live refresh is not lost
        st.button(
            "Stop",
            icon=":material/stop:",
            key="btn.stop",
            width="stretch",
            on_click=job.stop,
            help="Finishes the current step, saves last.ckpt; resume later.",
        )
    elif state in ("stopped", "interrupted", "failed") and kind == "simclr":
        busy = job is not None
        clicked = st.button(
            "Resume",
            icon=":material/play_arrow:",
            key="btn.resume",
            width="stretch",
            disabled=busy,
            help="Another job is running." if busy else "Continue from last.ckpt.",
        )
        if clicked and resume_training(run_id) is not None:
            st.rerun(scope="app")


def progress_text(status: dict[str, Any], max_minutes: float | None) -> str:
    """The progress bar's words. Under a time budget the epoch and step counts are only caps (the budget ends the
    run long before ``epochs``), so the bar speaks of the budget instead of "epoch 7/1000"."""
    progress = float(status.get("progress") or 0.0)
    epoch, step = status.get("epoch", 0), status.get("step", 0)
    if max_minutes:
        return f"epoch {epoch} · step {step} · {progress:.0%} of the {float(max_minutes):g}-minute budget"
    epochs, total = status.get("epochs"), status.get("total_steps")
    return f"epoch {epoch}{f'/{epochs}' if epochs else ''} · step {step}{f'/{total}' if total else ''} · {progress:.0%}"


@st.fragment(run_every=1.5)
def live_run(run_id: str) -> None:
    """Status, controls and curves of one run; reruns alone every 1.5 s while the page is open."""
    run = services.open_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} is gone from {runs_root()}.")
        return
    status = services.run_state(run)
    state = str(status.get("state", "?"))
    head, buttons = st.columns([4, 1.4], vertical_alignment="center")
    head.markdown(f"### {STATE_ICONS.get(state, '')} {run.id}")
    if status.get("message"):
        head.caption(str(status["message"]))
    rows = services.metric_rows(run)
    with buttons:
        _buttons(run.id, state, run.kind)
    progress = float(status.get("progress") or 0.0)
    st.progress(min(max(progress, 0.0), 1.0), text=progress_text(status, run.train_config.get("max_minutes")))
    m = st.columns(5)
    views = _last(rows, VIEWS_PER_S)
    knn = _last(rows, KNN_ACC)
    loss = _last(rows, TRAIN_LOSS)
    m[0].metric("views / s", f"{views:,.0f}" if views else "—")
    m[1].metric("ETA", eta_text(status.get("eta_s")) if state == "running" else "—")
    m[2].metric("train loss", f"{loss:.3f}" if loss is not None else "—")
    m[3].metric("kNN accuracy", f"{knn:.1%}" if knn is not None else "—")
    m[4].metric("points logged", f"{len(rows)}")
    if rows:
        st.plotly_chart(
            figures.curves_figure(rows), width="stretch", key="chart.curves", config=figures.chart_config(run.id)
        )
    elif state in LIVE:
        st.caption("Waiting for the first step ... (the first batch includes model set-up)")
    was = st.session_state.get("_last_state", {}).get(run_id)
    st.session_state.setdefault("_last_state", {})[run_id] = state
    if was in LIVE and state not in LIVE:
        st.rerun(scope="app")  # the job ended: refresh the sidebar and buttons
    with st.expander("Settings of this run"):
        st.json(run.config, expanded=False)


def compare_figure(
    run_ids: list[str], metric: str, x: str, overlays: dict[str, list[MetricRow]] | None = None, log_x: bool = False
) -> go.Figure:
    """One metric of several runs (and of TensorBoard overlays) against the step, epoch or minutes."""
    runs = {run_id: services.metric_rows(run) for run_id in run_ids if (run := services.open_run(run_id)) is not None}
    return figures.compare_figure(runs, metric, x, overlays, log_x)
