"""DDP through the CLI: two gloo processes on CPU leave one consistent run directory written by rank 0.

Plus the pieces that make DDP correct without a second process: per-rank shards reshuffled each
epoch, and per-rank augmentation streams reproducible from the seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simclr_core import train as train_mod
from simclr_core.augment import make_views
from simclr_core.config import AugmentationConfig, ConfigError, TrainConfig
from simclr_core.data.batches import EpochBatches
from simclr_core.distributed import env_global_rank
from simclr_core.run_open import open_run
from simclr_core.seeding import stream_seed
from simclr_core.store import list_runs

ROOT = Path(__file__).resolve().parents[1]
IMAGES, BATCH, EPOCHS, WORLD = 64, 16, 2, 2


def _epoch(sampler: EpochBatches, epoch: int) -> list[torch.Tensor]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_shards_are_disjoint_cover_the_epoch_and_reshuffle() -> None:
    n, per_rank = 50, 4  # 50 // (4 * 2) = 6 steps; 2 images dropped per epoch (drop_last)
    ranks = [EpochBatches(n, per_rank, shuffle=True, seed=7, world=WORLD, rank=r) for r in range(WORLD)]
    epochs = []
    for epoch in range(2):
        shards = [_epoch(s, epoch) for s in ranks]
        assert [len(b) for b in shards] == [6, 6]  # same number of equal-size steps on every rank
        seen = torch.cat([torch.cat(b) for b in shards])
        assert len(seen) == len(seen.unique()) == 48  # disjoint, nothing seen twice in an epoch
        epochs.append([torch.cat(b) for b in shards])
    for r in range(WORLD):
        assert not torch.equal(epochs[0][r], epochs[1][r])  # reshuffled each epoch
    again = EpochBatches(n, per_rank, shuffle=True, seed=7, world=WORLD, rank=1)
    assert torch.equal(torch.cat(_epoch(again, 1)), epochs[1][1])  # reproducible from the seed


def test_augmentation_streams_differ_per_rank_and_repeat_from_seed() -> None:
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cfg = AugmentationConfig(crop_size=32)

    def views(seed: int, rank: int, step: int) -> torch.Tensor:
        # The module seeds its generator with (seed, global rank, "train", global step).
        g = torch.Generator().manual_seed(stream_seed(seed, rank, "train", step))
        return make_views(images, cfg, 2, g)

    assert torch.equal(views(42, 0, 3), views(42, 0, 3))
    assert not torch.equal(views(42, 0, 3), views(42, 1, 3))
    assert not torch.equal(views(42, 0, 3), views(43, 0, 3))


LAUNCHER_ENVS = [
    {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"},  # torchrun
    {"SLURM_PROCID": "3", "SLURM_NTASKS": "4"},  # srun
    {"LOCAL_RANK": "1", "WORLD_SIZE": "2"},  # Lightning's own launcher (children)
]
_RANK_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SIMCLR_RUN_DIR")


@pytest.fixture(scope="module")
def prepared(data_root: Path) -> train_mod.Prepared:
    config = TrainConfig(data="shapes:unlabeled?n=8", val_data="shapes:train?n=1", image_size=32, batch_size=4)
    return train_mod.prepare(config)


@pytest.mark.parametrize("env", LAUNCHER_ENVS, ids=["torchrun", "slurm", "lightning"])
def test_ranks_above_zero_never_create_a_run_directory(
    env: dict[str, str], prepared: train_mod.Prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever launched the processes, only rank 0 creates a run (torchrun/SLURM ranks get no $SIMCLR_RUN_DIR)."""
    for key in _RANK_VARS:
        monkeypatch.delenv(key, raising=False)
    assert env_global_rank() == 0
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert env_global_rank() > 0
    assert open_run(prepared, tmp_path / "runs", "x", None, None) == (None, None)  # no run, no lock
    assert not (tmp_path / "runs").exists()
    for key in env:
        monkeypatch.delenv(key)
    assert open_run(prepared, tmp_path / "runs", "x", None, None) is not None  # rank 0 does


