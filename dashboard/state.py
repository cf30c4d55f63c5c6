"""Every ``st.session_state`` key of the dashboard in one table, and the widget values <-> config conversions.

Streamlit keeps a widget's value under its ``key``; a value set here before the widget is drawn
is what the widget shows. Three families follow a dataclass: ``aug.<field>`` (the Augment
controls, one per :class:`AugmentationConfig` field) and ``train.<field>`` (the Train form, one
per :class:`TrainConfig` field but ``aug``). Keys starting with ``aug.``, ``train.`` or
``keep.`` hold widget values that must survive page switches (Streamlit drops a widget's value
when its page is not shown), so ``init_state`` re-assigns them on every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import streamlit as st

from simclr_core.config import PRESETS, AugmentationConfig, ConfigError, TrainConfig

DEFAULT_DATA = "shapes:train"
KEPT_PREFIXES = ("aug.", "train.", "keep.")


@dataclass(frozen=True)
class Key:
    """One session key: what it holds and its default (None: a widget or the code sets it when needed)."""

    about: str
    default: Callable[[], object] | None = None


def _value(v: object) -> Callable[[], object]:
    return lambda: v


def _env(name: str, fallback: str) -> Callable[[], object]:
    return lambda: os.environ.get(name) or fallback


KEYS: dict[str, Key] = {
    # shared by every page (app.py's sidebar)
    "runs_root": Key("runs folder (Settings); $SIMCLR_STUDIO_RUNS or ./runs", _env("SIMCLR_STUDIO_RUNS", "runs")),
    "data_spec": Key("the sidebar's dataset spec", _env("SIMCLR_STUDIO_DEFAULT_DATA", DEFAULT_DATA)),
    "run_id": Key("the sidebar's run (Train, Embeddings, Probe show it)", _value(None)),
    "access.password": Key("the password field when the server listens beyond loopback (dashboard/access.py)"),
    "access.granted": Key("this session gave the operator's password"),
    "_select_run": Key("a run to select in the sidebar on the next run (its widget exists already)"),
    "train_aug": Key(
        "augmentation the Train page uses (AugmentationConfig dict)", lambda: AugmentationConfig().to_dict()
    ),
    "_setup_applied": Key("the ?setup= link last applied, so it applies once"),
    "_notice": Key("a toast to show on the next run"),
    "_notice_error": Key("an error to show on the next run"),
    # Augment
    "aug.preset": Key("preset the controls were last loaded from", _value("tutorial")),
    "keep.aug_source": Key("images from the dataset or uploads", _value("Dataset")),
    "keep.aug_src_size": Key("side the dataset images are loaded at", _value(96)),
    "keep.aug_images": Key("images in the grid", _value(6)),
    "keep.aug_views": Key("views per image", _value(2)),
    "keep.aug_seed": Key("seed of the views", _value(0)),
    "keep.aug_pick": Key("which dataset images (0: the first ones)", _value(0)),
    "keep.aug_encoder": Key("the difficulty meter's encoder: Off, Random init or a run id", _value("Off")),
    "keep.aug_meter_batch": Key("images in the difficulty meter's fixed batch", _value(256)),
    "keep.aug_lineup_image": Key("preview image whose lineup 'What the network sees' shows", _value(0)),
    "_difficulty": Key("the last meter reading and what it was measured on (dashboard/difficulty.py)"),
    "_difficulty_prev": Key("per encoder: (last reading, the one before) for the meter's deltas"),
    "nav.aug_tab": Key("open tab of the Augment page's preview (bound to the address)"),
    "nav.lab_tab": Key("open tab of the Augment page's lab (bound to the address)"),
    "step_image": Key("image of the step-through tab"),
    "keep.lab_data": Key("training data of the lab's short runs (default: the Train form's)"),
    "keep.lab_method": Key("training objective of the lab's short runs", _value("simclr")),
    "keep.lab_bank": Key("the lab's kNN bank spec (empty: the source's train split)", _value("")),
    "keep.lab_scored": Key("the lab's scored split (empty: the source's held-out split)", _value("")),
    "keep.lab_ops": Key("operations of the ablation grid"),
    "keep.lab_minutes": Key("minutes per ablation run", _value(1.0)),
    "keep.lab_ablation": Key("the ablation whose heatmap is shown"),
    "keep.lab_click": Key("heatmap clicks so far (a fresh chart key after each: no stale selection)", _value(0)),
    "keep.try_minutes": Key("minutes per augmentation try", _value(1.0)),
    "btn.lab_ablate": Key("'Queue the ablation' button"),
    "btn.try": Key("'Try these augmentations' button"),
    "table.tries": Key("the tries' leaderboard"),
    "chart.tries": Key("the tries' kNN curves"),
    "upload.aug_images": Key("uploaded images"),
    "upload.setup": Key("an uploaded setup or augmentation JSON"),
    # Train
    "keep.run_name": Key("name of the next run", _value("simclr")),
    "train.aug_choice": Key("preset the Train page's augmentation starts from"),
    "nav.train_tab": Key("open tab of the Train page (bound to the address)"),
    "_show_run_tab": Key(
        "open the Run tab on the next visit (a run was just started; a run name: a lab heatmap cell was clicked)"
    ),
    "_long_run": Key("settings held back because they would train for hours on a CPU (TrainConfig dict)"),
    "keep.fast_minutes": Key("budget of the fast recipe offered instead of a long CPU run", _value(5.0)),
    "btn.long_fast": Key("'Start the fast recipe with this budget' button"),
    "btn.long_anyway": Key("'Start anyway' button"),
    "btn.long_cancel": Key("'Cancel' (long run) button"),
    "keep.compare_runs": Key("runs in the comparison"),
    "queue.clear": Key("'Clear ended entries' button of the queue (per entry: queue.up/down/cancel/open.<id>)"),
    "keep.compare_metric": Key("metric compared"),
    "keep.compare_x": Key("x axis of the comparison"),
    "keep.compare_log_x": Key("the comparison's x axis logarithmic", _value(False)),
    "keep.compare_overlays": Key("TensorBoard overlays of the comparison: {label: metric rows} (overlays.py)"),
    "keep.overlay_path": Key("server path of an event file to overlay", _value("")),
    "upload.events": Key("an uploaded TensorBoard event file"),
    "_overlay_upload": Key("file id of the upload last added, so it is added once"),
    "btn.overlay_tutorial": Key("'The tutorial's SimCLR run' overlay button"),
    "btn.overlay_path": Key("'Add' (overlay path) button (per overlay: btn.overlay_remove.<i>)"),
    "_metrics_cache": Key("per run: (bytes read, file size, rows) of metrics.jsonl, read incrementally"),
    "_last_state": Key("per run: its state at the last refresh, to notice when a job ends"),
    "btn.stop": Key("Stop button"),
    "btn.stopping": Key("disabled 'Stopping ...' button"),
    "btn.resume": Key("Resume button"),
    "chart.curves": Key("live curves"),
    "chart.compare": Key("comparison chart"),
    # Home
    "home.demo": Key("'Start a demo run' button"),
    "keep.demo_minutes": Key("the demo's time budget ('I have N minutes')", _value(5.0)),
    # Embeddings
    "keep.emb_source": Key("encoder from a run or a checkpoint file", _value("Run")),
    "keep.emb_which_ckpt": Key("last or best checkpoint", _value("last")),
    "keep.emb_split": Key("test, train or other labelled data", _value("test")),
    "keep.emb_other": Key("the other labelled data spec", _value("")),
    "emb_points": Key("points on the map (the widget says 2000; bound to the address, kept across pages)"),
    "keep.emb_method": Key("projection (UMAP/PCA/t-SNE, 2-D/3-D)", _value("UMAP 2-D")),
    "keep.emb_features": Key("h or z", _value("h")),
    "upload.ckpt": Key("an uploaded checkpoint"),
    "btn.emb_tutorial_ckpt": Key("'The tutorial's pretrained SimCLR' download button (Embeddings)"),
    "_tutorial_ckpt": Key("local path of the tutorial's SimCLR.ckpt once fetched (dashboard/pretrained.py)"),
    "emb_query": Key("selected image whose neighbours are shown"),
    "chart.embedding": Key("the map (its selection)"),
    "keep.emb_replay": Key("the training replay ('Clusters forming') shown", _value(False)),
    "chart.replay": Key("the replay's animated map"),
    # Probe
    "keep.probe_source": Key("probe runs or a checkpoint file", _value("Runs")),
    "upload.probe_ckpt": Key("a checkpoint uploaded on the Probe page"),
    "btn.probe_tutorial_ckpt": Key("'The tutorial's pretrained SimCLR' download button (Probe)"),
    "keep.probe_runs": Key("runs probed and shown"),
    "keep.probe_sizes": Key("labelled images per class", lambda: [10, 20, 50, 100, 200, 500]),
    "keep.probe_repeats": Key("random subsets per size", _value(3)),
    "keep.probe_features": Key("h or z", _value("h")),
    "keep.probe_ckpt": Key("last or best checkpoint", _value("last")),
    "keep.probe_train": Key("labelled training split (empty: the run's)", _value("")),
    "keep.probe_test": Key("labelled test split (empty: the run's)", _value("")),
    "keep.sup_minutes": Key("time budget of the supervised baseline", _value(5.0)),
    "_probe_seen": Key("probe tasks whose end was already shown"),
    "_probe_error": Key("why the last probe failed"),
    "_sup_seen": Key("baseline jobs whose end was already shown"),
    "btn.probe": Key("Run probe button"),
    "btn.probe_csv": Key("Download CSV button"),
    "btn.map_csv": Key("Download the map (CSV) button"),
    "btn.supervised": Key("Train baseline button"),
    "btn.stop_supervised": Key("Stop baseline button"),
    "chart.probe": Key("probe figure"),
}

AUG_FIELDS = [f.name for f in fields(AugmentationConfig)]
TRAIN_FIELDS = [f.name for f in fields(TrainConfig) if f.name != "aug"]


def aug_key(name: str) -> str:
    return f"aug.{name}"


def train_key(name: str) -> str:
    return f"train.{name}"


def is_known(key: str) -> bool:
    """Whether ``key`` is in the table or one of the dataclass families."""
    if key in KEYS:
        return True
    family, _, name = key.partition(".")
    return (family == "aug" and name in AUG_FIELDS) or (family == "train" and name in TRAIN_FIELDS)


def init_state() -> None:
    """Defaults for every key that has one; widget values of other pages kept across page switches."""
    ss = st.session_state
    for name, key in KEYS.items():
        if key.default is not None and name not in ss:
            ss[name] = key.default()
    for name, value in _aug_widget_values(PRESETS["tutorial"]).items():
        ss.setdefault(name, value)
    for name, value in TrainConfig().to_dict().items():
        if name != "aug":
            ss.setdefault(train_key(name), value)
    for name in list(ss.keys()):
        if isinstance(name, str) and name.startswith(KEPT_PREFIXES):
            ss[name] = ss[name]


def runs_root() -> Path:
    """The sidebar's runs folder when it lies inside the allowed roots, else the default (``runs_root_refusal``)."""
    from dashboard.paths import runs_folder

    return runs_folder(st.session_state.get("runs_root"))[0]


