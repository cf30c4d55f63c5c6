"""The Embeddings page's computations: frozen feature sets, maps, kNN accuracy, neighbours, thumbnails.

Results are cached per checkpoint (a small LRU shared by every session, on top of the
engine's files in the run directory), so moving between pages or widgets never recomputes
what is already known; a rewritten last.ckpt has a new identity and is recomputed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import streamlit as st

from dashboard.errors import attempt
from dashboard.preview import to_hwc
from dashboard.services import umap_ready
from simclr_core.store import Run

if TYPE_CHECKING:
    import torch
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from simclr_core.data import ImageSet
    from simclr_core.features import FeatureSet
    from simclr_core.projection import EmbeddingTable

PROJECTIONS = {
    "UMAP 2-D": ("umap", 2),
    "UMAP 3-D": ("umap", 3),
    "PCA 2-D": ("pca", 2),
    "PCA 3-D": ("pca", 3),
    "t-SNE 2-D": ("tsne", 2),
}
CheckpointKey = tuple[str, int, int]  # path, mtime_ns, size
T = TypeVar("T")


class _Memo:
    """A small LRU of computed results (features, maps, kNN accuracies) shared by every session."""

    def __init__(self, size: int = 12) -> None:
        self.size = size
        self.items: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> object | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple[object, ...], value: object) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource
def _memo() -> _Memo:
    return _Memo()


def _remembered(key: tuple[object, ...], compute: Callable[[], T | None]) -> T | None:
    """``compute()`` once per key (a None result, i.e. a failure shown in the page, is not kept)."""
    found = _memo().get(key)
    if found is not None:
        return cast(T, found)
    value = compute()
    if value is not None:
        _memo().put(key, value)
    return value


def eval_specs(run: Run) -> tuple[str | None, str | None]:
    """The labelled train/test splits of the source the run was trained on (None when unknown)."""
    from simclr_core.features import default_eval_specs

    return attempt("find the labelled splits of this run", default_eval_specs, run.path) or (None, None)


def run_checkpoint(run: Run, which: str) -> Path | None:
    return run.checkpoint(which) or run.checkpoint("best" if which == "last" else "last")


def run_image_size(run: Run) -> int:
    return int(run.train_config.get("image_size") or 96)


def _ckpt_key(ckpt: Path) -> CheckpointKey:
    try:
        st_ = Path(ckpt).stat()
        return str(ckpt), st_.st_mtime_ns, st_.st_size
    except OSError:
        return str(ckpt), 0, 0


def feature_set(ckpt: Path, spec: str, which: str) -> FeatureSet | None:
    """Frozen features of a split, with a progress bar the first time (then memory, then the disk cache)."""
    from dashboard.paths import check_data
    from simclr_core.features import features_for

    if attempt("check the data folder", lambda: check_data(spec) or True) is None:
        return None

    def encode() -> FeatureSet | None:
        bar = st.progress(0.0, text=f"Encoding {spec} with {Path(ckpt).name} ...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Encoding {spec}: {done:,} / {total:,} images")

        fs = attempt(f"encode {spec}", features_for, ckpt, spec, which, progress=progress)
        bar.empty()
        return fs

    return _remembered(("feats", *_ckpt_key(ckpt), spec, which), encode)


def embedding(ckpt: Path, spec: str, which: str, method_label: str, points: int) -> EmbeddingTable | None:
    """The map of up to ``points`` images of ``spec`` by the chosen projection."""
    from simclr_core.projection import embedding_table

    method, dims = PROJECTIONS[method_label]

    def project() -> EmbeddingTable | None:
        fs = feature_set(ckpt, spec, which)
        if fs is None:
            return None
        note = " (UMAP compiles on first use: up to a minute)" if method == "umap" and not umap_ready() else ""
        with st.spinner(f"Computing the {method_label} map of {min(points, fs.feats.shape[0]):,} points{note} ..."):
            return attempt(f"compute the {method_label} map", embedding_table, fs, method, dims, points)

    return _remembered(("map", *_ckpt_key(ckpt), spec, which, method, dims, points), project)


def feature_knn(ckpt: Path, spec: str, which: str) -> float | None:
    """kNN accuracy within the split: even-indexed images are the memory bank, odd ones the queries."""
    from simclr_core.knn import knn_accuracy

    def score() -> float | None:
        fs = feature_set(ckpt, spec, which)
        if fs is None or fs.feats.shape[0] < 4:
            return None
        return attempt(
            "compute the kNN accuracy",
            knn_accuracy,
            fs.feats[0::2],
            fs.labels[0::2],
            fs.feats[1::2],
            fs.labels[1::2],
            k=20,
            num_classes=len(fs.classes) or None,
        )

    return _remembered(("knn", *_ckpt_key(ckpt), spec, which), score)


def selected_indices(event: object) -> list[int]:
    """Dataset indices of the points selected on the map (box, lasso or click).

    ``event``: what ``st.plotly_chart(on_select="rerun")`` returns; its ``selection.points`` carry
    each point's customdata (the dataset index).
    """
    points = getattr(getattr(event, "selection", None), "points", None) or []
    out = []
    for p in points:
        value = p.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int | float):
            out.append(int(value))
    return list(dict.fromkeys(out))


def class_of(fs: FeatureSet, index: int) -> str:
    label = int(fs.labels[index])
    return fs.classes[label] if 0 <= label < len(fs.classes) else "unlabelled"


def neighbours(fs: FeatureSet, index: int, k: int) -> tuple[list[int], list[float]]:
    from simclr_core.projection import nearest_neighbours

    idx, sims = nearest_neighbours(fs.feats, index, k)
    return [int(i) for i in idx], [float(s) for s in sims]


def thumbnail_grid(
    images: ImageSet | None,
    indices: list[int],
    classes: list[str],
    labels: torch.Tensor,
    similarities: list[float] | None = None,
    per_row: int = 12,
) -> None:
    """Images by dataset index, captioned with their class (and similarity to the query)."""
    if images is None:
        return
    for start in range(0, len(indices), per_row):
        cols = st.columns(per_row)
        for j, i in enumerate(indices[start : start + per_row]):
            label = int(labels[i])
            name = classes[label] if 0 <= label < len(classes) else ""
            caption = name + (f" · {similarities[start + j]:.2f}" if similarities is not None else "")
            cols[j].image(to_hwc(images.images[i]), caption=caption, width="stretch")


def uploaded_checkpoint(upload: UploadedFile) -> Path | None:
    """Save an uploaded checkpoint under the data root (named by its content) once it loads; else say why.

    The uploads folder is capped: the least recently used checkpoints go first (``simclr_core.data.lru``).
    """
    from simclr_core.data import data_root, lru
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
        lru.enforce(data_root(), "uploads", keep=(path,))
    else:
        lru.touch(path)
    return path
