"""SimCLRModule + SimCLRDataModule in a plain pl.Trainer: nothing of our run orchestration is needed."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from simclr_core.config import TrainConfig, augmentation_preset
from simclr_core.data.training_data import TrainingData
from simclr_core.datamodule import SimCLRDataModule
from simclr_core.module import SimCLRModule
from simclr_core.schedule import cosine_warmup_factor

LR = 1e-3


def tiny_config() -> TrainConfig:
    """64 images in batches of 16: 4 steps per epoch, 8 in all, the first epoch's 4 a warm-up."""
    return TrainConfig(
        data="shapes:unlabeled?n=64",
        val_data="shapes:train?n=4",  # 40 labelled images: val_* and the kNN monitor in a blink
        image_size=32,
        small_input=True,
        backbone="resnet10",
        hidden_dim=16,
        batch_size=16,
        epochs=2,
        warmup_epochs=1,
        lr=LR,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        seed=0,
        monitor_share=1.0,
    )


def plain_trainer(log_dir: Path, epochs: int, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """A stock Lightning Trainer with a CSVLogger: none of this project's callbacks or run store."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=CSVLogger(log_dir),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks or [],
    )


def test_the_pair_fits_in_a_plain_trainer_with_a_csv_logger(tmp_path: Path) -> None:
    cfg = tiny_config()
    module, datamodule = SimCLRModule(cfg), SimCLRDataModule(cfg)
    trainer = plain_trainer(tmp_path, cfg.epochs, [pl.callbacks.LearningRateMonitor("step")])
    trainer.fit(module, datamodule=datamodule)

    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    total = int(trainer.estimated_stepping_batches)
    assert total == 8 and trainer.global_step == total
    loss = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert len(loss) == total and all(math.isfinite(v) for v in loss)
    assert "train_loss" in trainer.progress_bar_metrics  # the CLI's progress bar shows the loss
    # Warm-up over the first epoch's 4 steps, then the cosine over the Trainer's 8: not collapsed at step 2.
    lr = [float(r["lr-AdamW"]) for r in rows if r.get("lr-AdamW")]
    warmup = round(cfg.warmup_epochs * total / cfg.epochs)
    assert lr == pytest.approx([LR * cosine_warmup_factor(s, total, warmup) for s in range(total)], rel=1e-5)
    assert lr[2] == pytest.approx(0.75 * LR) and max(lr) == pytest.approx(LR) and lr[-1] < lr[4]
    # The monitoring split came from the datamodule, its query mask too: the kNN monitor ran each epoch.
    assert module.knn_query_mask is datamodule.knn_query_mask is not None
    knn = [float(r["knn_acc"]) for r in rows if r.get("knn_acc")]
    assert len(knn) == cfg.epochs and all(0.0 <= v <= 1.0 for v in knn)
    assert any(r.get("val_loss") for r in rows)


def test_without_labelled_data_the_pair_trains_and_skips_validation(tmp_path: Path) -> None:
    """No monitoring split: ``val_dataloader`` is empty, so Lightning runs no validation and the kNN monitor is off."""
    cfg = replace(tiny_config(), epochs=1, warmup_epochs=0)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    module, datamodule = SimCLRModule(cfg), SimCLRDataModule(cfg, TrainingData(images))
    trainer = plain_trainer(tmp_path, cfg.epochs)
    trainer.fit(module, datamodule=datamodule)

    assert datamodule.val_dataloader() == [] and module.knn_query_mask is None
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    assert trainer.global_step == 2 and len([r for r in rows if r.get("train_loss")]) == 2
    assert not any(r.get("val_loss") or r.get("knn_acc") for r in rows)