def runs_root_refusal() -> str | None:
    """Why the typed runs folder is not used, or None."""
    from dashboard.paths import runs_folder

    return runs_folder(st.session_state.get("runs_root"))[1]


def data_spec() -> str:
    return str(st.session_state.get("data_spec") or DEFAULT_DATA)


def select_run(run_id: str) -> None:
    """Select a run in the sidebar on the next run of the script (its widget already exists in this one)."""
    st.session_state["_select_run"] = run_id


def _aug_widget_values(cfg: AugmentationConfig) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in cfg.to_dict().items():
        if name in ("mean", "std"):
            value = ", ".join(f"{v:g}" for v in value)
        elif isinstance(value, list):
            value = tuple(float(v) for v in value)
        out[aug_key(name)] = value
    return out


def set_augmentation(cfg: AugmentationConfig) -> None:
    """Put a config into the Augment page's controls (before they are drawn: callbacks, init)."""
    st.session_state.update(_aug_widget_values(cfg))


def current_augmentation() -> AugmentationConfig:
    """The Augment controls as a validated config; raises ConfigError with the reason."""
    ss = st.session_state
    data: dict[str, object] = {}
    for name in AUG_FIELDS:
        value = ss.get(aug_key(name))
        if name in ("mean", "std"):
            try:
                value = [float(v) for v in str(value).replace(";", ",").split(",") if v.strip()]
            except ValueError:
                raise ConfigError(f"{name} must be three numbers separated by commas, got {value!r}") from None
        data[name] = value
    return AugmentationConfig.from_dict(data)


def use_for_training(cfg: AugmentationConfig) -> None:
    st.session_state["train_aug"] = cfg.to_dict()


def set_training(cfg: TrainConfig) -> None:
    values = cfg.to_dict()
    for name in TRAIN_FIELDS:
        st.session_state[train_key(name)] = values[name]
    st.session_state["train_aug"] = cfg.aug.to_dict()


def current_training() -> TrainConfig:
    """The Train form as a validated config (augmentation from "use for training" or the tutorial's)."""
    ss = st.session_state
    data = {name: ss.get(train_key(name)) for name in TRAIN_FIELDS}
    data["aug"] = dict(ss.get("train_aug") or AugmentationConfig().to_dict())
    return TrainConfig.from_dict(data).validate()


def checked_training() -> TrainConfig:
    """``current_training`` with its data specs checked (inside the roots, existing, well-formed): what Start and
    Add to queue use, so a typo in a path is said at once, not after the long-run question or a data load."""
    from dashboard.paths import check_config

    cfg = current_training()
    check_config(cfg)
    return cfg
