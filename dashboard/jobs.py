"""This server's background work, shared by every browser tab: one training slot and one task per kind.

SimCLR training and the supervised baseline compete for the same device, so one of them runs at
a time; evaluation tasks (the probe) run beside it, one per kind. Every job is the engine's
:class:`simclr_core.jobs.Job`, so pages read progress, result, error and stop the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def job_label(job: RunJob) -> str:
    return job.run.id if job.run is not None else "a job"


class Jobs:
    """The training slot and the tasks; held once per server by :func:`jobs`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._training: RunJob | None = None
        self._starting: str | None = None  # a job being set up (loading its data) holds the slot
        self.tasks: dict[str, Job[Any]] = {}  # kind -> its latest task; results differ by kind

    def training_job(self) -> RunJob | None:
        """The job in the training slot (running or ended), if one was started."""
        return self._training

    def busy(self) -> str | None:
        """What holds the training slot (a job being set up, or running), or None when it is free."""
        with self.lock:
            job = self._training
            return self._starting or (job_label(job) if job is not None and job.is_alive() else None)

    def start_training(self, what: str, factory: Callable[[], RunJob]) -> RunJob:
        """Start the job ``factory`` makes unless one is running; RuntimeError names the running one.

        The slot is reserved under the lock, then ``factory`` (which loads data: seconds) runs outside it.
        """
        with self.lock:
            job = self._training
            busy = self._starting or (job_label(job) if job is not None and job.is_alive() else None)
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
        return started

    def start_task(self, kind: str, label: str, work: Callable[[Job[T]], T]) -> Job[T]:
        """Run ``work(job)`` in the background; refused while a task of the same kind runs."""
        with self.lock:
            current = self.tasks.get(kind)
            if current is not None and current.is_alive():
                raise RuntimeError(
                    f"{current.label} is still running ({current.progress.fraction:.0%}); wait for it to finish."
                )
            task = spawn(label, work, name=f"simclr-studio-{kind}")
            self.tasks[kind] = task
            return task


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
