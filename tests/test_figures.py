"""The dashboard's plotly figures, built from plain data without a Streamlit server."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import figures
from simclr_core.projection import EmbeddingTable


def _rows(steps: int) -> list[dict]:
    rows = [{"step": s, "epoch": s // 4, "time": 100.0 + 30 * s, "train_loss": 5.0 - 0.1 * s} for s in range(steps)]
    rows.append({"step": steps, "epoch": steps // 4, "time": 100.0 + 30 * steps, "knn_acc": 0.4, "val_loss": 4.0})
    return rows


def test_curves_draw_what_was_logged_and_say_what_is_pending() -> None:
    fig = figures.curves_figure(_rows(8))
    names = [t.name for t in fig.data]
    assert names == ["train", "val", "kNN"]
    assert list(fig.data[0].y) == pytest.approx([5.0 - 0.1 * s for s in range(8)])
    pending = {a.text for a in fig.layout.annotations if a.text in ("waiting for data", "after the first epoch")}
    assert pending == {"waiting for data"}  # top-1/5, rank, lr and views/s were not logged


def test_the_knn_panel_shows_the_random_init_level_as_a_dashed_line() -> None:
    rows = [{"step": 0, "epoch": 0, "time": 99.0, "knn_acc_random_init": 0.31}, *_rows(8)]
    fig = figures.curves_figure(rows)
    lines = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(lines) == 1 and lines[0].y0 == lines[0].y1 == pytest.approx(0.31)
    assert lines[0].yref == "y4"  # the kNN panel, not the loss
    assert any(a.text == "random init 31%" for a in fig.layout.annotations)
    assert "kNN" in [t.name for t in fig.data]


def test_series_skips_rows_without_the_metric() -> None:
    xs, ys = figures.series([{"step": 1, "a": 2.0}, {"step": 2}, {"step": 3, "a": "nan?"}, {"a": 1.0}], "a")
    assert (xs, ys) == ([1], [2.0])


def test_compare_against_minutes_starts_each_run_at_zero() -> None:
    fig = figures.compare_figure({"run-a": _rows(4), "run-b": _rows(2)}, "train_loss", "time")
    assert [t.name for t in fig.data] == ["run-a", "run-b"]
    assert list(fig.data[0].x) == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert fig.layout.xaxis.title.text == "minutes"


def test_probe_figure_has_runs_random_init_and_supervised_points() -> None:
    table = [
        {"size": 10, "probe_test_acc_mean": 0.3, "probe_test_acc_std": 0.01, "random_probe_test_acc_mean": 0.2},
        {"size": 100, "probe_test_acc_mean": 0.5, "probe_test_acc_std": 0.02, "random_probe_test_acc_mean": 0.3},
    ]
    reports = {"run-a": {"table": table, "features": "h"}, "run-b": {"table": table, "features": "z"}}
    supervised = [{"run": "sup", "size": 100, "test_acc": 0.45, "epochs": 3}]
    fig = figures.probe_figure(reports, supervised)
    assert [t.name for t in fig.data] == ["run-a (h)", "random init", "run-b (z)", "supervised from scratch"]
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [10, 100]
    rows = figures.probe_table(reports)
    assert len(rows) == 4 and rows[0]["images per class"] == 10 and rows[0]["random-init probe"] == 0.2


@pytest.mark.parametrize("dims", [2, 3])
def test_embedding_figure_one_trace_per_class_carrying_dataset_indices(dims: int) -> None:
    rng = np.random.default_rng(0)
    table = EmbeddingTable(
        coords=rng.standard_normal((30, dims)).astype(np.float32),
        labels=np.repeat(np.arange(3), 10),
        indices=np.arange(100, 130),
        classes=["a", "b", "c", "never drawn"],
        method="PCA",
        dims=dims,
        spec="shapes:test",
    )
    fig = figures.embedding_figure(table)
    assert [t.name for t in fig.data] == ["a", "b", "c"]
    assert {t.type for t in fig.data} == {"scattergl" if dims == 2 else "scatter3d"}
    assert list(fig.data[1].customdata) == list(range(110, 120))
