"""Train: set up a run, start it in the background, watch it learn live, stop, resume, compare."""

from __future__ import annotations

import streamlit as st

from dashboard import figures, jobs, overlays, queueing, services, state, widgets
from dashboard.errors import attempt
from dashboard.routing import ensure_routed
from simclr_core.config import (
    BACKBONES,
    METHODS,
    MONITORS,
    PRECISIONS,
    PRESETS,
    TrainConfig,
    cpu_demo_config,
    fast_recipe,
)

ensure_routed()

ss = st.session_state
ss.setdefault("keep.run_name", "simclr")
LONG_RUN_S = 3600  # longer than this on a CPU: offer the fast recipe before starting


def preset_seed() -> None:
    state.set_training(TrainConfig(data=ss.get("train.data") or "shapes:unlabeled"))


def preset_cpu() -> None:
    """The fast recipe for the data and method in the form (each method with its own measured settings)."""
    state.set_training(
        cpu_demo_config(ss.get("train.data") or TrainConfig.data, method=ss.get("train.method") or "simclr")
    )


def aug_from_preset() -> None:
    choice = ss.get("train.aug_choice")
    if choice in PRESETS:
        aug = PRESETS[choice].to_dict()
        aug["crop_size"] = int(ss.get("train.image_size") or aug["crop_size"])
        ss["train_aug"] = aug


def start(cfg: TrainConfig) -> None:
    if jobs.start_training(cfg, name=ss.get("keep.run_name") or "simclr") is not None:
        ss["_show_run_tab"] = True
        st.rerun()


def _answer_long_run(choice: str) -> None:
    """Button callback (before widgets are drawn, so the form may take the fast recipe's values)."""
    held = ss.pop("_long_run", None)
    if held is None or choice == "cancel":
        return
    cfg = TrainConfig.from_dict(held)
    if choice == "fast":
        cfg = fast_recipe(cfg.data, max_minutes=float(ss.get("keep.fast_minutes") or 5.0), method=cfg.method)
        state.set_training(cfg)
    if jobs.start_training(cfg, name=ss.get("keep.run_name") or "simclr") is not None:
        ss["_show_run_tab"] = True


def long_run_offer(cfg: TrainConfig) -> None:
    """The settings would run for hours on this CPU: say so, and offer the fast recipe with a budget."""
    from simclr_core.estimate import human_duration  # torch stays unloaded until app.py has configured the process

    estimate = services.estimate(cfg)
    if estimate is None:
        return
    st.warning(
        f"**These settings would train for about {human_duration(estimate.total_s)} on this CPU** "
        f"({human_duration(estimate.epoch_s)} per epoch over {estimate.images:,} images, {cfg.epochs} epochs). "
        "The fast recipe learns most per minute here: 32 px, ResNet-10, a cosine fitted to a time budget.",
        icon=":material/schedule:",
    )
    st.number_input("I have ... minutes", min_value=1.0, max_value=600.0, step=1.0, key="keep.fast_minutes")
    a, b, c = st.columns([2, 1, 1])
    a.button(
        "Start the fast recipe with this budget",
        type="primary",
        key="btn.long_fast",
        on_click=_answer_long_run,
        args=("fast",),
    )
    b.button("Start anyway", key="btn.long_anyway", on_click=_answer_long_run, args=("anyway",))
    c.button("Cancel", key="btn.long_cancel", on_click=_answer_long_run, args=("cancel",))


st.title("Training")

# The open tab is bound to the address (?nav.train_tab=Compare+runs; none for Run): a link reopens it. Setting the key
# before the tabs are drawn selects one: a link's tab wins on the session's first run, _show_run_tab (a run just
# started or opened) on any later one.
if ss.pop("_show_run_tab", False) or "nav.train_tab" not in ss:
    ss["nav.train_tab"] = "Run" if ss.get("run_id") else "New run"
live_tab, new_tab, compare_tab, queue_tab = st.tabs(
    ["Run", "New run", "Compare runs", "Queue"], key="nav.train_tab", bind="query-params"
)

