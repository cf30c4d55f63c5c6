"""Fault injection, two writers: one process writes a run; a second is refused by name; a dead holder's lock is taken.

Holders are real processes (``python -c`` holding the lock); nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simclr_core.__main__ import main as cli_main
from simclr_core.run_lock import RunLock, RunLocked
from simclr_core.store import Run
from simclr_core.train import TrainingJob, train

ROOT = Path(__file__).resolve().parents[1]


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding ``run_dir``'s writer lock until killed."""
    code = "import sys, time; from simclr_core.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(300)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_a_second_holder_is_refused_by_name_and_a_dead_holders_lock_is_taken(tmp_path: Path) -> None:
    mine = RunLock(tmp_path).acquire()
    with pytest.raises(RunLocked, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
        RunLock(tmp_path).acquire()  # a second writer in the same process (two dashboard jobs) is refused too
    mine.release()
    RunLock(tmp_path).acquire().release()

    proc = hold_lock(tmp_path)
    try:
        with pytest.raises(RunLocked, match=f"pid {proc.pid} "):
            RunLock(tmp_path).acquire()
    finally:
        kill(proc)
    lock = RunLock(tmp_path).acquire()  # the holder died (SIGKILL): its lock is free, the file names us now
    assert lock.holder()["pid"] == os.getpid()
    lock.release()


@pytest.fixture
def stopped_run(tiny_run: Path, tmp_path: Path) -> Run:
    """A private, resumable copy of the session's tiny run."""
    path = tmp_path / tiny_run.name
    shutil.copytree(tiny_run, path)
    run = Run(path)
    run.write_status(state="stopped", message="stopped by request")
    return run


def test_resume_while_another_process_writes_is_refused_then_cleans_up_after_it(
    stopped_run: Run, capsys: pytest.CaptureFixture
) -> None:
    run = stopped_run
    before = run.status_path.read_text(), run.metrics_path.read_text()
    proc = hold_lock(run.path)
    try:
        assert cli_main(["train", "--resume", str(run.path)]) == 2
        err = capsys.readouterr().err
        assert f"being written by pid {proc.pid} on host {socket.gethostname()}" in err and "Traceback" not in err
        with pytest.raises(RunLocked):  # the dashboard's job is refused the same way
            TrainingJob(resume=run.path).start()
        assert (run.status_path.read_text(), run.metrics_path.read_text()) == before  # nothing touched
    finally:
        kill(proc)
    stale = run.checkpoint_dir / ".last.ckpt.tmp"  # what a writer killed mid-save leaves
    stale.write_bytes(os.urandom(1 << 20))
    train(resume=run.path, overrides={"epochs": 3})
    assert run.status()["state"] == "finished" and not stale.exists()
    assert "removed stale temporary files: .last.ckpt.tmp (1.0 MiB)" in run.log_path.read_text()
    steps = [r["step"] for r in run.metrics() if "train_loss" in r]
    assert steps == list(range(1, steps[-1] + 1))  # one writer: no row twice
    assert not RunLock(run.path).held and RunLock(run.path).acquire()  # released when the run ended


@pytest.mark.slow
def test_two_cli_resumes_started_together_one_is_refused(stopped_run: Run) -> None:
    run = stopped_run
    cmd = [sys.executable, "-m", "simclr_core", "train", "--resume", str(run.path), "--epochs", "4", "--no-progress"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], (codes, outs)
    refused = outs[[p.returncode for p in procs].index(2)]
    assert "being written by pid" in refused or "still running" in refused or "still queued" in refused, refused
    steps = [r["step"] for r in run.metrics() if "train_loss" in r]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] == 12
