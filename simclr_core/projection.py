"""2-D/3-D maps of frozen features (PCA, UMAP, t-SNE) and cosine nearest neighbours, for the Embeddings page.

PCA is an eigendecomposition of the D x D covariance: exact, deterministic and instant for tens
of thousands of points. UMAP (umap-learn, cosine metric as the features were trained with cosine
similarity) compiles its numba kernels on first use, which takes tens of seconds: the dashboard
calls :func:`warm_up_umap` in a background thread at startup and asks :func:`umap_ready` meanwhile.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simclr_core.config import ConfigError
from simclr_core.features import FeatureSet

METHODS = ("umap", "pca", "tsne")
UMAP_NEIGHBOURS = 15

_umap_ready = threading.Event()
_umap_lock = threading.Lock()


def _check(feats: torch.Tensor | np.ndarray, method: str, dims: int) -> np.ndarray:
    if method not in METHODS:
        raise ConfigError(f"projection method must be one of {', '.join(METHODS)}, got {method!r}")
    if dims not in (2, 3):
        raise ConfigError(f"projection dims must be 2 or 3, got {dims}")
    x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    if x.shape[0] < dims + 2:
        raise ConfigError(f"a {dims}-D {method} map needs at least {dims + 2} points, got {x.shape[0]}")
    return x.astype(np.float32, copy=False)


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Top principal components of ``x: (N, D)`` -> ``(N, dims)``, signs fixed so each column's largest |loading| is positive."""
    xt = torch.from_numpy(x).float()
    xt = xt - xt.double().mean(0, keepdim=True).float()
    # The N x D product in float32 (5x faster than float64, and the D x D solve stays float64).
    cov = (xt.T @ xt).double() / max(1, xt.shape[0] - 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    comps = vecs[:, -dims:].flip(1)  # (D, dims), largest variance first
    signs = torch.sign(comps.gather(0, comps.abs().argmax(0, keepdim=True)))
    coords = xt @ (comps * torch.where(signs == 0, 1.0, signs)).float()
    if coords.shape[1] < dims:  # fewer feature dimensions than requested
        coords = F.pad(coords, (0, dims - coords.shape[1]))
    return coords.float().numpy()


def standardise(coords: np.ndarray) -> np.ndarray:
    """``(N, d)`` points centred, scaled to a root-mean-square distance of 1 from their centre."""
    x = np.asarray(coords, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    scale = float(np.sqrt((x**2).sum(axis=1).mean()))
    return (x / scale if scale > 0 else x).astype(np.float32)


def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` standardised, then turned (rotated or reflected) to lie closest to standardised ``target``.

    Orthogonal Procrustes: R = U V^T from the SVD U S V^T of source^T target minimises
    ||source R - target|| over orthogonal R (Schoenemann 1966). Both ``(N, d)``, row i the same point.
    Successive frames of a replay aligned this way differ only by what the encoder changed, not by the
    arbitrary sign and rotation each PCA picks.
    """
    a, b = standardise(source).astype(np.float64), standardise(target).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"procrustes needs the same points in both maps, got {a.shape} and {b.shape}")
    u, _, vt = np.linalg.svd(a.T @ b)
    return (a @ (u @ vt)).astype(np.float32)


def _umap(x: np.ndarray, dims: int, seed: int | None, n_epochs: int | None = None, approx: bool = False) -> np.ndarray:
    import umap  # heavy import (numba); only when asked

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs.*")  # random_state forces one thread, by design
        warnings.filterwarnings("ignore", message=".*spectral initialisation.*")
        reducer = umap.UMAP(
            n_neighbors=min(UMAP_NEIGHBOURS, x.shape[0] - 1),
            n_components=dims,
            metric="cosine",
            min_dist=0.1,
            random_state=seed,
            n_jobs=1 if seed is not None else -1,
            n_epochs=n_epochs,
            init="spectral" if x.shape[0] > 4 * UMAP_NEIGHBOURS else "random",
            force_approximation_algorithm=approx,
        )
        coords = reducer.fit_transform(x)
    _umap_ready.set()
    return np.asarray(coords, dtype=np.float32)


def _tsne(x: np.ndarray, dims: int, seed: int | None) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
    tsne = TSNE(n_components=dims, metric="cosine", init="pca", perplexity=perplexity, random_state=seed)
    return np.asarray(tsne.fit_transform(x), dtype=np.float32)


def project(feats: torch.Tensor | np.ndarray, method: str = "umap", dims: int = 2, seed: int | None = 0) -> np.ndarray:
    """``feats: (N, D)`` -> ``(N, dims) float32`` coordinates.

    ``seed`` makes UMAP/t-SNE reproducible (UMAP then runs single-threaded); ``None`` lets UMAP
    use every core. PCA ignores it.
    """
    x = _check(feats, method, dims)
    if method == "pca":
        return pca(x, dims)
    if method == "umap":
        return _umap(x, dims, seed)
    return _tsne(x, dims, seed)


def warm_up_umap() -> None:
    """Compile UMAP's numba kernels on a tiny random set (tens of seconds the first time; no-op after)."""
    with _umap_lock:
        if _umap_ready.is_set():
            return
        x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
        # Two code paths to compile: exact neighbours (small sets) and pynndescent (over ~4k points),
        # which alone costs ~100 s on first use on a busy 2-core host.
        _umap(x, 2, seed=0, n_epochs=20)
        _umap(x, 2, seed=0, n_epochs=20, approx=True)


def umap_ready() -> bool:
    """Whether a UMAP fit has completed in this process (so the next one will not compile)."""
    return _umap_ready.is_set()


@dataclass
class EmbeddingTable:
    """One map: ``coords (n, dims) float32``, ``labels (n,) int64``, ``indices (n,) int64`` into the dataset."""

    coords: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    classes: list[str]
    method: str
    dims: int
    spec: str
    cached: bool = False

    def rows(self) -> list[dict[str, object]]:
        """One dict per point (for CSV/DataFrame): index, label, class, x, y[, z]."""
        axes = "xyz"[: self.dims]
        return [
            {
                "index": int(i),
                "label": int(y),
                "class": self.classes[y] if 0 <= y < len(self.classes) else "",
                **{a: float(c[j]) for j, a in enumerate(axes)},
            }
            for i, y, c in zip(self.indices, self.labels, self.coords, strict=True)
        ]

    def to_csv(self) -> str:
        """The map as CSV text, the columns of :meth:`rows` (what ``embed --out map.csv`` writes)."""
        import csv
        import io

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["index", "label", "class", *"xyz"[: self.dims]], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return out.getvalue()


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted dataset indices of at most ``limit`` points, drawn with ``seed`` (all points when under the limit)."""
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    if limit < 1:
        raise ConfigError(f"limit must be a positive number of points, got {limit}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False)).astype(np.int64)


def embedding_table(
    fs: FeatureSet, method: str = "umap", dims: int = 2, limit: int | None = None, seed: int = 0, cache: bool = True
) -> EmbeddingTable:
    """Project (a seeded subsample of) a feature set; cached next to the features file."""
    idx = subsample(fs.feats.shape[0], limit, seed)
    path: Path | None = None
    if cache and fs.cache_dir is not None:
        path = Path(fs.cache_dir) / f"{fs.key}-{method}{dims}-n{idx.size}-s{seed}.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    return EmbeddingTable(
                        z["coords"], z["labels"], z["indices"], list(fs.classes), method, dims, fs.spec, cached=True
                    )
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)
    coords = project(fs.feats[torch.from_numpy(idx)], method, dims, seed)
    labels = fs.labels[torch.from_numpy(idx)].numpy().astype(np.int64)
    table = EmbeddingTable(coords, labels, idx, list(fs.classes), method, dims, fs.spec)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, coords=coords, labels=labels, indices=idx)
        tmp.replace(path)
    return table


def nearest_neighbours(feats: torch.Tensor, index: int, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine top-k of row ``index`` in ``feats: (N, D)`` -> ``(indices (k,) int64, similarities (k,) float32)``.

    The query itself comes first (a gallery starts with the image clicked), even when an exact
    duplicate ties with it.
    """
    n = feats.shape[0]
    if not 0 <= index < n:
        raise ConfigError(f"point index {index} is outside 0..{n - 1}")
    fn = F.normalize(feats.float(), dim=1)
    sims = fn @ fn[index]
    rank = sims.clone()
    rank[index] = float("inf")
    top = torch.topk(rank, min(max(1, k), n)).indices
    return top.cpu(), sims[top].cpu()
