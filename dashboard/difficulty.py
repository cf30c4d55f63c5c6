"""The Augment page's difficulty meter and lineup: the encoder loaded once, the fixed batch, the reading, drawn.

The encoder (a run's checkpoint or a random init of the Train page's model) is cached per server by
its identity, the fixed batch per (dataset, size, preview images); only the reading is recomputed
when a control moves (under a second on a CPU for 256 images at 32 px, see BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from dashboard import preview, services, state
from dashboard.errors import attempt

if TYPE_CHECKING:
    import torch

    from simclr_core.config import AugmentationConfig
    from simclr_core.difficulty import Difficulty, Encoder, Lineup

OFF = "Off"
RANDOM = "Random init"
BATCHES = [64, 128, 256]
TILE = 96  # px a view is shown at (nearest-neighbour: a 32 px view stays crisp)


def encoder_options() -> list[str]:
    """Off, a random init, then every run with a checkpoint (newest first)."""
    runs = [r.id for r in services.list_runs() if r.checkpoint("last") or r.checkpoint("best")]
    return [OFF, RANDOM, *runs]


@st.cache_resource(max_entries=4, show_spinner="Loading the encoder ...")
def _checkpoint_encoder(path: str, mtime_ns: int, size: int) -> Encoder:
    """One load per checkpoint version (a rewritten last.ckpt has a new mtime), shared by every session."""
    from simclr_core.difficulty import load_encoder

    return load_encoder(Path(path))


@st.cache_resource(max_entries=4, show_spinner="Building the random encoder ...")
def _random_encoder(backbone: str, small_input: bool, image_size: int, hidden_dim: int, seed: int) -> Encoder:
    from simclr_core.difficulty import load_encoder
    from simclr_core.features import RandomInit

    return load_encoder(RandomInit(backbone, small_input, image_size, hidden_dim, seed))


def encoder(choice: str) -> tuple[Encoder, str] | None:
    """The chosen encoder and a key naming its version; None (with a message) when it cannot be had."""
    if choice == RANDOM:
        cfg = attempt("read the Train page's settings", state.current_training)
        if cfg is None:
            return None
        enc = attempt(
            "build the random encoder",
            _random_encoder,
            cfg.backbone,
            cfg.small_input,
            cfg.image_size,
            cfg.hidden_dim,
            cfg.seed,
        )
        if enc is None:
            return None
        enc = replace(enc, temperature=float(cfg.temperature))  # a copy: the cached one is shared
        return (
            enc,
            f"random-{cfg.backbone}-{cfg.small_input}-{cfg.image_size}-{cfg.hidden_dim}-{cfg.seed}-{enc.temperature}",
        )
    run = services.open_run(choice)
    ckpt = (run.checkpoint("last") or run.checkpoint("best")) if run is not None else None
    if ckpt is None:
        st.info(f"Run {choice} has no checkpoint (any more).", icon=":material/info:")
        return None
    stat = ckpt.stat()
    enc = attempt(f"load {ckpt.name} of {choice}", _checkpoint_encoder, str(ckpt), stat.st_mtime_ns, stat.st_size)
    return (enc, f"{ckpt}-{stat.st_mtime_ns}") if enc is not None else None


@st.cache_resource(max_entries=4, show_spinner=False)
def _batch(spec: str, size: int, first: tuple[int, ...], n: int) -> torch.Tensor:
    """The fixed batch: the preview's images first, then a fixed draw of the dataset (uint8, shared)."""
    import torch

    from simclr_core.difficulty import batch_indices

    data = services.dataset(spec, size)
    idx = batch_indices(len(data), list(first), n)
    return data.images[torch.from_numpy(idx)].contiguous()


def _first_images(total: int) -> tuple[int, ...]:
    ss = st.session_state
    return tuple(int(i) for i in preview.preview_indices(total, int(ss["keep.aug_images"]), int(ss["keep.aug_pick"])))


def reading(enc: Encoder, key: str, cfg: AugmentationConfig, n: int) -> tuple[Difficulty, int] | None:
    """The meter on the fixed batch with the page's seed, and how many preview images lead the batch."""
    from simclr_core.difficulty import measure

    spec = state.data_spec()
    data = attempt(f"load the dataset {spec!r}", services.dataset, spec, enc.image_size)
    if data is None:
        return None
    first = _first_images(len(data))
    images = attempt("gather the fixed batch", _batch, spec, enc.image_size, first, n)
    if images is None:
        return None
    seed = int(st.session_state["keep.aug_seed"])
    token = (key, spec, cfg.to_json(), seed, n, first)
    kept = st.session_state.get("_difficulty")
    if kept is not None and kept[0] == token:
        return kept[1], len(first)
    result = attempt("measure the difficulty", measure, enc, images, cfg, seed)
    if result is None:
        return None
    st.session_state["_difficulty"] = (token, result)
    return result, len(first)


def _tile(result: Difficulty, row: int, cfg: AugmentationConfig) -> np.ndarray:
    """View ``row`` as the encoder saw it, un-normalised and enlarged to about TILE px (nearest neighbour)."""
    from simclr_core.augment import denormalise

    tile = denormalise(result.views[row : row + 1], cfg).squeeze(0).permute(1, 2, 0).numpy()
    factor = max(1, TILE // tile.shape[0])
    return np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1)


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _previous(key: str, values: dict[str, float]) -> dict[str, float] | None:
    """The last different reading of this encoder (the deltas say what the last change did)."""
    history = st.session_state.setdefault("_difficulty_prev", {})
    last, before = history.get(key, (None, None))
    if last != values:
        history[key] = (values, last)
        return last
    return before