def test_dashboard_job_refuses_ddp_before_creating_anything(tmp_path: Path, data_root: Path) -> None:
    config = TrainConfig(
        data="shapes:unlabeled?n=8",
        val_data="shapes:train?n=1",
        image_size=32,
        batch_size=4,
        devices=2,
        strategy="ddp",
        device="cpu",
    )
    with pytest.raises(ConfigError, match="cannot start inside the dashboard"):
        train_mod.TrainingJob(config, tmp_path / "runs").start()
    assert not (tmp_path / "runs").exists()


def test_two_process_cli_run_leaves_one_consistent_run_directory(tmp_path: Path, data_root: Path) -> None:
    runs = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "simclr_core", "train",
        "--data", f"shapes:unlabeled?n={IMAGES}", "--val-data", "shapes:train?n=4", "--val-limit", "32", "--monitor-share", "1",
        "--image-size", "32", "--small-input", "--hidden-dim", "32", "--batch-size", str(BATCH),
        "--epochs", str(EPOCHS), "--precision", "32", "--device", "cpu", "--devices", str(WORLD),
        "--strategy", "ddp", "--runs-dir", str(runs), "--name", "ddp", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(data_root), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("SIMCLR_RUN_DIR", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"batch {BATCH} global = {BATCH // WORLD} per device" in out

    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"expected one run directory, got {[p.name for p in dirs]}"
    run_dir = dirs[0]
    assert [r.path for r in list_runs(runs)] == [run_dir]  # what the dashboard lists

    config = json.loads((run_dir / "config.json").read_text())
    assert config["world_size"] == WORLD and config["per_device_batch"] == BATCH // WORLD
    assert config["config"]["batch_size"] == BATCH and config["config"]["strategy"] == "ddp"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished", status

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps_per_epoch = IMAGES // BATCH  # global batches: the two ranks share each step
    train_steps = [r["step"] for r in rows if "train_loss" in r]
    assert train_steps == list(range(1, EPOCHS * steps_per_epoch + 1)), train_steps  # no duplicates, no gaps
    val_rows = [r for r in rows if "val_loss" in r]
    assert [r["epoch"] for r in val_rows] == list(range(EPOCHS))
    assert all(0.0 <= r["knn_acc"] <= 1.0 for r in val_rows)

    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "last.ckpt"], ckpts  # no temporary or per-rank leftovers
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == EPOCHS * steps_per_epoch
    leftovers = [p for p in tmp_path.iterdir() if p.name != "runs"]
    assert not leftovers, f"a rank wrote outside the run directory: {leftovers}"


SAME_LR_SCRIPT = """
import json, sys
import pytorch_lightning as pl
import torch
from simclr_core.config import TrainConfig
from simclr_core.data.batches import EpochBatches, UInt8Images, batch_loader
from simclr_core.module import SimCLRModule

out = sys.argv[1]
cfg = TrainConfig(image_size=32, small_input=True, hidden_dim=16, batch_size=8, epochs=100, max_minutes=1.0,
                  precision="32", lr=1e-3, warmup_epochs=0)
module = SimCLRModule(cfg)
images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)


class Record(pl.Callback):
    def setup(self, trainer, pl_module, stage):
        # Rank 1's clock runs 20 s ahead of rank 0's: on its own it would anneal faster.
        pl_module.clock.previous_s = 20.0 * trainer.global_rank
        self.lrs = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_end(self, trainer, pl_module):
        with open(f"{out}/lr{trainer.global_rank}.json", "w") as f:
            json.dump(self.lrs, f)


rank_sampler = EpochBatches(64, 4, shuffle=True, seed=0, world=2)
trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=25, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     use_distributed_sampler=False, callbacks=[Record()])
trainer.fit(module, batch_loader(UInt8Images(images), rank_sampler, False))
"""


def test_budget_schedule_steps_the_same_lr_on_every_rank(tmp_path: Path, data_root: Path) -> None:
    """Clocks differ across ranks; the budget's lr follows rank 0's, so DDP replicas stay identical."""
    script = tmp_path / "same_lr.py"
    script.write_text(SAME_LR_SCRIPT)
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(data_root), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    lr0, lr1 = (json.loads((tmp_path / f"lr{r}.json").read_text()) for r in (0, 1))
    assert len(lr0) == 25 and lr0 == lr1
    assert lr0[-1] < lr0[0]  # rank 0's clock had moved the schedule on
