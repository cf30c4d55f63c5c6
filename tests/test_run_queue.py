"""The run queue: kept in the runs root, ordered, cancellable, and run one entry at a time by one executor.

Real runs on tiny generated data (shapes at 16 px, 100 images, 3 steps each). Budget: ~1.5 min on
2 busy cores (the two-executor test starts two CLI processes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from simclr_core.__main__ import main as cli_main
from simclr_core.config import TrainConfig, augmentation_preset
from simclr_core.run_queue import ENTRY_FILE, QueueError, QueueExecutor, RunQueue
from simclr_core.store import Run, list_runs

ROOT = Path(__file__).resolve().parents[1]


def tiny(**changes: object) -> TrainConfig:
    """A run of 3 steps on 100 generated images: seconds, with a kNN monitor."""
    cfg = TrainConfig(
        data="shapes:train?n=10",
        image_size=16,
        backbone="resnet10",
        batch_size=32,
        epochs=1,
        val_limit=50,
        monitor="knn_acc",
        precision="32",
        aug=augmentation_preset("tutorial", 16),
        seed=0,
    )
    cfg.aug.blur_kernel = 3
    return replace(cfg, **changes)


def test_entries_persist_in_order_and_can_be_moved_and_cancelled(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    a, b, c = (queue.add(tiny(), name) for name in ("a", "b", "c"))
    again = RunQueue(tmp_path)  # another tab / process / a restarted app: the same file
    assert [e.name for e in again.entries()] == ["a", "b", "c"]
    again.move(c.id, 0)
    assert [e.name for e in queue.entries()] == ["c", "a", "b"]
    queue.move(c.id[:4], 9)  # a unique prefix is enough; past the end is last
    assert [e.name for e in queue.entries()] == ["a", "b", "c"]
    assert queue.cancel(b.id).state == "cancelled"
    with pytest.raises(QueueError, match="already ended"):
        queue.cancel(b.id)
    with pytest.raises(QueueError, match="only waiting entries"):
        queue.move(b.id, 0)
    with pytest.raises(QueueError, match="no queue entry"):
        queue.cancel("zzzz")
    assert queue.get(a.id).config == tiny().to_dict()
    assert queue.clear() == 1 and [e.name for e in queue.entries()] == ["a", "c"]
    (tmp_path / "queue.json").write_text("{half")
    with pytest.raises(QueueError, match="damaged"):
        queue.entries()


def test_two_claimers_never_take_the_same_entry(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    ids = [queue.add(tiny(), f"r{i}").id for i in range(20)]
    claimed: dict[str, list[str]] = {"x": [], "y": []}

    def claimer(who: str) -> None:
        q = RunQueue(tmp_path)  # its own lock file descriptor, as another process would have
        while (entry := q.claim({"pid": 1, "host": who})) is not None:
            claimed[who].append(entry.id)

    threads = [threading.Thread(target=claimer, args=(w,)) for w in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    together = claimed["x"] + claimed["y"]
    assert sorted(together) == sorted(ids) and len(set(together)) == len(ids)


def test_an_entry_whose_executor_died_reads_interrupted(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    entry = queue.add(tiny(), "orphan")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    queue.claim({"pid": int(dead.stdout), "host": socket.gethostname()})
    assert queue.get(entry.id).state == "interrupted"
    assert queue.claim({"pid": 1, "host": "x"}) is None  # not started again behind the user's back


def test_a_failed_entry_does_not_stop_the_queue(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    first = queue.add(tiny(), "first")
    bad = queue.add(tiny(batch_size=64, limit_images=40), "bad")  # 64 > 40 images: refused at start
    skipped = queue.add(tiny(), "skipped")
    last = queue.add(tiny(seed=1), "last")
    queue.cancel(skipped.id)
    seen: list[tuple[str, str]] = []
    ran = QueueExecutor(tmp_path, poll_s=0.2, on_event=lambda e: seen.append((e.name, e.state))).run()
    assert ran == 3
    entries = {e.name: e for e in queue.entries()}
    assert entries["bad"].state == "failed" and "batch_size 64 is larger" in entries["bad"].message
    assert entries["first"].state == entries["last"].state == "finished"
    assert entries["skipped"].state == "cancelled" and entries["skipped"].run is None
    assert [s for s in seen if s[1] != "running"] == [("first", "finished"), ("bad", "failed"), ("last", "finished")]
    runs = {r.id: r for r in list_runs(tmp_path)}
    assert set(runs) == {entries["first"].run, entries["last"].run}  # each a normal run directory
    for name in ("first", "last"):
        run = runs[entries[name].run]
        assert run.status()["state"] == "finished" and run.checkpoint("last") is not None
        assert json.loads((run.path / ENTRY_FILE).read_text())["entry"] == entries[name].id
    assert entries["first"].ended_at <= entries["last"].started_at  # one at a time, in queue order
    assert bad.id and first.id and last.id


def test_cancel_stops_the_running_entry_and_the_queue_goes_on(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    long = queue.add(tiny(epochs=1000), "long")
    after = queue.add(tiny(), "after")
    executor = QueueExecutor(tmp_path, poll_s=0.2)
    thread = threading.Thread(target=executor.run)
    thread.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (queue.get(long.id).run and Run(tmp_path / queue.get(long.id).run).metrics()):
        time.sleep(0.3)
    queue.cancel(long.id)
    thread.join(180)
    assert not thread.is_alive()
    done = queue.get(long.id)
    assert done.state == "cancelled" and Run(tmp_path / done.run).status()["state"] == "stopped"
    assert queue.get(after.id).state == "finished"


def test_two_cli_executors_run_each_entry_once_one_at_a_time(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path)
    ids = [queue.add(tiny(seed=i), f"r{i}").id for i in range(2)]
    cmd = [sys.executable, "-m", "simclr_core", "queue", "run", "--runs-dir", str(tmp_path)]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    entries = [queue.get(i) for i in ids]
    assert all(e.state == "finished" for e in entries), outs
    assert len(list_runs(tmp_path)) == 2
    assert sum(o.count(" started ") for o in outs) == 2, outs  # each entry started once, by one of them
    spans = sorted((e.started_at, e.ended_at) for e in entries)
    assert spans[0][1] <= spans[1][0]  # never two at once


def test_queue_cli_adds_lists_moves_and_cancels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--runs-dir", str(tmp_path)]
    flags = ["--data", "shapes:train?n=10", "--image-size", "16", "--batch-size", "32", "--epochs", "1"]
    assert cli_main(["queue", "add", *args, *flags, "--name", "one"]) == 0
    assert cli_main(["queue", "add", *args, *flags, "--name", "two", "--knn"]) == 0
    entries = RunQueue(tmp_path).entries()
    assert [e.name for e in entries] == ["one", "two"]
    assert entries[1].evaluate == {"bank": "shapes:train?n=10&seed=0", "scored": "shapes:test?seed=0"}
    assert cli_main(["queue", "move", *args, entries[1].id, "0"]) == 0
    assert cli_main(["queue", "cancel", *args, entries[0].id[:5]]) == 0
    capsys.readouterr()
    assert cli_main(["queue", "list", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(entries[1].id) and "queued" in lines[0]
    assert lines[1].startswith(entries[0].id) and "cancelled" in lines[1]
    assert cli_main(["queue", "cancel", *args, "nope"]) == 2
    assert "no queue entry 'nope'" in capsys.readouterr().err
