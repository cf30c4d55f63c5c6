"""The lr schedule: epoch-sized as the seed's, or fitted to a time budget so a budget run ends annealed."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from simclr_core.config import TrainConfig
from simclr_core.schedule import FINAL_RATIO, TrainingClock, budget_factor, cosine, cosine_warmup_factor
from simclr_core.store import Run
from simclr_core.train import TrainingJob, train


def quick(**kw: object) -> TrainConfig:
    base = dict(
        data="shapes:unlabeled",
        image_size=32,
        limit_images=128,
        batch_size=32,
        epochs=2,
        val_limit=40,
        precision="32",
        seed=3,
        lr=1e-3,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def lrs(run: Run) -> list[float]:
    return [r["lr"] for r in run.metrics() if "lr" in r]


def test_budget_factor_ramps_then_follows_the_time_used() -> None:
    assert budget_factor(0, 0.0, warmup_steps=4) == pytest.approx(0.25)
    assert budget_factor(3, 0.0, warmup_steps=4) == pytest.approx(1.0)
    assert budget_factor(100, 0.5, warmup_steps=4) == pytest.approx(cosine(0.5))
    assert budget_factor(100, 1.0, warmup_steps=4) == pytest.approx(FINAL_RATIO)
    assert budget_factor(100, 1.7, warmup_steps=0) == pytest.approx(FINAL_RATIO)  # held at the floor, not rising


def test_clock_adds_previous_sessions_and_expires() -> None:
    clock = TrainingClock(budget_s=0.2, previous_s=0.15)
    assert clock.fraction() == pytest.approx(0.75) and not clock.expired()
    clock.start()
    time.sleep(0.06)
    assert clock.expired() and clock.fraction() == 1.0 and clock.remaining() == 0.0
    assert TrainingClock().fraction() == 0.0 and TrainingClock().remaining() is None


def test_epoch_schedule_is_the_seeds_cosine() -> None:
    f = [cosine_warmup_factor(s, total_steps=100, warmup_steps=0) for s in range(101)]
    assert f[0] == 1.0 and f[100] == pytest.approx(FINAL_RATIO) and all(a >= b for a, b in zip(f, f[1:], strict=False))


def test_a_budget_run_ends_annealed_when_its_time_is_up(tmp_path: Path) -> None:
    """epochs far beyond the budget: the time budget alone sizes the cosine, and the run ends at its floor."""
    run = train(
        quick(epochs=10_000, max_minutes=0.2, limit_images=256), tmp_path
    )  # a cheap monitor: it cannot eat the budget
    status = run.status()
    assert status["state"] == "finished" and "time budget" in status["message"], status
    values = lrs(run)
    assert len(values) >= 6, "too few steps to see a schedule"
    assert values[-1] <= 1e-3 * (FINAL_RATIO + 0.05), values[-5:]  # within a step of the floor
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:], strict=False))  # decreasing throughout
    assert values[len(values) // 2] < 0.9e-3  # really annealing, not flat until a last drop


def test_a_resumed_budget_run_continues_its_schedule(tmp_path: Path) -> None:
    job = TrainingJob(quick(epochs=10_000, max_minutes=0.25, limit_images=256), tmp_path, name="budget").start()
    run = job.run
    assert run is not None
    end = time.time() + 120
    # Far enough down the cosine that a restart (back at the 1e-3 peak) cannot pass for a continuation.
    while time.time() < end and (len(lrs(run)) < 8 or lrs(run)[-1] > 0.92e-3):
        time.sleep(0.2)
    job.stop()
    assert job.join(120) and run.status()["state"] == "stopped"
    before = lrs(run)
    assert before[-1] < before[0]  # a budgeted schedule was underway
    time.sleep(1.0)  # time off between sessions is not training time
    train(resume=run.path)
    after = lrs(run)[len(before) :]
    assert run.status()["state"] == "finished"
    # Continuous: the first resumed step goes on down from the stopped lr (a restarted one would be back at 1e-3).
    assert after[0] <= before[-1] * 1.001 and after[0] < 0.95e-3, (before[-3:], after[:3])
    assert after[-1] <= 1e-3 * (FINAL_RATIO + 0.05)


def test_module_and_schedule_work_in_a_plain_trainer(tmp_path: Path) -> None:
    """Outside our own Trainer: metrics reach any Lightning logger; the cosine spans the Trainer's steps."""
    from simclr_core.data import load_dataset
    from simclr_core.data.batches import EpochBatches, UInt8Images, batch_loader
    from simclr_core.module import SimCLRModule

    cfg = quick(epochs=2)
    module = SimCLRModule(cfg)
    images = load_dataset(cfg.data, cfg.image_size).images[:128]
    loader = batch_loader(UInt8Images(images), EpochBatches(128, 32, shuffle=True, seed=0, world=1, rank=0), pin=False)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[pl.callbacks.LearningRateMonitor("step")],
    )
    trainer.fit(module, loader)
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    loss = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    lr = [float(r["lr-AdamW"]) for r in rows if r.get("lr-AdamW")]
    assert len(loss) == 8 and all(v > 0 for v in loss)
    assert any(r.get("train_acc_top5") for r in rows)
    assert len(lr) == 8 and lr[0] == pytest.approx(1e-3)
    # 8 planned steps: the last is 7/8 of the way down the cosine, not collapsed at step 2.
    assert lr[-1] == pytest.approx(1e-3 * cosine(7 / 8), rel=1e-4)
    assert all(a > b for a, b in zip(lr, lr[1:], strict=False))
