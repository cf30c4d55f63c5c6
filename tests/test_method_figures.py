"""The dashboard shows every method alike: RankMe and the method's terms on the live chart, methods in probe labels."""

from __future__ import annotations

from dashboard import figures


def test_live_chart_draws_rankme_and_the_methods_terms_on_a_log_axis() -> None:
    rows = [
        {
            "step": s,
            "epoch": 0,
            "time": float(s),
            "train_loss": 1 / s,
            "train_invariance": 0.1,
            "train_covariance": 0.01,
        }
        for s in range(1, 10)
    ]
    rows.append({"step": 9, "epoch": 0, "time": 9.0, "val_loss": 0.4, "knn_acc": 0.3, "rankme": 40.0})
    fig = figures.curves_figure(rows)
    names = {trace.name for trace in fig.data}
    assert {"RankMe", "invariance", "covariance"} <= names
    rank = next(t for t in fig.data if t.name == "RankMe")
    assert list(rank.y) == [40.0]
    assert fig.layout.yaxis8.type == "log"


def test_probe_figure_and_table_name_the_method() -> None:
    report = {
        "source": {"kind": "checkpoint", "method": "vicreg"},
        "features": "h",
        "table": [{"size": 10, "n_train": 100, "probe_test_acc_mean": 0.5, "knn_acc_mean": 0.4}],
    }
    fig = figures.probe_figure({"run-a": report, "run-old": {**report, "source": {"kind": "checkpoint"}}}, [])
    assert {t.name for t in fig.data} >= {"run-a · vicreg (h)", "run-old (h)"}
    assert figures.probe_table({"run-a": report})[0]["method"] == "vicreg"
