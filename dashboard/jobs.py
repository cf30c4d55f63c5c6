"""This server's background work, shared by every browser tab: one training slot and one task per kind.

SimCLR training and the supervised baseline compete for the same device, so one of them runs at
a time; evaluation tasks (the probe) run beside it, one per kind. Every job is the engine's
:class:`simclr_core.jobs.Job`, so pages read progress, result, error and stop the same way.

When the server ends (SIGTERM, Ctrl-C), its jobs stop as a CLI run does: the current step ends,
``last.ckpt`` is saved and the run reads ``stopped``, resumable. Streamlit owns the signals (it
installs its handlers in the main thread, where a page's code never runs), so this hooks the exit
instead: Streamlit stops its server on the signal and the interpreter ends, and before it joins
its threads (``threading``'s exit hooks run before ``atexit``'s, where tensorboardX closes its
writers) :func:`stop_jobs_at_exit` asks every job to stop and waits up to ``STOP_WAIT_S`` for them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from dashboard.errors import attempt
from dashboard.state import runs_root, select_run
from simclr_core.jobs import Job, spawn

if TYPE_CHECKING:
    from simclr_core.config import TrainConfig
    from simclr_core.supervised import SupervisedJob
    from simclr_core.train import TrainingJob

    RunJob = TrainingJob | SupervisedJob  # the jobs that hold the training slot, each writing one run

T = TypeVar("T")
STOP_WAIT_S = 60.0  # at the server's exit, for its jobs to finish their step and save (a CPU step takes seconds)
CLOSING = "the server is shutting down"


def job_label(job: RunJob) -> str:
    return job.run.id if job.run is not None else "a job"


def _label(job: Job[Any]) -> str:
    run = getattr(job, "run", None)
    return run.id if run is not None else job.label or "a job"


class Jobs:
    """The training slot and the tasks; held once per server by :func:`jobs`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._training: RunJob | None = None
        self._starting: str | None = None  # a job being set up (loading its data) holds the slot
        self.tasks: dict[str, Job[Any]] = {}  # kind -> its latest task; results differ by kind
        self.closing = False  # set at the server's exit: nothing new starts
        _INSTANCES.add(self)

    def training_job(self) -> RunJob | None:
        """The job in the training slot (running or ended), if one was started."""
        return self._training

    def busy(self) -> str | None:
        """What holds the training slot (a job being set up, or running), or None when it is free."""
        with self.lock:
            job = self._training
            busy = self._starting or (job_label(job) if job is not None and job.is_alive() else None)
            return busy or (CLOSING if self.closing else None)

    def close(self) -> list[Job[Any]]:
        """Refuse new jobs from now on and ask the running ones to stop; the jobs asked (see ``join``)."""
        with self.lock:
            self.closing = True
            running = [job for job in (self._training, *self.tasks.values()) if job is not None and job.is_alive()]
        for job in running:
            job.stop()
        return running

    def start_training(self, what: str, factory: Callable[[], RunJob]) -> RunJob:
        """Start the job ``factory`` makes unless one is running; RuntimeError names the running one.

        The slot is reserved under the lock, then ``factory`` (which loads data: seconds) runs outside it.
        """
        with self.lock:
            job = self._training
            busy = self._starting or (job_label(job) if job is not None and job.is_alive() else None)
            if self.closing:
                raise RuntimeError(f"{CLOSING}; start the run again once it is back")
            if busy:
                raise RuntimeError(
                    f"'{busy}' is still training. One job runs at a time on this server: "
                    "stop it on the Train page, or wait until it finishes."
                )
            self._starting = what
        try:
            started = factory()
        except BaseException:
            with self.lock:
                self._starting = None
            raise
        with self.lock:
            self._training, self._starting = started, None
            if self.closing:  # the exit came while its data loaded: stop it as the others were
                started.stop()
        return started

    def start_task(self, kind: str, label: str, work: Callable[[Job[T]], T]) -> Job[T]:
        """Run ``work(job)`` in the background; refused while a task of the same kind runs."""
        with self.lock:
            if self.closing:
                raise RuntimeError(f"{CLOSING}; try again once it is back")
            current = self.tasks.get(kind)
            if current is not None and current.is_alive():
                raise RuntimeError(
                    f"{current.label} is still running ({current.progress.fraction:.0%}); wait for it to finish."
                )
            task = spawn(label, work, name=f"simclr-studio-{kind}")
            self.tasks[kind] = task
            return task


