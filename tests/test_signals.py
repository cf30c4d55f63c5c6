"""Fault injection, signals: SIGTERM/SIGINT to a real ``python -m simclr_core train`` stop it cleanly.

Cleanly means: exit status 128 + the signal, state ``stopped``, a ``last.ckpt`` at the stopping step,
and a resume that continues the steps with nothing lost and nothing twice. A signal that lands before
the run directory exists leaves nothing behind. The slow test delivers signals at 20 random moments of a
run and counts those stopped and then resumed with continuous steps and no duplicate metric rows (goal 20/20):
``.venv/bin/python -m pytest -m slow tests/test_signals.py -k random -s -q`` (SIMCLR_SIGNAL_MOMENTS=5 for fewer).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simclr_core.model import load_checkpoint
from simclr_core.run_lock import RunLock
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


def duplicate_rows(run: Run) -> list[tuple[str, int]]:
    """(metric, step) pairs written more than once: a resume must not log a step's metrics again."""
    seen: set[tuple[str, int]] = set()
    twice = []
    for row in run.metrics():
        for key in sorted(set(row) - {"step", "epoch", "time"}):
            pair = (key, row["step"])
            if pair in seen:
                twice.append(pair)
            seen.add(pair)
    return twice


STOPPED = "stopped and resumed"  # continuous steps, no duplicate rows


def check_stopped_and_resumable(proc: subprocess.Popen, sig: int, runs: Path) -> str:
    """After ``sig`` was sent: what happened ("before the run", or STOPPED: stopped, then resumed to the end with
    continuous steps and no metric row twice), asserting it was clean."""
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
    assert duplicate_rows(run) == []
    train(resume=run.path, overrides={"epochs": ckpt.epoch + 2})
    assert run.status()["state"] == "finished", run.status()
    after = steps(run)
    assert after == list(range(1, after[-1] + 1)) and after[-1] > ckpt.global_step, after  # continuous, no twins
    assert duplicate_rows(run) == [], duplicate_rows(run)
    return STOPPED


def test_sigterm_as_the_run_directory_appears_stops_cleanly(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for(lambda: first_run(tmp_path) is not None)
    proc.send_signal(signal.SIGTERM)
    assert check_stopped_and_resumable(proc, signal.SIGTERM, tmp_path) == STOPPED


def test_sigint_mid_training_stops_cleanly(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for(lambda: (run := first_run(tmp_path)) is not None and len(steps(run)) >= 3)
    proc.send_signal(signal.SIGINT)
    assert check_stopped_and_resumable(proc, signal.SIGINT, tmp_path) == STOPPED


MOMENTS = int(os.environ.get("SIMCLR_SIGNAL_MOMENTS", "20"))  # fewer on a busy machine, e.g. 5
WITHIN_S = 20.0  # a moment of the run: up to this long after its directory appears (200 epochs take minutes)


@pytest.mark.slow
def test_signals_at_20_random_moments_of_a_run_all_stop_and_resume_cleanly(tmp_path: Path) -> None:
    """Each signal lands at a random moment of a run (set-up, steps, validations, saves) and must leave it
    stopped, then resumed to the end with continuous steps and no duplicate rows: MOMENTS of MOMENTS.
    (A signal before the run directory exists leaves nothing to resume; the decoding tests below cover that.)"""
    rng = random.Random(13)
    outcomes: list[str] = []
    for i in range(MOMENTS):
        runs = tmp_path / f"r{i}"
        sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
        delay = rng.uniform(0.0, WITHIN_S)
        proc = start(runs)
        wait_for(lambda runs=runs: first_run(runs) is not None)
        time.sleep(delay)
        assert proc.poll() is None, f"moment {i}: the run ended before its signal"
        proc.send_signal(sig)
        outcomes.append(check_stopped_and_resumable(proc, sig, runs))
        print(f"moment {i + 1}/{MOMENTS}: {signal.Signals(sig).name} {delay:.1f} s into the run -> {outcomes[-1]}")
    resumed = outcomes.count(STOPPED)
    print(
        f"signals at {MOMENTS} random moments of a run: {resumed}/{MOMENTS} stopped, then resumed with "
        "continuous steps and no duplicate metric rows"
    )
    assert resumed == MOMENTS, outcomes


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 noise PNGs in two classes: decoding them takes seconds, long enough to signal in the middle."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(3000):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def train_on(folder: Path, runs: Path, data: Path, resume: Path | None = None) -> subprocess.Popen:
    """A new 1-epoch run on ``folder`` (2 steps), or with ``resume`` that run continued to 2 epochs."""
    args = ["--data", str(folder), "--image-size", "32", "--limit-images", "64", "--batch-size", "32"]
    args += ["--epochs", "1", "--val-limit", "20", "--precision", "32"]
    if resume is not None:
        args = ["--resume", str(resume), "--epochs", "2"]
    cmd = [sys.executable, "-m", "simclr_core", "train", *args, "--no-progress", "--runs-dir", str(runs)]
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(data)}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def signal_while_decoding(proc: subprocess.Popen, data: Path, sig: int) -> str:
    """Send ``sig`` once the decoded cache's temporary entry exists; the output, after asserting a prompt stop."""
    wait_for(lambda: any(p.name.startswith(".tmp-") for p in (data / "decoded").glob("*")), timeout=300)
    proc.send_signal(sig)
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 128 + sig, (proc.returncode, out)
    assert "Traceback" not in out and "stopped while decoding" in out, out
    done = int(re.search(r"\((\d+)% done\)", out).group(1))  # type: ignore[union-attr]
    assert done < 100, out  # cut short, not run to the end and stopped after
    assert list((data / "decoded").iterdir()) == [], "a half-written cache entry was left"
    return out


def test_sigterm_while_decoding_a_new_runs_data_stops_at_once_and_writes_nothing(
    tmp_path: Path, picture_folder: Path
) -> None:
    proc = train_on(picture_folder, tmp_path / "runs", tmp_path / "data")
    signal_while_decoding(proc, tmp_path / "data", signal.SIGTERM)
    assert not (tmp_path / "runs").exists() or list_runs(tmp_path / "runs") == []


def test_sigint_while_a_resume_decodes_leaves_the_run_as_it_was(tmp_path: Path, picture_folder: Path) -> None:
    runs, data = tmp_path / "runs", tmp_path / "data"
    first = train_on(picture_folder, runs, data)
    assert first.wait(timeout=600) == 0
    run = first_run(runs)
    assert run is not None and run.status()["state"] == "finished"
    before = (run.status(), run.metrics(), run.checkpoint("last").read_bytes())
    shutil.rmtree(data / "decoded")  # the cache is gone: the resume decodes again
    (data / "decoded").mkdir()
    proc = train_on(picture_folder, runs, data, resume=run.path)
    signal_while_decoding(proc, data, signal.SIGINT)
    assert (run.status(), run.metrics(), run.checkpoint("last").read_bytes()) == before
    RunLock(run.path).check_free()  # the lock went with the process
    again = train_on(picture_folder, runs, data, resume=run.path)
    assert again.wait(timeout=600) == 0 and run.status()["state"] == "finished"
    assert steps(run) == list(range(1, 5))  # 2 steps per epoch, continuous
