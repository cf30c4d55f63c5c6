"""Training engine end to end on the built-in shapes data: learning, the run store, stop/resume, failures.

Budget: about 2-3 minutes on 2 idle cores in total (tiny_run included); runs use 32x32 images and
a few hundred images at most. Fast non-learning checks use the standard ResNet stem (10x cheaper
at 32x32 than --small-input).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from simclr_core.__main__ import main as cli_main
from simclr_core.config import ConfigError, TrainConfig
from simclr_core.data import load_dataset
from simclr_core.data.batches import EpochBatches, balanced_subset, knn_query_mask
from simclr_core.model import CheckpointError, load_checkpoint
from simclr_core.module import normalise_u8
from simclr_core.schedule import cosine_warmup_factor
from simclr_core.store import Run, list_runs
from simclr_core.train import TrainingJob, train

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT.parent / "shared" / "bench" / "tutorial_reference.py"


def quick_config(**kw: object) -> TrainConfig:
    """Cheapest config that still exercises everything: 128 images, 4 steps per epoch."""
    base = dict(
        data="shapes:unlabeled",
        image_size=32,
        small_input=False,
        limit_images=128,
        batch_size=32,
        epochs=2,
        val_limit=60,
        precision="32",
        seed=1,
        monitor_share=1.0,  # validate every epoch: these tests count validation rows
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def train_rows(run: Run) -> list[dict]:
    return [r for r in run.metrics() if "train_loss" in r]


def val_rows(run: Run) -> list[dict]:
    return [r for r in run.metrics() if "val_loss" in r]


def wait_for(condition, timeout: float = 120.0, what: str = "condition") -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- the shared tiny run ------------------------------------------------------------------------
def test_tiny_run_writes_the_run_directory_contract(tiny_run: Path) -> None:
    run = Run(tiny_run)
    status = run.status()
    assert status["state"] == "finished" and "completed 2 epochs" in status["message"]
    assert status["step"] == status["total_steps"] == 6 and status["progress"] == 1.0
    assert run.config["kind"] == "simclr" and run.config["config"]["small_input"] is True
    assert {"torch", "pytorch_lightning"} <= set(run.config["versions"])
    rows = train_rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for r in rows:
        assert {
            "epoch",
            "time",
            "train_loss",
            "train_acc_top1",
            "train_acc_top5",
            "train_acc_mean_pos",
            "lr",
            "views_per_s",
        } <= set(r)
        assert r["views_per_s"] > 0 and 0 <= r["train_acc_top1"] <= r["train_acc_top5"] <= 1
    assert rows[0]["lr"] > rows[-1]["lr"] >= 5e-4 / 50 * 0.999  # cosine down to lr/50
    vals = val_rows(run)
    assert [(r["epoch"], r["step"]) for r in vals] == [(0, 3), (1, 6)]
    assert all(0 <= r["knn_acc"] <= 1 and r["val_acc_mean_pos"] >= 1 for r in vals)
    assert list((run.tensorboard_dir).glob("events.out.tfevents.*"))
    last = load_checkpoint(run.checkpoint("last"))
    best = load_checkpoint(run.checkpoint("best"))
    assert last.source == best.source == "simclr_studio" and last.global_step == 6
    assert last.hparams["small_input"] is True and last.hparams["image_size"] == 32
    assert run.checkpoint("best").stat().st_size < run.checkpoint("last").stat().st_size  # weights only
    assert list_runs(tiny_run.parent) == [run]


# -- learning -------------------------------------------------------------------------------------
def test_short_run_lowers_the_loss(tmp_path: Path) -> None:
    config = quick_config(limit_images=256, batch_size=64, epochs=4, val_limit=100, lr=1e-3, seed=0)
    run = train(config, tmp_path)
    rows, vals = train_rows(run), val_rows(run)
    assert len(rows) == 16 and len(vals) == 4  # the validation loss of 12 steps moves less than its noise
    first = sum(r["train_loss"] for r in rows[:4]) / 4
    last = sum(r["train_loss"] for r in rows[-4:]) / 4
    assert last < first - 0.1, (first, last)
    assert vals[-1]["val_loss"] < vals[0]["val_loss"]


def test_knn_monitor_matches_an_independent_computation(tiny_run: Path) -> None:
    """knn_acc in metrics.jsonl is the kNN accuracy of the checkpoint's frozen features on the held-out split."""
    run = Run(tiny_run)
    cfg = TrainConfig.from_dict(run.train_config)
    val = load_dataset("shapes:train", 32)
    keep = balanced_subset(val.labels, cfg.val_limit, cfg.seed)
    labels = val.labels[keep]
    assert torch.bincount(labels).tolist() == [10] * 10  # class-balanced subset
    query = knn_query_mask(labels, cfg.seed, limit=40)
    assert torch.bincount(labels[query]).tolist() == [4] * 10  # queries are class-balanced too
    assert knn_query_mask(labels, cfg.seed).all()  # at most 5,000 queries: here every image
    net = load_checkpoint(run.checkpoint("last")).net
    with torch.no_grad():
        feats = net.backbone(normalise_u8(val.images[keep], cfg.aug.mean, cfg.aug.std))
    # Leave-one-out over the whole labelled set, written out directly: drop each image's own similarity.
    normed = torch.nn.functional.normalize(feats, dim=1)
    sim = normed @ normed.T
    sim.fill_diagonal_(-float("inf"))
    top_sim, top_idx = sim.topk(cfg.knn_k, dim=1)
    votes = torch.zeros(len(labels), 10).scatter_add_(1, labels[top_idx], (top_sim / 0.07).exp())
    expected = (votes.argmax(1) == labels).float().mean().item()
    assert val_rows(run)[-1]["knn_acc"] == pytest.approx(expected, abs=1e-6)