_INSTANCES: weakref.WeakSet[Jobs] = weakref.WeakSet()  # one per server (``jobs``); tests make more


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode())  # not print: stdout may be closed or mid-write at exit


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_jobs_at_exit(timeout: float | None = None, slots: Iterable[Jobs] | None = None) -> list[str]:
    """Stop every job of ``slots`` (default: every :class:`Jobs` of this process) and wait up to ``timeout`` s
    (``STOP_WAIT_S``) in all; the labels of those still running after it (they read ``interrupted`` and resume
    from their last checkpoint). The slots closed refuse new jobs from then on.

    Runs in the main thread as the interpreter ends; a second Ctrl-C or SIGTERM while it waits leaves at once.
    """
    running = [job for slot in list(_INSTANCES if slots is None else slots) for job in slot.close()]
    if not running:
        return []
    limit = STOP_WAIT_S if timeout is None else timeout
    names = ", ".join(_label(job) for job in running)
    _say(
        f"\nSimCLR Studio is shutting down: stopping {names} after the current step and saving last.ckpt "
        f"(up to {limit:.0f} s; Ctrl-C again to leave at once) ...\n"
    )
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                previous[signum] = signal.signal(signum, _raise_interrupt)
    deadline = time.monotonic() + limit
    try:
        for job in running:
            job.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)
    left = [_label(job) for job in running if job.is_alive()]
    _say(f"not stopped in time: {', '.join(left)} (resume from the last checkpoint)\n" if left else "stopped.\n")
    return left


def _hook_exit(hook: Callable[[], object]) -> None:
    """Call ``hook`` as the interpreter ends: among ``threading``'s exit hooks when it has them (before any
    thread is joined and before ``atexit``'s hooks), else with ``atexit``."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # the interpreter already ends
            register(hook)
            return
    atexit.register(hook)


_hook_exit(stop_jobs_at_exit)


@st.cache_resource
def jobs() -> Jobs:
    return Jobs()


def running_job() -> RunJob | None:
    """The training-slot job while it runs, else None."""
    job = jobs().training_job()
    return job if job is not None and job.is_alive() else None


def start_job(factory: Callable[[], RunJob], what: str) -> RunJob | None:
    """Start a job in the training slot (loading its data under a spinner); shows why when it cannot start."""

    def make() -> RunJob:
        with st.spinner("Checking the settings and loading the data ..."):
            return factory().start()

    job = attempt(what, jobs().start_training, what, make)
    if job is not None and job.run is not None and job.run.kind == "simclr":
        select_run(job.run.id)
    return job


def start_training(cfg: TrainConfig, name: str) -> RunJob | None:
    """Start a SimCLR run in the background (one per server)."""
    from dashboard.paths import check_config
    from simclr_core.train import TrainingJob

    root = runs_root()

    def make() -> RunJob:
        check_config(cfg)
        return TrainingJob(cfg, root, name=name)

    return start_job(make, what=f"start the run {name!r}")


def resume_training(run_id: str) -> RunJob | None:
    """Resume a run in the background, its data checked against the allowed roots as a new run's is.

    The run's settings come from its ``config.json``, which a CLI run (or anyone with the runs folder)
    may have written with any server path: without this check, Resume would read what the form refuses.
    """
    from dashboard.paths import check_config, roots
    from simclr_core.config import TrainConfig
    from simclr_core.path_policy import inside
    from simclr_core.store import Run
    from simclr_core.train import TrainingJob

    path = runs_root() / run_id

    def make() -> RunJob:
        run = Run(inside(path, roots()))  # a run id cannot lead out of the runs folder either
        check_config(TrainConfig.from_dict(run.train_config))
        return TrainingJob(resume=run.path)

    return start_job(make, what=f"resume {run_id}")