def meter(result: Difficulty, key: str, label: str) -> None:
    values = {"loss": result.loss, "top1": result.top1, "top5": result.top5, "rank": result.mean_pos}
    prev = _previous(key, values)

    def delta(name: str, percent: bool) -> str | None:
        if prev is None or prev[name] == values[name]:
            return None
        d = values[name] - prev[name]
        return f"{d:+.1%}" if percent else f"{d:+.3g}"

    cols = st.columns(4)
    cols[0].metric(
        "InfoNCE loss",
        f"{result.loss:.3f}",
        delta("loss", False),
        delta_color="inverse",
        help="The training loss on this fixed batch: higher means a harder pretext task.",
    )
    cols[1].metric(
        "Top-1",
        f"{result.top1:.1%}",
        delta("top1", True),
        help="How often the other view of the same image is the most similar view of the batch.",
    )
    cols[2].metric("Top-5", f"{result.top5:.1%}", delta("top5", True), help="How often it is among the 5 most similar.")
    cols[3].metric(
        "Mean rank of the positive",
        f"{result.mean_pos:.1f}",
        delta("rank", False),
        delta_color="inverse",
        help="1 means always found first.",
    )
    st.caption(
        f"{label} · {result.n_images} images × 2 views at {result.views.shape[-1]} px, seed "
        f"{st.session_state['keep.aug_seed']}, temperature {result.temperature:g} · measured in "
        f"{result.seconds * 1000:.0f} ms. Deltas: what the last change did."
    )


def lineup_view(result: Difficulty, shown: Lineup, cfg: AugmentationConfig) -> None:
    """The anchor, its positive and the 8 most similar other views, the positive marked."""
    cols = st.columns(10)
    cols[0].image(_tile(result, shown.anchor, cfg), caption="this view", width="stretch")
    pos = shown.positive
    cols[1].image(_tile(result, pos.row, cfg), caption=f"its other view · {pos.similarity:.2f}", width="stretch")
    for col, (k, m) in zip(cols[2:], enumerate(shown.nearest, start=1), strict=False):
        mark = " ✓ positive" if m.positive else ""
        col.image(_tile(result, m.row, cfg), caption=f"#{k} · {m.similarity:.2f}{mark}", width="stretch")
    if shown.rank == 1:
        st.success(
            f"Solved: its other view is the most similar of all {shown.candidates} other views.",
            icon=":material/check_circle:",
        )
    else:
        st.warning(
            f"Its other view ranks {_ordinal(shown.rank)} of {shown.candidates}: {shown.rank - 1} view(s) of other "
            "images look more alike to this encoder.",
            icon=":material/visibility:",
        )


def meter_tab(cfg: AugmentationConfig | None) -> None:
    """The Difficulty tab: encoder and batch pickers, the meter, what the network sees for one preview image."""
    ss = st.session_state
    c1, c2 = st.columns([2, 1])
    options = encoder_options()
    if ss.get("keep.aug_encoder") not in options:
        ss["keep.aug_encoder"] = OFF
    c1.selectbox(
        "Encoder",
        options,
        key="keep.aug_encoder",
        help="A run's checkpoint, or a random init of the model the Train page would train.",
    )
    c2.select_slider(
        "Batch (images)",
        BATCHES,
        key="keep.aug_meter_batch",
        help="The fixed batch of the task; 256 is the seed's batch size.",
    )
    choice = ss["keep.aug_encoder"]
    if choice == OFF:
        st.caption(
            "Pick an encoder to see how hard these augmentations make SimCLR's task for it: the InfoNCE loss, "
            "top-1/top-5 and mean rank of the positive on one fixed batch, recomputed as the controls move."
        )
        return
    if cfg is None:
        return
    found = encoder(choice)
    if found is None:
        return
    enc, key = found
    got = reading(enc, key, cfg, int(ss["keep.aug_meter_batch"]))
    if got is None:
        return
    result, n_first = got
    meter(result, key, RANDOM.lower() if choice == RANDOM else f"run {choice} ({enc.label})")
    if ss["keep.aug_source"] == "Upload":
        st.caption(f"The batch comes from the sidebar's dataset `{state.data_spec()}`: uploads are too few for one.")
    st.subheader("What the network sees", anchor=False)
    if n_first > 1:
        if int(ss.get("keep.aug_lineup_image") or 0) >= n_first:
            ss["keep.aug_lineup_image"] = 0
        st.slider("Preview image", 0, n_first - 1, key="keep.aug_lineup_image")
    from simclr_core.difficulty import lineup

    shown = attempt(
        "line up the views", lineup, result, int(ss.get("keep.aug_lineup_image") or 0) if n_first > 1 else 0
    )
    if shown is not None:
        lineup_view(result, shown, cfg)
        st.caption(
            "Cosine similarities of the projections z the loss compares. The task: find the other view of the "
            "same image among every view of the batch."
        )