# -- control --------------------------------------------------------------------------------------
def test_stop_then_resume_continues_the_curve(tmp_path: Path) -> None:
    job = TrainingJob(quick_config(epochs=2, val_limit=40), tmp_path, name="stopme").start()
    run = job.run
    assert run is not None and run.state in ("queued", "running")
    wait_for(lambda: any(r.get("step", 0) >= 2 for r in run.metrics()), what="two steps")
    job.stop()
    assert job.join(120) and job.error is None
    status = run.status()
    assert status["state"] == "stopped", status
    stopped_at = status["step"]
    assert 2 <= stopped_at < 8
    assert load_checkpoint(run.checkpoint("last")).global_step == stopped_at
    assert [r["step"] for r in train_rows(run)] == list(range(1, stopped_at + 1))

    resumed = train(resume=run.path)
    assert resumed == run and run.status()["state"] == "finished"
    steps = [r["step"] for r in train_rows(run)]
    assert steps == list(range(1, 9)), steps  # continuous: nothing lost, nothing twice
    assert [r["epoch"] for r in val_rows(run)][-1] == 1
    assert "resuming from last.ckpt" in run.log_path.read_text()


def test_sigkill_mid_run_reads_interrupted_and_resumes(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "simclr_core",
        "train",
        "--data",
        "shapes:unlabeled",
        "--image-size",
        "32",
        "--limit-images",
        "64",
        "--batch-size",
        "32",
        "--epochs",
        "30",
        "--val-limit",
        "20",
        "--precision",
        "32",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "victim",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        wait_for(
            lambda: list_runs(tmp_path) and list_runs(tmp_path)[0].checkpoint("last") is not None,
            what="the first last.ckpt",
        )
        run = list_runs(tmp_path)[0]
        saved = load_checkpoint(run.checkpoint("last")).global_step
        wait_for(lambda: any(r.get("step", 0) > saved for r in run.metrics()), what="a step past the checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate()[0].decode()
    assert f"run directory: {run.path}" in out
    status = run.status()
    assert status["state"] == "interrupted" and "gone" in status["message"]
    saved = load_checkpoint(run.checkpoint("last")).global_step
    epoch = load_checkpoint(run.checkpoint("last")).epoch
    train(resume=run.path, overrides={"epochs": epoch + 2})
    assert run.status()["state"] == "finished"
    steps = [r["step"] for r in train_rows(run)]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > saved
    best = max(r["val_acc_top5"] for r in val_rows(run))
    assert run.status()["best"]["value"] == pytest.approx(best)  # best.ckpt survives the resume


def test_max_minutes_ends_as_finished_with_the_reason(tmp_path: Path) -> None:
    run = train(quick_config(epochs=500, max_minutes=0.02), tmp_path)
    status = run.status()
    assert status["state"] == "finished" and "time budget" in status["message"], status
    assert 0 < status["step"] < 500 * 4 and run.checkpoint("last") is not None


def test_nan_loss_stops_cleanly_and_keeps_a_finite_checkpoint(tmp_path: Path) -> None:
    # A real way to blow up: an absurd learning rate makes AdamW's decoupled decay multiply weights by ~-1e26.
    run = train(quick_config(lr=1e30, epochs=3), tmp_path)
    status = run.status()
    assert status["state"] == "failed" and ("NaN" in status["message"] or "infinite" in status["message"]), status
    assert any(r["train_loss"] is None for r in train_rows(run))
    assert all(r["val_loss"] is not None for r in val_rows(run))  # NaN never reaches validation or best.ckpt
    assert "best" not in status
    last = run.checkpoint("last")
    if last is not None:  # saved before the blow-up, never after
        net = load_checkpoint(last).net
        assert all(torch.isfinite(p).all() for p in net.parameters())


# -- refusing bad settings before anything starts -------------------------------------------------
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"n_views": 1}, "n_views"),
        ({"backbone": "vgg11"}, "backbone"),
        ({"batch_size": 256}, "larger than the 128 training images"),
        ({"precision": "16-mixed", "device": "cpu"}, "16-mixed"),
    ],
)
def test_invalid_settings_are_refused_before_a_run_exists(tmp_path: Path, change: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        train(quick_config(**change), tmp_path)
    assert list_runs(tmp_path) == []


def test_cli_refuses_bad_settings_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli_main(
        [
            "train",
            "--data",
            "shapes:unlabeled",
            "--image-size",
            "32",
            "--temperature",
            "-1",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 2 and "temperature" in capsys.readouterr().err
    assert cli_main(["train", "--resume", str(tmp_path / "nope")]) == 2


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run directory"):
        train(resume=tmp_path)


# -- data plumbing --------------------------------------------------------------------------------
def test_epoch_batches_shard_without_overlap_and_reshuffle() -> None:
    shards = [list(EpochBatches(100, 8, shuffle=True, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 6  # 100 // 16, drop_last
    seen = torch.cat([b for s in shards for b in s])
    assert len(seen.unique()) == len(seen) == 96
    again = EpochBatches(100, 8, shuffle=True, seed=3, rank=0, world=2)
    assert all(torch.equal(a, b) for a, b in zip(list(again), shards[0], strict=True))
    again.set_epoch(1)
    assert not torch.equal(torch.cat(list(again)), torch.cat(shards[0]))
    evals = [list(EpochBatches(10, 4, shuffle=False, rank=r, world=3)) for r in range(3)]
    assert [sum(len(b) for b in e) for e in evals] == [4, 4, 4]
    assert set(torch.cat([b for e in evals for b in e]).tolist()) == set(range(10))


# -- checkpoints from elsewhere -------------------------------------------------------------------
@pytest.mark.skipif(not TUTORIAL.is_file(), reason="../shared/bench/tutorial_reference.py not present")
def test_tutorial_layout_checkpoint_loads(tmp_path: Path) -> None:
    ckpt = tmp_path / "SimCLR.ckpt"
    subprocess.run(
        [
            sys.executable,
            str(TUTORIAL),
            "--steps",
            "1",
            "--warmup",
            "1",
            "--batch",
            "8",
            "--images",
            "32",
            "--res",
            "32",
            "--workers",
            "0",
            "--save-ckpt",
            str(ckpt),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    loaded = load_checkpoint(ckpt)
    assert loaded.source == "tutorial" and loaded.hparams["hidden_dim"] == 128
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(loaded.net.backbone.conv1.weight, raw["convnet.conv1.weight"])
    assert torch.equal(loaded.net.head[2].weight, raw["convnet.fc.2.weight"])
    h, z = loaded.net(torch.zeros(2, 3, 32, 32))
    assert h.shape == (2, 512) and z.shape == (2, 128)


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path: Path) -> None:
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_lr_schedule_warms_up_then_anneals_to_a_fiftieth() -> None:
    f = [cosine_warmup_factor(s, total_steps=100, warmup_steps=10) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[100] == pytest.approx(1 / 50)


def test_training_job_refuses_bad_settings_synchronously(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        TrainingJob(quick_config(temperature=-0.5), tmp_path).start()
    assert list_runs(tmp_path) == []


def test_the_monitor_paces_itself_and_records_the_random_init_level(tmp_path: Path) -> None:
    """A costly kNN bank (5,000 images) against 2-step epochs: only the first and the last epoch validate."""
    run = train(quick_config(limit_images=64, epochs=4, val_limit=None, monitor_share=0.1), tmp_path)
    assert run.status()["state"] == "finished"
    assert [r["epoch"] for r in val_rows(run)] == [0, 3]
    reference = [r for r in run.metrics() if "knn_acc_random_init" in r]
    assert len(reference) == 1 and reference[0]["step"] == 0
    assert 0.1 < reference[0]["knn_acc_random_init"] < 0.95  # a random encoder: above chance (0.1), not solved
