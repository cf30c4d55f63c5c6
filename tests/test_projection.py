"""PCA/UMAP maps and cosine neighbours. Budget: ~20 s, most of it UMAP's numba compile on first use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simclr_core.config import ConfigError
from simclr_core.features import FeatureSet
from simclr_core.projection import embedding_table, nearest_neighbours, project, umap_ready, warm_up_umap


def clusters(n_per: int = 40, dim: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, dim, generator=g) * 5
    y = torch.arange(3).repeat_interleave(n_per)
    return centres[y] + torch.randn(y.numel(), dim, generator=g), y


def test_pca_is_exact_and_deterministic() -> None:
    g = torch.Generator().manual_seed(0)
    # Variance 9, 4, 1 along three known axes of a random rotation.
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g))
    x = torch.randn(500, 3, generator=g) * torch.tensor([3.0, 2.0, 0.1]) @ q[:3] + 7.0
    a, b = project(x, "pca", 2), project(x, "pca", 2)
    assert a.shape == (500, 2) and a.dtype == np.float32 and np.array_equal(a, b)
    var = a.var(0)
    assert var[0] > var[1] > 1.0 and abs(var[0] / 9 - 1) < 0.2 and abs(a.mean(0)).max() < 1e-3
    assert project(x, "pca", 3).shape == (500, 3)


def test_umap_shapes_and_seeded_determinism() -> None:
    x, y = clusters()
    warm_up_umap()
    assert umap_ready()
    a = project(x, "umap", 2, seed=1)
    b = project(x, "umap", 2, seed=1)
    assert a.shape == (120, 2) and np.allclose(a, b)
    # Clusters stay apart: each point's nearest map neighbour shares its label.
    d = ((a[:, None] - a[None]) ** 2).sum(-1) + np.eye(len(a)) * 1e9
    assert (y.numpy()[d.argmin(1)] == y.numpy()).mean() > 0.95
    assert project(x, "umap", 3, seed=1).shape == (120, 3)


def test_embedding_table_is_cached_next_to_features(tmp_path: Path) -> None:
    x, y = clusters()
    fs = FeatureSet(x, y, ["a", "b", "c"], "synthetic", "h", key="abc-123", cache_dir=tmp_path)
    t1 = embedding_table(fs, "pca", 2, limit=50, seed=4)
    assert t1.coords.shape == (50, 2) and len(set(t1.indices.tolist())) == 50 and not t1.cached
    assert np.array_equal(t1.labels, y.numpy()[t1.indices])
    t2 = embedding_table(fs, "pca", 2, limit=50, seed=4)
    assert t2.cached and np.array_equal(t1.coords, t2.coords) and np.array_equal(t1.indices, t2.indices)
    assert len(list(tmp_path.glob("abc-123-pca2-n50-s4.npz"))) == 1
    assert t1.rows()[0].keys() == {"index", "label", "class", "x", "y"}


def test_neighbours_start_with_the_query() -> None:
    x, y = clusters()
    x[5] = x[6] * 2  # an exact cosine duplicate must not displace the query
    idx, sims = nearest_neighbours(x, 6, k=8)
    assert idx[0] == 6 and idx[1] == 5 and sims.shape == (8,)
    assert torch.all(sims[:-1] >= sims[1:] - 1e-6) and abs(float(sims[0]) - 1.0) < 1e-5
    assert (y[idx] == y[6]).all()


def test_bad_projection_requests() -> None:
    x, _ = clusters()
    with pytest.raises(ConfigError):
        project(x, "mds", 2)
    with pytest.raises(ConfigError):
        project(x, "pca", 4)
    with pytest.raises(ConfigError):
        nearest_neighbours(x, 10_000)


def test_cli_embed_writes_csv_and_npz(tmp_path: Path) -> None:
    import csv

    from simclr_core.__main__ import main

    args = [
        "embed",
        "--random-init",
        "--image-size",
        "32",
        "--data",
        "shapes:test?n=3",
        "--method",
        "pca",
        "--device",
        "cpu",
    ]
    assert main([*args, "--out", str(tmp_path / "e.csv")]) == 0
    with open(tmp_path / "e.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and set(rows[0]) == {"index", "label", "class", "x", "y"}
    assert main([*args, "--dims", "3", "--limit", "12", "--out", str(tmp_path / "e.npz")]) == 0
    with np.load(tmp_path / "e.npz") as z:
        assert z["coords"].shape == (12, 3) and z["indices"].shape == (12,) and len(z["classes"]) == 10
    assert main([*args, "--out", str(tmp_path / "e.txt")]) == 2
