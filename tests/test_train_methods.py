"""Every method trains through the same engine: its terms and RankMe in metrics.jsonl, a checkpoint any reader loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simclr_core.config import ConfigError, TrainConfig
from simclr_core.features import encode
from simclr_core.methods import METHODS
from simclr_core.model import load_checkpoint
from simclr_core.train import train

TERMS = {
    "simclr": (),
    "byol": ("train_momentum",),
    "barlowtwins": ("train_on_diagonal", "train_off_diagonal"),
    "vicreg": ("train_invariance", "train_variance", "train_covariance"),
    "supcon": (),
}


def method_config(method: str, **kw: object) -> TrainConfig:
    base = dict(
        method=method,
        data="shapes:train" if method == "supcon" else "shapes:unlabeled",
        val_data="shapes:train",
        image_size=32,
        backbone="resnet10",
        hidden_dim=32,
        limit_images=96,
        batch_size=32,
        epochs=2,
        val_limit=60,
        precision="32",
        seed=3,
        monitor_share=1.0,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_logs_its_terms_and_leaves_a_loadable_backbone(tmp_path: Path, method: str) -> None:
    run = train(method_config(method), tmp_path / "runs", name=method)
    assert run.status()["state"] == "finished", run.status()
    assert run.train_config["method"] == method
    rows = run.metrics()
    steps = [r for r in rows if "train_loss" in r]
    assert len(steps) == 6
    for row in steps:
        for name in ("train_loss", "train_acc_top1", *TERMS[method]):
            assert row[name] is not None, (name, row)
        assert not {n for n in row if n.startswith("train_")} - {
            "train_loss", "train_acc_top1", "train_acc_top5", "train_acc_mean_pos", *TERMS[method]
        }  # fmt: skip
    vals = [r for r in rows if "val_loss" in r]
    assert len(vals) == 2 and all(1.0 <= r["rankme"] <= 512 for r in vals) and all("knn_acc" in r for r in vals)
    if method == "byol":
        assert 0.99 <= steps[0]["train_momentum"] <= steps[-1]["train_momentum"] <= 1.0
    ckpt = run.checkpoint("last")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("objective.target.") for k in state) == (method == "byol")
    loaded = load_checkpoint(ckpt)  # features, probe and embeddings read net.* through this
    assert loaded.hparams["method"] == method
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert encode(loaded, images, device="cpu").shape == (4, 512)
    assert encode(ckpt, images, which="z", device="cpu").shape == (4, 32)


def test_byol_target_moves_towards_the_online_network(tmp_path: Path) -> None:
    run = train(method_config("byol", epochs=1), tmp_path / "runs", name="byol")
    state = torch.load(run.checkpoint("last"), map_location="cpu", weights_only=True)["state_dict"]
    online, target = state["net.head.0.weight"], state["objective.target.head.0.weight"]
    assert not torch.equal(online, target)  # it moved with tau < 1, but lags behind


def test_supcon_without_labels_is_refused_before_a_run_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="supcon trains on labels.*labelled split"):
        train(method_config("supcon", data="shapes:unlabeled"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown method 'moco'"):
        method_config("moco").validate()


@pytest.mark.parametrize(
    ("method", "choice", "expected"),
    [("simclr", None, False), ("simclr", True, True), ("vicreg", None, True), ("byol", False, False)],
)
def test_the_head_normalises_its_hidden_layer_as_asked_or_as_the_method_does(
    method: str, choice: bool | None, expected: bool
) -> None:
    from simclr_core.module import SimCLRModule

    module = SimCLRModule(method_config(method, head_batch_norm=choice))
    has_norm = any(isinstance(m, torch.nn.BatchNorm1d) for m in module.net.head.modules())
    assert has_norm is expected


def test_a_simclr_run_with_a_normalised_head_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    run = train(method_config("simclr", head_batch_norm=True, epochs=1), tmp_path, name="bn-head")
    ckpt = load_checkpoint(run.checkpoint("last"))
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in ckpt.net.head.modules())
    assert ckpt.hparams["head_batch_norm"] is True
