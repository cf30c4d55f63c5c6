"""The lab's figures from plain data: the ablation heatmap (cells, pending states, clickable runs) and kNN curves."""

from __future__ import annotations

from dashboard.lab_figures import ablation_heatmap, knn_curves


def result() -> dict:
    cells = [
        {"ops": [], "state": "finished", "knn_acc": 0.2, "run": "/r/none"},
        {"ops": ["crop"], "state": "finished", "knn_acc": 0.5, "run": "/r/crop"},
        {"ops": ["color"], "state": "running", "knn_acc": None, "run": "/r/color"},
        {"ops": ["crop", "color"], "state": "queued", "knn_acc": None, "run": None},
    ]
    return {
        "ops": ["crop", "color"],
        "labels": ["crop", "colour"],
        "matrix": [[0.5, None], [None, None]],
        "runs": [["/r/crop", None], [None, "/r/color"]],
        "cells": cells,
        "reference": cells[0],
        "scored": "shapes:test",
    }


def test_the_heatmap_says_each_cells_score_or_state_and_carries_its_run() -> None:
    fig = ablation_heatmap(result())
    heat, marks = fig.data
    assert [list(row) for row in heat.text] == [["50.0", "queued"], ["queued", "running…"]]
    assert heat.z[0][0] == 50.0 and heat.z[1][1] is None
    assert sorted(marks.customdata) == ["/r/color", "/r/crop"]  # only cells that have a run are clickable
    assert "no augmentation: 20.0 %" in fig.layout.title.text
    assert fig.layout.yaxis.autorange == "reversed"  # the first op's rows top-down, as in the paper


def test_knn_curves_plot_minutes_against_percent() -> None:
    rows = [{"time": 100.0, "step": 0}, {"time": 130.0, "knn_acc": 0.25}, {"time": 160.0, "knn_acc": 0.5}]
    fig = knn_curves({"#1": rows, "#2": [{"time": 0.0}]})
    assert len(fig.data) == 1 and list(fig.data[0].x) == [0.5, 1.0] and list(fig.data[0].y) == [25.0, 50.0]