with new_tab:
    p1, p2, _ = st.columns([1, 1, 3])
    p1.button(
        "Seed defaults",
        on_click=preset_seed,
        help="The tutorial's settings: 96 px, batch 256, 500 epochs.",
        width="stretch",
    )
    p2.button(
        "CPU-friendly",
        on_click=preset_cpu,
        type="primary",
        width="stretch",
        help="The fast recipe: 32 px, ResNet-10 (standard stem), 4 views of 128 images per step, lr 2e-3, temperature 0.2, a cosine "
        "fitted to a 5-minute budget: learns visibly on a laptop. Keeps the data and method chosen below, with the "
        "method's own measured settings.",
    )
    with st.form("form.train", border=False):
        st.text_input("Run name", key="keep.run_name", help="A timestamp is appended, so names may repeat.")
        a, b, c = st.columns(3)
        with a:
            st.markdown("**Data**")
            st.text_input(
                "Training data (spec)",
                key="train.data",
                help="Unlabelled images to learn from, e.g. `shapes:unlabeled`, `stl10:unlabeled`, a folder.",
            )
            st.text_input(
                "Labelled data for monitoring (spec, optional)",
                key="train.val_data",
                help="For val_* metrics and kNN accuracy; empty: the source's labelled train split.",
            )
            st.number_input("Image size (px)", min_value=16, max_value=512, step=8, key="train.image_size")
            st.number_input(
                "Use only the first N images (optional)", min_value=2, step=100, value=None, key="train.limit_images"
            )
            st.number_input(
                "Labelled images for monitoring (optional)",
                min_value=2,
                step=100,
                value=None,
                key="train.val_limit",
                help="A class-balanced subset keeps validation and kNN quick.",
            )
            st.number_input("Views per image", min_value=2, max_value=8, key="train.n_views")
        with b:
            st.markdown("**Model and optimiser**")
            st.selectbox(
                "Method",
                METHODS,
                key="train.method",
                help="simclr: InfoNCE; byol: predictor + momentum target; barlowtwins: cross-correlation to "
                "identity; vicreg: invariance, variance, covariance; supcon: supervised contrastive, which trains "
                "on the labels of a labelled data split (e.g. shapes:train), so it is not self-supervised",
            )
            st.selectbox("Backbone", BACKBONES, key="train.backbone")
            st.checkbox("Small-input stem (for 32 px images)", key="train.small_input")
            st.number_input("Projection size (hidden_dim)", min_value=8, max_value=4096, step=8, key="train.hidden_dim")
            st.number_input(
                "Batch size (images per step)", min_value=2, max_value=65536, step=32, key="train.batch_size"
            )
            st.number_input("Learning rate", min_value=1e-7, max_value=10.0, format="%.6f", key="train.lr")
            st.number_input("Warm-up epochs", min_value=0.0, step=0.5, key="train.warmup_epochs")
            st.number_input("Temperature τ", min_value=0.001, max_value=10.0, format="%.3f", key="train.temperature")
            st.number_input(
                "BYOL target momentum",
                min_value=0.0,
                max_value=0.9999,
                format="%.4f",
                key="train.target_momentum",
                help="byol only: the target network's momentum at the start; it rises to 1 by the end of the budget.",
            )
            st.number_input("Weight decay", min_value=0.0, format="%.6f", key="train.weight_decay")
            st.checkbox("Scale lr by batch/256", key="train.scale_lr")
        with c:
            st.markdown("**Length and hardware**")
            st.number_input("Epochs", min_value=1, max_value=100000, key="train.epochs")
            st.number_input(
                "Time budget (minutes, optional)",
                min_value=0.1,
                step=1.0,
                value=None,
                key="train.max_minutes",
                help="The run ends cleanly as finished when time is up.",
            )
            st.selectbox(
                "Precision",
                PRECISIONS,
                key="train.precision",
                help="auto: bf16 where the device has fast bf16, else 32-bit.",
            )
            st.text_input("Device", key="train.device", help="auto, cpu, cuda or cuda:N")
            st.checkbox("channels_last memory format", key="train.channels_last")
            st.number_input("Devices (DDP processes)", min_value=1, max_value=64, key="train.devices")
            st.number_input("Nodes", min_value=1, max_value=1024, key="train.num_nodes")
            st.text_input("Strategy", key="train.strategy")
            st.selectbox("Best checkpoint by", MONITORS, key="train.monitor")
            st.number_input("kNN k", min_value=1, max_value=1000, key="train.knn_k")
            st.number_input("Seed", min_value=0, step=1, key="train.seed")
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
        queued = st.form_submit_button(
            "Add to queue", icon=":material/playlist_add:", help="Runs after the ones queued before it."
        )

    st.caption(services.memory_caption())  # refused settings in red, before anything is loaded

    st.markdown("**Augmentations**")
    aug_cols = st.columns([1, 2])
    aug_cols[0].selectbox(
        "Start from",
        ["(current)", *PRESETS],
        key="train.aug_choice",
        on_change=aug_from_preset,
        help="(current): what *Use for training* on the Augment page set.",
    )
    aug_cols[1].caption(widgets.aug_summary(ss.get("train_aug") or {}))

    if submitted:
        cfg = attempt("use these settings", state.checked_training)  # a bad path is said before any question
        estimate = services.estimate(cfg) if cfg is not None else None
        if cfg is not None and estimate is not None and estimate.device == "cpu" and estimate.total_s > LONG_RUN_S:
            ss["_long_run"] = cfg.to_dict()  # ask first: hours on a CPU are rarely what a user means
        elif cfg is not None:
            start(cfg)

    if queued and (cfg := attempt("use these settings", state.checked_training)) is not None:
        queueing.add(cfg, ss.get("keep.run_name") or "simclr")

    if ss.get("_long_run"):
        long_run_offer(TrainConfig.from_dict(ss["_long_run"]))

with live_tab:
    run = services.current_run()
    if run is None:
        st.info("No run selected. Start one in *New run*, or the demo on the Home page.", icon=":material/info:")
    else:
        widgets.live_run(run.id)

with compare_tab:
    names = services.run_names()
    if "keep.compare_runs" not in ss:
        ss["keep.compare_runs"] = names[:2]
    ss["keep.compare_runs"] = [n for n in ss["keep.compare_runs"] if n in names]
    chosen = st.multiselect("Runs", names, key="keep.compare_runs", format_func=services.run_label)
    metric = st.selectbox("Metric", figures.COMPARE_METRICS, key="keep.compare_metric")
    x_col, log_col = st.columns([3, 1], vertical_alignment="bottom")
    x_axis = x_col.radio("x axis", ["step", "epoch", "time"], horizontal=True, key="keep.compare_x")
    log_x = log_col.checkbox("log x axis", key="keep.compare_log_x")
    overlays.controls()
    if chosen or overlays.overlays():
        figure = widgets.compare_figure(chosen, metric, x_axis, overlays.overlays(), log_x)
        st.plotly_chart(figure, width="stretch", key="chart.compare", config=figures.chart_config(f"compare-{metric}"))

with queue_tab:
    queueing.queue_panel()
