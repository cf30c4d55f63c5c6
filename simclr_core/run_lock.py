"""One writer per run directory: an exclusive ``flock`` on ``<run>/.writer.lock`` while a process writes it.

The dashboard's one-job rule lives inside one server; a CLI run, a second server or a second
``train --resume`` are other processes. The kernel's lock covers them all, and it is released
when its holder exits however it ends (SIGKILL included), so a dead writer's lock is simply
taken over. The file itself stays (removing it would race with a new holder); it names the
last holder (pid, host, since) so a refusal can say who writes. flock is per host: on a shared
filesystem across nodes it protects only writers on the same machine (NFS may emulate it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from simclr_core.config import ConfigError

LOCK_NAME = ".writer.lock"


class RunLocked(ConfigError):
    """Another live process writes this run; the message names it."""


class RunLock:
    """Hold with ``acquire()`` (raises RunLocked when taken), give back with ``release()``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        """What the current or last holder wrote: {pid, host, since}; {} if unreadable."""
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _refusal(self) -> RunLocked:
        who = self.holder()
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who["since"])) if "since" in who else "?"
        return RunLocked(
            f"run {self.path.parent.name} is being written by pid {who.get('pid', '?')} on host "
            f"{who.get('host', '?')} (since {since}); stop that run first, or wait for it to end"
        )

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refusal() from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def check_free(self) -> None:
        """Raise RunLocked if a live process holds the lock now (a quick test before slow preparation)."""
        if not self.path.exists():
            return
        self.acquire().release()

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
