"""The background-thread job shared by training and the supervised baseline.

The dashboard starts long work without blocking a page: ``start()`` runs the checks in the
caller's thread (so a bad setting raises before anything exists), then ``_launch(work)`` runs
the work in a daemon thread. ``stop()`` only sets an event; the work polls it between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundJob:
    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _launch(self, work: Callable[[], None], name: str) -> None:
        def target() -> None:
            try:
                work()
            except BaseException as err:  # the work records it in the run dir; keep it for callers too
                self.error = err

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the work to end after its current step; returns at once (see ``join``)."""
        self.stop_event.set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_alive()
