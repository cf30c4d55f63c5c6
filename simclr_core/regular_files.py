"""The one bounded read of a user's file: regular files only, never blocking, capped before and while reading.

Used by the datasets (``simclr_core.data.bounded``) and the TensorBoard overlay reader. It lives outside
``simclr_core.data`` because importing that package loads torch, and the dashboard reads an event file
without it. A FIFO is opened with ``O_NONBLOCK`` (so opening it returns at once) and then refused on the
open descriptor's ``fstat``, as are devices (a link to ``/dev/zero``) and sockets; a regular file is
refused when its size is over the cap before anything is read, and at most ``max_bytes + 1`` bytes are
ever read (it may grow while being read).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

NOT_REGULAR = "not a regular file (a FIFO, device or socket is never read)"


class Refused(OSError):
    """A file not read, for a reason a user can act on (the message says which)."""


def read_regular(path: str | Path, max_bytes: int, too_large: Callable[[int | None], str]) -> bytes:
    """The bytes of regular file ``path``, at most ``max_bytes``; Refused for anything else.

    ``too_large(size)`` words the refusal of an oversized file: ``size`` is its declared size, or None
    when it grew past the cap while being read. OSError (missing, unreadable) passes through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(NOT_REGULAR)
        if st.st_size > max_bytes:
            raise Refused(too_large(st.st_size))
        data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise Refused(too_large(None))
        return data
