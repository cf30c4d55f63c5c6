"""Shared test setup: an isolated data root so tests never touch the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see simclr_core/__init__.py

import torch  # noqa: E402

# Two cores: keep torch from oversubscribing when several processes run.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decoded datasets are cached here for the whole session (shapes are generated once)."""
    root = Path(os.environ.get("SIMCLR_STUDIO_TEST_DATA") or tmp_path_factory.mktemp("data_root"))
    os.environ["SIMCLR_STUDIO_DATA"] = str(root)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished SimCLR run directory (shapes 32x32, small_input, 192 images, 2 epochs of 3 steps).

    Has checkpoints/last.ckpt and best.ckpt, metrics.jsonl with train and val/knn rows, status finished.
    Trained once per session (tens of seconds on 2 busy cores); treat it as read-only.
    """
    from simclr_core.config import TrainConfig, augmentation_preset
    from simclr_core.train import train

    config = TrainConfig(
        data="shapes:unlabeled",
        image_size=32,
        small_input=True,
        limit_images=192,
        val_limit=100,
        batch_size=64,
        epochs=2,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        seed=0,
        monitor_share=1.0,
    )
    run = train(config, tmp_path_factory.mktemp("tiny_runs"), name="tiny")
    assert run.status()["state"] == "finished", run.status()
    return run.path
