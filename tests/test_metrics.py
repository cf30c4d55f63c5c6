"""The run store's metric names: one table, and every reader draws from it."""

from __future__ import annotations

from simclr_core import metrics as M


def test_the_table_names_each_metric_once_and_groups_them() -> None:
    names = [m.name for m in M.METRICS]
    assert len(names) == len(set(names))
    assert M.TRAIN_METRICS == ("train_loss", "train_acc_top1", "train_acc_top5", "train_acc_mean_pos")
    assert (*M.TRAIN_METRICS, "lr", "views_per_s", *M.METHOD_METRICS) == M.STEP_METRICS
    assert M.EPOCH_METRICS == ("val_loss", "val_acc_top1", "val_acc_top5", "val_acc_mean_pos", "knn_acc", "rankme")
    assert M.is_per_epoch("knn_acc") and not M.is_per_epoch("train_loss")
    assert not set(M.ROW_KEYS) & set(names)


def test_the_dashboard_draws_only_metrics_of_the_table() -> None:
    from dashboard import figures

    names = {m.name for m in M.METRICS}
    assert {metric for _, panel, _ in figures.CURVES for metric, _ in panel} <= names
    assert set(figures.COMPARE_METRICS) <= names


def test_the_monitors_are_epoch_metrics() -> None:
    from simclr_core.config import MONITORS

    assert set(MONITORS) <= set(M.EPOCH_METRICS)


def test_every_method_term_is_in_the_table() -> None:
    from simclr_core.methods import METHODS, make_method
    from simclr_core.model import SimCLRNet

    net = SimCLRNet("resnet10", 8, small_input=True)
    for name in METHODS:
        assert {f"train_{term}" for term in make_method(name, net, 8).terms} <= set(M.METHOD_METRICS), name
