"""Supervised ResNet baseline: a tiny job within a budget writes a complete run directory; stop ends it cleanly.

Budget: ~20 s (ResNet-18 with the standard stem on 32 px shapes, 60 training images).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simclr_core.config import ConfigError
from simclr_core.store import Run, list_runs
from simclr_core.supervised import SupervisedConfig, SupervisedJob

TINY = dict(train_data="shapes:train?n=6", test_data="shapes:test?n=3", image_size=32, batch_size=16, device="cpu")


def test_supervised_job_writes_its_run(tmp_path: Path) -> None:
    cfg = SupervisedConfig(sizes=[3, 6], epochs=3, max_minutes=2.0, **TINY)
    job = SupervisedJob(cfg, tmp_path).start()
    assert job.join(timeout=300), "the job did not end"
    assert job.error is None
    run = Run(job.run.path)
    assert run.kind == "supervised" and list_runs(tmp_path, kind="supervised") == [run]
    status = run.status()
    assert status["state"] == "finished" and status["progress"] == 1.0
    results = run.read_json("results.json")["results"]
    assert [r["size"] for r in results] == [3, 6] and [r["n_train"] for r in results] == [30, 60]
    for r in results:
        assert r["epochs"] == 3 and 0.0 <= r["test_acc"] <= 1.0 and not r["stopped_early"]
    rows = run.metrics()
    assert [r["epoch"] for r in rows if "train_loss" in r and r["size"] == 6] == [1, 2, 3]
    assert rows[0]["lr"] == pytest.approx(1e-3)
    last = [r for r in rows if "train_loss" in r and r["size"] == 6][-1]
    assert last["lr"] == pytest.approx(1e-5)  # both decays (70 %, 90 % of 3 epochs -> epochs 2 and 2)


def test_stop_ends_early_and_still_evaluates(tmp_path: Path) -> None:
    cfg = SupervisedConfig(sizes=[6], epochs=10_000, **TINY)
    job = SupervisedJob(cfg, tmp_path).start()
    deadline = time.time() + 120
    while not job.run.metrics() and time.time() < deadline:
        time.sleep(0.2)
    job.stop()
    assert job.join(timeout=120)
    result = job.run.read_json("results.json")["results"][0]
    assert result["stopped_early"] and result["epochs"] < 10_000 and 0.0 <= result["test_acc"] <= 1.0
    assert job.run.status()["state"] == "stopped"


def test_bad_data_fails_before_a_run_exists(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SupervisedJob(SupervisedConfig(**{**TINY, "train_data": "shapes:bogus"}), tmp_path).start()
    with pytest.raises(ConfigError):
        SupervisedJob(SupervisedConfig(**{**TINY, "backbone": "vgg"}), tmp_path).start()
    assert list_runs(tmp_path) == []
