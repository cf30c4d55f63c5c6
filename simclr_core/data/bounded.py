"""Reading a user's files within limits: only regular files inside the source, and capped bytes.

A folder or archive given as data is untrusted input. Without limits a 408 KB zip holding a
400 MB member cost 0.7 GB of RAM, a FIFO named ``x.png`` hung the load forever and a link to
``/dev/zero`` grew memory by gigabytes. So: sizes are checked before reading (what the folder
or the archive's header declares) and enforced while reading (at most ``MAX_FILE_BYTES + 1``
bytes are ever read, whatever a header claimed); a file that is not a regular file inside the
source is skipped with the reason.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from simclr_core.regular_files import NOT_REGULAR, Refused, read_regular
from simclr_core.units import human_bytes

MAX_FILE_BYTES = 64 * 2**20  # one encoded image; far above any real photo, far below memory trouble
MAX_TOTAL_BYTES = 32 * 2**30  # the whole source as declared before reading
MAX_MEMBERS = 2_000_000  # files listed in one source
MAX_PENDING_BYTES = 256 * 2**20  # encoded bytes read ahead of the decoders


def too_large(size: int | None) -> str:
    """Why a file over MAX_FILE_BYTES is skipped (``size`` None: it passed the cap while being read)."""
    if size is None:
        return f"file too large (more than {human_bytes(MAX_FILE_BYTES)} per image file)"
    return f"file too large ({human_bytes(size)}; at most {human_bytes(MAX_FILE_BYTES)} per image file)"


def check_folder_file(path: Path, root: Path) -> str | None:
    """Why ``path`` (listed in folder ``root``) must not be read, or None: links leaving ``root``, dangling
    links, FIFOs, devices, sockets and oversized files are refused before anything is opened."""
    try:
        st = path.lstat()
    except OSError as err:
        return f"cannot read file ({err.strerror or err})"
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root):
            return "symbolic link pointing outside the folder (not followed)"
        try:
            st = target.stat()
        except OSError:
            return "dangling symbolic link (its target does not exist)"
    if not stat.S_ISREG(st.st_mode):
        return NOT_REGULAR
    if st.st_size > MAX_FILE_BYTES:
        return too_large(st.st_size)
    return None


def read_limited(handle: IO[bytes], declared: int | None = None) -> bytes:
    """At most MAX_FILE_BYTES from ``handle``; raises Refused past that (a header may lie about sizes)."""
    if declared is not None and declared > MAX_FILE_BYTES:
        raise Refused(too_large(declared))
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Refused(too_large(None))
    return data


def read_folder_file(path: Path) -> bytes:
    """A regular file's bytes, bounded; checked again on the open descriptor (the file may have been swapped)."""
    return read_regular(path, MAX_FILE_BYTES, too_large)


def check_totals(members: int, total_bytes: int, what: str) -> str | None:
    """Why a whole source is refused before reading (too many files or bytes), or None."""
    if members > MAX_MEMBERS:
        return f"{what} lists {members:,} files, more than the {MAX_MEMBERS:,} a source may hold; split it"
    if total_bytes > MAX_TOTAL_BYTES:
        return (
            f"{what} holds {human_bytes(total_bytes)} of image files, more than the {human_bytes(MAX_TOTAL_BYTES)} "
            "a source may hold; split it or use a subset"
        )
    return None
