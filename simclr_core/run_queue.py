"""The run queue: runs waiting their turn, kept in the runs root so every tab, process and restart sees them.

``<runs_root>/queue.json`` is a list of entries in execution order; every change is a
read-modify-write under an exclusive ``flock`` on ``<runs_root>/.queue.lock`` and lands by an
atomic rename, so a reader sees the old or the new queue, never half of one, and two writers
never lose each other's change. An entry is a TrainConfig plus what to do around it (its group,
e.g. an ablation, and a kNN evaluation once it finishes); once started it names its run
directory, which is a normal run (the store's contract), so the Train page shows it as any other.

Who executes: a :class:`QueueExecutor` (the dashboard's worker thread, ``python -m simclr_core
queue run``, ``ablate``). One executor at a time holds ``<runs_root>/.queue-executor.lock`` (so
runs go one at a time on the machine), and an entry is claimed under the queue lock, so two
executors can never start the same entry even without the executor lock. A failed entry is
recorded and the executor goes on to the next one. An entry whose executor died reads
``interrupted``; its run resumes like any interrupted run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from simclr_core.config import ConfigError, TrainConfig
from simclr_core.processes import pid_alive
from simclr_core.run_lock import RunLock, RunLocked
from simclr_core.store import Run, write_json_atomic

QUEUE_FILE = "queue.json"
QUEUE_LOCK = ".queue.lock"
EXECUTOR_LOCK = ".queue-executor.lock"
ENTRY_FILE = "queue_entry.json"  # written into a run directory: which entry (and group) made it
WAITING = ("queued", "running")
ENDED = ("finished", "failed", "stopped", "cancelled", "interrupted")


class QueueError(ConfigError):
    """A queue operation a user asked for that cannot be done (unknown entry, already ended, damaged file)."""


@dataclass
class Entry:
    """One queued run. ``run`` is the run directory's name once started; ``result`` the kNN evaluation."""

    id: str
    name: str
    config: dict[str, Any]  # TrainConfig.to_dict()
    group: str = ""  # "ablation-<id>", "try", or "" for a plain run
    meta: dict[str, Any] = field(default_factory=dict)  # what the group needs (an ablation cell's ops, a try's preset)
    evaluate: dict[str, Any] | None = None  # {"bank": spec, "scored": spec}: kNN after a finished run
    state: str = "queued"
    run: str | None = None
    message: str = ""
    added_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    executor: dict[str, Any] | None = None  # {pid, host} of the executor running it
    cancel_requested: bool = False
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)


def _executor_gone(entry: Entry) -> bool:
    who = entry.executor or {}
    return who.get("host") == socket.gethostname() and isinstance(who.get("pid"), int) and not pid_alive(who["pid"])


