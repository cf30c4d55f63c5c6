"""The run directory contract: atomic status, tolerant metric reader, liveness, listing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simclr_core.processes import pid_alive
from simclr_core.store import STALE_AFTER_S, Run, create_run, list_runs, new_run_id


def test_create_run_writes_config_and_queued_status(tmp_path: Path) -> None:
    run = create_run(tmp_path, {"lr": 0.1}, name="my run/1", extra={"device": "cpu"})
    assert run.path.parent == tmp_path.resolve()
    assert run.id.startswith("my-run-1-")
    assert run.config == {"kind": "simclr", "name": "my run/1", "config": {"lr": 0.1}, "device": "cpu"}
    assert run.train_config == {"lr": 0.1}
    status = run.status()
    assert status["state"] == "queued" and status["pid"] == os.getpid() and status["host"] == socket.gethostname()
    assert run.checkpoint("last") is None and run.checkpoint("best") is None
    with pytest.raises(ValueError):
        run.checkpoint("middle")


def test_run_ids_are_unique_and_listed_newest_first(tmp_path: Path) -> None:
    # Many runs of one name in the same second each get their own folder (a clash of the random part retries).
    burst = [create_run(tmp_path / "burst", {}, name="x") for _ in range(200)]
    assert len({run.path for run in burst}) == 200 and all(run.path.is_dir() for run in burst)
    assert new_run_id("x").startswith("x-") and len(new_run_id("x").rsplit("-", 1)[1]) == 6
    first = create_run(tmp_path, {}, name="a")
    time.sleep(0.01)
    second = create_run(tmp_path, {}, name="b", kind="supervised")
    (tmp_path / "not-a-run").mkdir()
    assert list_runs(tmp_path) == [second, first]
    assert list_runs(tmp_path, kind="simclr") == [first]
    assert list_runs(tmp_path / "missing") == []


def test_metrics_reader_skips_a_half_written_last_line(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.append_metrics(
        [
            {"step": 1, "epoch": 0, "time": 1.0, "train_loss": 2.5},
            {"step": 2, "epoch": 0, "time": 2.0, "train_loss": float("nan")},
        ]
    )
    with open(run.metrics_path, "a") as fh:
        fh.write('{"step": 3, "epoch": 0, "tr')  # a writer killed mid-line
    rows, offset = run.read_metrics(0)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] is None  # NaN is stored as null: every line stays valid JSON
    assert run.read_metrics(offset) == ([], offset)
    with open(run.metrics_path, "a") as fh:
        fh.write('ain_loss": 1.5}\n{"step": 4}\n')
    rows, offset2 = run.read_metrics(offset)
    assert [r["step"] for r in rows] == [3, 4] and offset2 == run.metrics_path.stat().st_size
    assert [r["step"] for r in run.metrics()] == [1, 2, 3, 4]


def test_truncate_metrics_drops_rows_past_a_step(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.append_metrics({"step": s, "epoch": 0, "time": 0.0} for s in (1, 2, 3, 4))
    with open(run.metrics_path, "a") as fh:
        fh.write('{"step": 5')
    assert run.truncate_metrics(2) == 2
    assert [r["step"] for r in run.metrics()] == [1, 2]
    assert run.metrics_path.read_text().endswith("\n")


def test_running_status_of_a_dead_process_reads_interrupted(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    run.write_status(state="running", pid=proc.pid)
    assert run.raw_status()["state"] == "running"
    status = run.status()
    assert status["state"] == "interrupted" and str(proc.pid) in status["message"]
    run.write_status(state="running", pid=os.getpid())
    assert run.state == "running"
    run.write_status(state="finished", pid=proc.pid)
    assert run.state == "finished"  # only active states can be interrupted


def test_stale_heartbeat_from_another_host_reads_interrupted(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.write_status(state="running", host="some-other-node", pid=1)
    assert run.state == "running"
    status = run.raw_status()
    status["updated_at"] = time.time() - STALE_AFTER_S - 5
    run.status_path.write_text(json.dumps(status))
    assert run.state == "interrupted"


def test_write_status_is_atomic_and_merges(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.write_status(state="running", progress=0.5, eta_s=float("inf"))
    run.write_status(message="hello")
    status = json.loads(run.status_path.read_text())
    assert status["state"] == "running" and status["progress"] == 0.5 and status["message"] == "hello"
    assert status["eta_s"] is None
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


def test_json_side_files_and_log(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.write_json("probe.json", {"acc": [0.5, 0.6]})
    assert run.read_json("probe.json") == {"acc": [0.5, 0.6]}
    assert run.read_json("missing.json") is None
    (run.path / "broken.json").write_text("{")
    assert run.read_json("broken.json") is None
    run.log("line one")
    assert "line one" in run.log_path.read_text()


def test_missing_status_is_not_a_crash(tmp_path: Path) -> None:
    run = create_run(tmp_path, {})
    run.status_path.unlink()
    assert run.status()["state"] == "interrupted"
    assert Run(tmp_path / "nothing").status()["state"] == "failed"
