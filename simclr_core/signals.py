"""SIGINT and SIGTERM as a graceful stop of a CLI run: the current step ends, last.ckpt is saved, state ``stopped``.

Lightning installs its own SIGTERM handler during ``fit``; it raises ``SIGTERMException`` (a
``SystemExit``) from inside the loops, which ends the run ``failed`` with exit status 0 and, in
validation, before any ``last.ckpt``. ``keep_our_handlers`` switches it off for a trainer, so the
one decision is ours: the stop request the callbacks already honour at the next step boundary.

Exit status of a run stopped by a signal: 128 + the signal number (130 Ctrl-C, 143 SIGTERM), the
shell's convention, so a scheduler sees a terminated job and a script can tell it from ``finished``.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The first SIGINT/SIGTERM sets ``event`` (stop after the current step); a second Ctrl-C aborts."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        """Take over both signals; only the main thread can (elsewhere this does nothing)."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        """Give the signals back to whoever had them (a test runner calling the CLI in-process)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.signum = self.signum or signum
        self.event.set()
        # os.write, not print: a handler that prints while the main thread prints raises "reentrant call".
        note = f"\n{signal.Signals(signum).name}: stopping after the current step (Ctrl-C again to abort) ...\n"
        os.write(2, note.encode())

    def exit_code(self, otherwise: int) -> int:
        """128 + the signal that stopped the run, else ``otherwise``."""
        return 128 + self.signum if self.signum else otherwise


def keep_our_handlers(trainer: Any) -> None:
    """Stop ``trainer`` (a Lightning Trainer) from installing its SIGTERM handler at ``fit``.

    Lightning has no public switch for this; its signal connector's registration is the one hook.
    Under DDP the stop request still reaches every rank: rank 0's decision is broadcast (callbacks).
    """
    connector = getattr(trainer, "_signal_connector", None)
    if connector is not None:
        connector.register_signal_handlers = lambda: None
