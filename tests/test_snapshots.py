"""Backbone snapshots written by a real short training run, read back, and replayed as aligned maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simclr_core import snapshots
from simclr_core.config import ConfigError, TrainConfig, augmentation_preset
from simclr_core.model import CheckpointError, load_checkpoint
from simclr_core.projection import procrustes, standardise
from simclr_core.replay import aligned_maps, run_replay
from simclr_core.store import Run


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """ResNet-10 at 32 px, 128 images, batch 32: 3 epochs of 4 steps, 5 snapshots asked for."""
    from simclr_core.train import train

    config = TrainConfig(
        data="shapes:unlabeled",
        val_data="shapes:train?n=10",
        image_size=32,
        backbone="resnet10",
        limit_images=128,
        batch_size=32,
        epochs=3,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        snapshots=5,
        seed=0,
    )
    run = train(config, tmp_path_factory.mktemp("snap_runs"), name="snap")
    assert run.status()["state"] == "finished", run.status()
    return run


def test_points_run_from_the_random_init_to_the_end() -> None:
    assert snapshots.points(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert snapshots.points(1) == [1.0] and snapshots.points(0) == []


def test_training_writes_evenly_spread_snapshots_from_step_0_to_the_end(snapshot_run: Run) -> None:
    files = snapshot_run.snapshots()
    steps = [snapshots.load(p).step for p in files]
    assert steps == [0, 3, 6, 9, 12], steps  # 12 steps: one snapshot per quarter
    last = snapshots.load(files[-1])
    assert last.progress == pytest.approx(1.0) and last.arch["backbone"] == "resnet10"
    assert not list(snapshot_run.snapshot_dir.glob(".*"))  # no temporaries left
    # The final snapshot is last.ckpt's backbone, in float16.
    ckpt = load_checkpoint(snapshot_run.checkpoint("last")).net.backbone.state_dict()
    for key, value in last.net.backbone.state_dict().items():
        assert torch.allclose(value.float(), ckpt[key].float(), rtol=1e-3, atol=1e-3), key


def test_a_snapshot_costs_a_fifth_of_last_ckpt(snapshot_run: Run) -> None:
    """ResNet-10: ~9.8 MB per snapshot (float16 backbone) against ~66 MB for the full last.ckpt."""
    size = snapshot_run.snapshots()[0].stat().st_size
    assert 9.0e6 < size < 10.5e6, size
    assert size < snapshot_run.checkpoint("last").stat().st_size / 5


def test_no_snapshots_when_asked_for_none() -> None:
    with pytest.raises(ConfigError, match="snapshots"):
        TrainConfig(snapshots=-1).validate()


def test_a_foreign_file_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "step-00000001.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match="step-00000001.pt"):
        snapshots.load(bad)


def test_procrustes_undoes_a_rotation_reflection_scale_and_shift() -> None:
    rng = np.random.default_rng(0)
    points = rng.standard_normal((50, 2)).astype(np.float32)
    angle = 0.7
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mirrored = points @ turn @ np.diag([1.0, -1.0]) * 3.5 + np.array([4.0, -2.0])
    np.testing.assert_allclose(procrustes(mirrored, points), standardise(points), atol=1e-5)
    noise = procrustes(points + rng.normal(0, 0.05, points.shape), points)
    assert np.abs(noise - standardise(points)).max() < 0.2
    with pytest.raises(ValueError, match="same points"):
        procrustes(points, points[:10])


def test_aligned_maps_follow_the_previous_frame() -> None:
    """A feature set and a rotated copy of it give the same map twice, whatever sign PCA picks."""
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((80, 16)).astype(np.float32) * np.linspace(3, 0.1, 16, dtype=np.float32)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    first, second = aligned_maps([feats, (feats @ q).astype(np.float32)])
    np.testing.assert_allclose(first, second, atol=1e-4)
    assert first.shape == (80, 2)


def test_the_replay_of_a_run_moves_its_points(snapshot_run: Run) -> None:
    seen = []
    rep = run_replay(snapshot_run.snapshots(), "shapes:test?n=5", limit=40, progress=lambda d, t: seen.append(d))
    assert len(rep.frames) == 5 and seen == [1, 2, 3, 4, 5]
    assert rep.indices.shape == (40,) and rep.labels.shape == (40,) and len(rep.classes) == 10
    assert [f.step for f in rep.frames] == [0, 3, 6, 9, 12]
    moves = [np.abs(b.coords - a.coords).mean() for a, b in zip(rep.frames, rep.frames[1:], strict=False)]
    assert all(m > 0 for m in moves)
    for frame in rep.frames:  # standardised: centred, unit RMS radius
        assert np.abs(frame.coords.mean(0)).max() < 1e-4
        assert np.sqrt((frame.coords**2).sum(1).mean()) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ConfigError, match="no snapshots"):
        run_replay([], "shapes:test?n=5")


def test_the_replay_draws_each_class_as_the_map_does(snapshot_run: Run) -> None:
    from dashboard.figures import CLASS_PALETTE, embedding_figure, replay_figure
    from simclr_core.projection import EmbeddingTable

    rep = run_replay(snapshot_run.snapshots(), "shapes:test?n=5", limit=40)
    table = EmbeddingTable(rep.frames[-1].coords, rep.labels, rep.indices, rep.classes, "pca", 2, "shapes:test?n=5")
    fig, still = replay_figure(rep), embedding_figure(table)
    markers = {t.name: (t.marker.color, t.marker.symbol) for t in fig.data}
    assert markers == {t.name: (t.marker.color, t.marker.symbol) for t in still.data}
    assert {colour for colour, _ in markers.values()} <= set(CLASS_PALETTE)
