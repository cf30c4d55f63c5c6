"""Exports: the map as CSV (the Embeddings page's download), charts with Plotly's PNG button."""

from __future__ import annotations

import csv
import io

import numpy as np

from dashboard import figures
from simclr_core.projection import EmbeddingTable


def table(dims: int) -> EmbeddingTable:
    coords = np.arange(3 * dims, dtype=np.float32).reshape(3, dims) / 4
    return EmbeddingTable(
        coords=coords,
        labels=np.array([0, 1, 1]),
        indices=np.array([7, 2, 40]),
        classes=["circle", "star, filled"],
        method="umap",
        dims=dims,
        spec="shapes:test",
    )


def test_the_map_csv_has_index_label_class_and_coordinates() -> None:
    rows = list(csv.DictReader(io.StringIO(table(2).to_csv())))
    assert list(rows[0]) == ["index", "label", "class", "x", "y"]
    assert [(r["index"], r["label"], r["class"]) for r in rows] == [
        ("7", "0", "circle"),
        ("2", "1", "star, filled"),
        ("40", "1", "star, filled"),
    ]
    assert [float(rows[2]["x"]), float(rows[2]["y"])] == [1.0, 1.25]
    assert list(next(csv.DictReader(io.StringIO(table(3).to_csv())))) == ["index", "label", "class", "x", "y", "z"]


def test_charts_show_the_toolbar_with_a_named_png() -> None:
    config = figures.chart_config("demo-run")
    assert config["displayModeBar"] is True
    assert config["toImageButtonOptions"] == {"filename": "demo-run", "scale": 2}