class RunQueue:
    """The queue of one runs root. Cheap to construct; every call reads the file fresh."""

    def __init__(self, runs_root: str | Path) -> None:
        self.root = Path(runs_root)
        self.path = self.root / QUEUE_FILE

    # -- file ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[Entry]]:
        """The entries under the queue lock; what the block leaves in the list is written back."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / QUEUE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self._read()
            before = [e.to_dict() for e in entries]
            yield entries
            if [e.to_dict() for e in entries] != before:
                write_json_atomic(self.path, {"entries": [e.to_dict() for e in entries]})
        finally:
            os.close(fd)  # closing drops the flock

    def _read(self) -> list[Entry]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            raise QueueError(f"{self.path} is damaged ({err}); move it away to start an empty queue") from None
        items = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise QueueError(f"{self.path} is not a queue file; move it away to start an empty queue")
        return [Entry.from_dict(i) for i in items]

    def entries(self) -> list[Entry]:
        """Every entry in order, an entry whose executor is gone reading ``interrupted`` (no lock needed)."""
        out = self._read()
        for e in out:
            if e.state == "running" and _executor_gone(e):
                e.state, e.message = "interrupted", "its executor is gone; resume the run from the Train page"
        return out

    def get(self, entry_id: str) -> Entry:
        return self._find(self.entries(), entry_id)

    @staticmethod
    def _find(entries: list[Entry], entry_id: str) -> Entry:
        """An entry by id or unique id prefix (what a user types from ``queue list``)."""
        hits = [e for e in entries if e.id == entry_id] or [e for e in entries if e.id.startswith(entry_id)]
        if len(hits) != 1:
            raise QueueError(
                f"no queue entry {entry_id!r}" if not hits else f"{entry_id!r} matches {len(hits)} entries; give more"
            )
        return hits[0]

    # -- changes ------------------------------------------------------------------------------
    def add(
        self,
        config: TrainConfig,
        name: str = "simclr",
        *,
        group: str = "",
        meta: dict[str, Any] | None = None,
        evaluate: dict[str, Any] | None = None,
    ) -> Entry:
        """Append a run (its settings checked now, so a typo fails here, not minutes later)."""
        config.validate()
        entry = Entry(
            id=secrets.token_hex(4),
            name=name,
            config=config.to_dict(),
            group=group,
            meta=dict(meta or {}),
            evaluate=evaluate,
            added_at=time.time(),
        )
        with self._locked() as entries:
            entries.append(entry)
        return entry

    def cancel(self, entry_id: str) -> Entry:
        """A waiting entry is dropped from the turn; a running one is asked to stop (its executor stops the run)."""
        with self._locked() as entries:
            entry = self._find(entries, entry_id)
            if entry.state == "queued":
                entry.state, entry.ended_at, entry.message = "cancelled", time.time(), "cancelled before it started"
            elif entry.state == "running" and not _executor_gone(entry):
                entry.cancel_requested = True
            else:
                raise QueueError(f"queue entry {entry.id} ({entry.name}) has already ended ({entry.state})")
            return entry

    def move(self, entry_id: str, position: int) -> Entry:
        """Put a waiting entry at ``position`` among the waiting entries (0: next to start)."""
        with self._locked() as entries:
            entry = self._find(entries, entry_id)
            if entry.state != "queued":
                raise QueueError(f"queue entry {entry.id} is {entry.state}; only waiting entries can be reordered")
            waiting = [e for e in entries if e.state == "queued" and e.id != entry.id]
            waiting.insert(max(0, min(int(position), len(waiting))), entry)
            order = iter(waiting)
            entries[:] = [next(order) if e.state == "queued" else e for e in entries]
            return entry

    def clear(self) -> int:
        """Remove the entries that have ended; returns how many (their run directories stay)."""
        with self._locked() as entries:
            keep = [e for e in entries if e.state in WAITING and not _executor_gone(e)]
            removed = len(entries) - len(keep)
            entries[:] = keep
        return removed

    def claim(self, executor: dict[str, Any]) -> Entry | None:
        """The next waiting entry, marked running by ``executor`` ({pid, host}); None when none waits."""
        with self._locked() as entries:
            for e in entries:
                if e.state == "running" and _executor_gone(e):
                    e.state, e.ended_at = "interrupted", time.time()
                    e.message = "its executor is gone; resume the run from the Train page"
            for e in entries:
                if e.state == "queued":
                    e.state, e.started_at, e.executor = "running", time.time(), dict(executor)
                    return e
        return None

    def unclaim(self, entry_id: str) -> None:
        """Give a claimed entry back (its run could not start yet: the device was busy), first in line."""
        with self._locked() as entries:
            entry = self._find(entries, entry_id)
            entry.state, entry.started_at, entry.executor = "queued", None, None

    def update(self, entry_id: str, **changes: Any) -> Entry:
        with self._locked() as entries:
            entry = self._find(entries, entry_id)
            for key, value in changes.items():
                setattr(entry, key, value)
            return entry


# -- executing ------------------------------------------------------------------------------------
class ExecutorLock(RunLock):
    """The one executor of a runs root (runs go one at a time); a dead holder's lock is free again."""

    def __init__(self, runs_root: str | Path) -> None:
        super().__init__(runs_root)
        self.path = Path(runs_root) / EXECUTOR_LOCK

    def _refusal(self) -> RunLocked:
        return RunLocked(self.holder_text())

    def holder_text(self) -> str:
        who = self.holder()
        return f"the queue of {self.path.parent} is run by pid {who.get('pid', '?')} on {who.get('host', '?')}"

    def try_acquire(self) -> bool:
        Path(self.path.parent).mkdir(parents=True, exist_ok=True)
        try:
            self.acquire()
        except RunLocked:
            return False
        return True


class StartedJob(Protocol):
    """What an executor needs of a started training (simclr_core.train.TrainingJob)."""

    run: Run | None
    error: BaseException | None

    def join(self, timeout: float | None = None) -> bool: ...
    def stop(self) -> None: ...


Launch = Callable[[Entry, Path], StartedJob]  # start the entry's training (raises on bad settings)


class DeviceBusy(RuntimeError):
    """The launch found the device taken (the dashboard's training slot): the entry goes back in line."""


def launch_training(entry: Entry, runs_root: Path) -> StartedJob:
    """Start the entry's run as a background TrainingJob in this process (checks settings, loads data)."""
    from simclr_core.train import TrainingJob

    return TrainingJob(entry.train_config(), runs_root, name=entry.name).start()


