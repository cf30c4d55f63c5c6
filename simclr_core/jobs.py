"""The one background job type: training, the probe, the supervised baseline and the dashboard's warm-up.

The dashboard starts long work without blocking a page and reads how it goes on any later
rerun; the CLI waits on the same object. A job runs one function in a daemon thread and keeps
what a reader needs: ``progress`` (a fraction and what it is doing), ``result``, ``error``
(kept, since nobody joins a daemon thread to see it raise) and ``stop()``, which only sets an
event the work polls between steps, so a step is never cut in half.

Jobs that must check their settings before anything exists (``TrainingJob``, ``SupervisedJob``)
do so in their ``start()``, in the caller's thread, and then hand the work to ``_launch``;
anything else is ``spawn(label, work)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """How far a job is (0..1) and what it is doing; replaced whole, so a reader never sees half an update."""

    fraction: float = 0.0
    message: str = "starting"


class Job(Generic[T]):
    """Work in a daemon thread with progress, result, error and a stop request."""

    def __init__(self, label: str = "") -> None:
        self.label = label  # what the job is, for people ("Probe of demo-...")
        self.stop_event = threading.Event()
        self.progress = Progress()
        self.result: T | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def report(self, fraction: float, message: str = "") -> None:
        """Called by the work: ``fraction`` done (clamped to 0..1), and what it is doing now."""
        self.progress = Progress(min(max(float(fraction), 0.0), 1.0), message or self.progress.message)

    def _launch(self, work: Callable[[], T], name: str) -> None:
        def target() -> None:
            try:
                self.result = work()
            except BaseException as err:  # the caller reads it (and the work may have recorded it too)
                self.error = err
                self.report(self.progress.fraction, "failed")
            else:
                self.report(1.0, "done")

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the work to end after its current step; returns at once (see ``join``)."""
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_alive()

    def wait(self) -> T | None:
        """Block until the job ends and return its result, or raise its error.

        A Ctrl-C asks the work to stop and keeps waiting, so it still ends cleanly.
        """
        try:
            while not self.join(1.0):
                pass
        except KeyboardInterrupt:
            self.stop()
            self.join()
        if self.error is not None:
            raise self.error
        return self.result


def spawn(label: str, work: Callable[[Job[T]], T], name: str = "simclr-job") -> Job[T]:
    """Run ``work(job)`` in the background now; it calls ``job.report`` and polls ``job.stopping``."""
    job: Job[T] = Job(label)
    job._launch(lambda: work(job), name)
    return job
