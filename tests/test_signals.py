"""Fault injection, signals: SIGTERM/SIGINT to a real ``python -m simclr_core train`` stop it cleanly.

Cleanly means: exit status 128 + the signal, state ``stopped``, a ``last.ckpt`` at the stopping step,
and a resume that continues the steps with nothing lost and nothing twice. A signal that lands before
the run directory exists leaves nothing behind. The slow test delivers signals at 20 random moments.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simclr_core.model import load_checkpoint
from simclr_core.store import Run, list_runs
from simclr_core.train import train

ROOT = Path(__file__).resolve().parents[1]
# 64 images, batch 32: 2 steps per epoch; every epoch validates (200 images), so signals land in validation too.
ARGS = ["--data", "shapes:unlabeled", "--image-size", "32", "--limit-images", "64", "--batch-size", "32"]
ARGS += ["--epochs", "200", "--val-limit", "200", "--monitor-share", "1", "--precision", "32", "--no-progress"]


def start(runs: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "simclr_core", "train", *ARGS, "--runs-dir", str(runs), "--name", "sig"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())


def wait_for(condition: Callable[[], object], timeout: float = 400.0) -> None:
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


def first_run(runs: Path) -> Run | None:
    found = list_runs(runs)
    return found[0] if found else None


def steps(run: Run) -> list[int]:
    return [r["step"] for r in run.metrics() if "train_loss" in r]


def check_stopped_and_resumable(proc: subprocess.Popen, sig: int, runs: Path) -> str:
    """After ``sig`` was sent: what happened ("before the run" or "stopped"), asserting it was clean."""
    out = proc.communicate(timeout=180)[0].decode()
    assert "Traceback" not in out, out
    run = first_run(runs)
    if run is None:  # the signal came while settings were checked or torch imported: nothing to resume
        assert proc.returncode in (128 + sig, -sig), out
        assert proc.returncode == -sig or "stopped" in out, out  # -sig: before Python reached main()
        return "before the run"
    assert proc.returncode == 128 + sig, (proc.returncode, out)
    status = run.status()
    assert status["state"] == "stopped", status
    ckpt = load_checkpoint(run.checkpoint("last"))
    assert ckpt.global_step == status["step"]
    done = steps(run)
    assert done == list(range(1, ckpt.global_step + 1)), done
    train(resume=run.path, overrides={"epochs": ckpt.epoch + 2})
    assert run.status()["state"] == "finished", run.status()
    after = steps(run)
    assert after == list(range(1, after[-1] + 1)) and after[-1] > ckpt.global_step, after  # continuous, no twins
    return "stopped"


def test_sigterm_as_the_run_directory_appears_stops_cleanly(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for(lambda: first_run(tmp_path) is not None)
    proc.send_signal(signal.SIGTERM)
    assert check_stopped_and_resumable(proc, signal.SIGTERM, tmp_path) == "stopped"


def test_sigint_mid_training_stops_cleanly(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for(lambda: (run := first_run(tmp_path)) is not None and len(steps(run)) >= 3)
    proc.send_signal(signal.SIGINT)
    assert check_stopped_and_resumable(proc, signal.SIGINT, tmp_path) == "stopped"


MOMENTS = int(os.environ.get("SIMCLR_SIGNAL_MOMENTS", "20"))  # fewer on a busy machine, e.g. 5


@pytest.mark.slow
def test_signals_at_20_random_moments_all_stop_cleanly(tmp_path: Path) -> None:
    rng = random.Random(13)
    outcomes = []
    for i in range(MOMENTS):
        runs = tmp_path / f"r{i}"
        sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
        delay = rng.uniform(0.5, 30.0)  # from interpreter start through set-up, steps and validations
        proc = start(runs)
        time.sleep(delay)
        proc.send_signal(sig)
        outcomes.append(check_stopped_and_resumable(proc, sig, runs))
    print("signal outcomes:", {k: outcomes.count(k) for k in set(outcomes)})
    assert len(outcomes) == MOMENTS