def _one_line(err: BaseException) -> str:
    from simclr_core.safe_load import clean_message

    text = str(err) if isinstance(err, ConfigError | FileNotFoundError) else f"{type(err).__name__}: {err}"
    return clean_message(text).splitlines()[0][:300] if text else type(err).__name__


class QueueExecutor:
    """Runs a runs root's queue, one entry at a time, in the calling thread.

    ``launch`` starts an entry's training (default: a TrainingJob here); the dashboard passes one
    that goes through its training slot. ``on_event(entry)`` is told each time an entry starts or ends.
    """

    def __init__(
        self,
        runs_root: str | Path,
        launch: Launch = launch_training,
        poll_s: float = 1.0,
        on_event: Callable[[Entry], None] | None = None,
    ) -> None:
        self.root = Path(runs_root)
        self.queue = RunQueue(self.root)
        self.lock = ExecutorLock(self.root)
        self.launch = launch
        self.poll_s = poll_s
        self.on_event = on_event or (lambda entry: None)
        self.me = {"pid": os.getpid(), "host": socket.gethostname()}
        self.current: Entry | None = None

    def run(self, stop: threading.Event | None = None, until: Callable[[], bool] | None = None) -> int:
        """Run entries while holding the executor lock, until ``until()`` (default: none waits) or ``stop``.

        While another executor holds the lock this one waits for it (and the queue keeps moving there).
        Returns how many entries this executor ran.
        """
        stop = stop or threading.Event()
        until = until or (lambda: not any(e.state == "queued" for e in self.queue.entries()))
        ran = 0
        while not stop.is_set() and not until():
            if not self.lock.try_acquire():
                stop.wait(self.poll_s)
                continue
            try:
                while not stop.is_set() and not until():
                    entry = self.queue.claim(self.me)
                    if entry is None:
                        stop.wait(self.poll_s)
                        continue
                    if self.run_entry(entry, stop):
                        ran += 1
                    else:
                        stop.wait(self.poll_s)  # the device was busy: try again shortly
            finally:
                self.lock.release()
        return ran

    def run_entry(self, entry: Entry, stop: threading.Event | None = None) -> bool:
        """Train one claimed entry to its end and record how it ended; False if it had to wait its turn again."""
        self.current = entry
        try:
            try:
                job = self.launch(entry, self.root)
            except DeviceBusy:
                self.queue.unclaim(entry.id)
                return False
            except Exception as err:  # bad settings or data: recorded, and the queue goes on
                self._end(entry.id, "failed", f"could not start: {_one_line(err)}")
                return True
            assert job.run is not None
            job.run.write_json(ENTRY_FILE, {"entry": entry.id, "group": entry.group, "meta": entry.meta})
            self.on_event(self.queue.update(entry.id, run=job.run.id))
            while not job.join(self.poll_s):
                if (stop is not None and stop.is_set()) or self._cancel_requested(entry.id):
                    job.stop()
            status = job.run.status()
            state = str(status.get("state", "failed"))
            message = str(status.get("message") or "")
            result = None
            cancelled = self._cancel_requested(entry.id)
            if state == "finished" and entry.evaluate is not None:
                result, message = self._evaluate(job.run, entry.evaluate, message)
            if cancelled and state == "stopped":
                state, message = "cancelled", "cancelled while running; " + message
            self._end(entry.id, state, message, result)
            return True
        finally:
            self.current = None

    def _cancel_requested(self, entry_id: str) -> bool:
        try:
            return self.queue.get(entry_id).cancel_requested
        except QueueError:  # the entry was cleared away: nobody waits for it any more
            return True

    @staticmethod
    def _evaluate(run: Run, spec: dict[str, Any], message: str) -> tuple[dict[str, Any] | None, str]:
        from simclr_core.knn_eval import evaluate_run

        try:
            result = evaluate_run(run.path, spec.get("bank"), spec.get("scored"), k=int(spec.get("k", 20)))
        except Exception as err:  # the run itself finished: keep it, say why it has no score
            return None, f"{message}; kNN evaluation failed: {_one_line(err)}"
        return result, f"{message}; kNN {result['knn_acc']:.1%} on {result['scored']}"

    def _end(self, entry_id: str, state: str, message: str, result: dict[str, Any] | None = None) -> None:
        with contextlib.suppress(QueueError):  # cleared meanwhile
            self.on_event(
                self.queue.update(entry_id, state=state, message=message, ended_at=time.time(), result=result)
            )


def entry_of_run(run: Run) -> dict[str, Any]:
    """What ``queue_entry.json`` says of a run ({entry, group, meta}); {} for a run started by hand."""
    return run.read_object(ENTRY_FILE)
