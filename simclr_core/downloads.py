"""One HTTP download loop for the engine: dataset archives (``data/torchvision_sets.py``) and the tutorial's files
(``tutorial_files.py``).

``download(url, target, title, progress)`` streams ``url`` into ``target.part`` and renames it to
``target`` once complete, reporting ``progress(message, fraction)`` as bytes arrive. It never prints:
the CLI draws the callback as a tqdm bar (:mod:`simclr_core.cli_progress`), the dashboard as its own bar.
What can go wrong is raised as a :class:`DownloadFailure` subclass (the ``.part`` file already removed),
so each caller says it in its own words: :class:`HTTPStatus` (the server answered with an error),
:class:`Offline` (no connection, DNS or timeout), :class:`NotSaved` (disk full or read-only),
:class:`Incomplete` (the connection ended early).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from simclr_core.units import human_bytes

Progress = Callable[[str, float], None] | None

TIMEOUT_S = 30.0
CHUNK = 1 << 16
USER_AGENT = "simclr-studio"


class DownloadFailure(Exception):
    """A download that did not finish; ``url`` and the ``part`` file it wrote to (removed) are kept for messages."""

    def __init__(self, url: str, part: Path, detail: str) -> None:
        super().__init__(detail)
        self.url = url
        self.part = part


class HTTPStatus(DownloadFailure):
    def __init__(self, url: str, part: Path, code: int, reason: str) -> None:
        super().__init__(url, part, f"HTTP {code} {reason}")
        self.code = code
        self.reason = reason


class Offline(DownloadFailure):
    def __init__(self, url: str, part: Path, reason: object) -> None:
        super().__init__(url, part, str(reason))
        self.reason = reason


class NotSaved(DownloadFailure):
    def __init__(self, url: str, part: Path, error: OSError) -> None:
        super().__init__(url, part, str(error.strerror or error))
        self.error = error


class Incomplete(DownloadFailure):
    def __init__(self, url: str, part: Path, got: int, total: int) -> None:
        super().__init__(url, part, f"stopped at {got} of {total} bytes")
        self.got = got
        self.total = total


def download(
    url: str, target: Path, title: str, progress: Progress = None, timeout: float = TIMEOUT_S, chunk: int = CHUNK
) -> Path:
    """Stream ``url`` to ``target`` (via ``target.part``); ``progress("downloading TITLE (got of total)", frac)``.

    The fraction is 0 throughout when the server sends no Content-Length. Calls come once per
    percent (every chunk without a length). Raises a :class:`DownloadFailure` subclass on failure.
    """
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as fh:
            total = int(response.headers.get("Content-Length") or 0)
            got, shown = 0, -1
            if progress is not None:
                progress(f"downloading {title} (0 B{f' of {human_bytes(total)}' if total else ''})", 0.0)
            while data := response.read(chunk):
                fh.write(data)
                got += len(data)
                percent = got * 100 // total if total else -1
                if progress is not None and (percent != shown or not total):
                    shown = percent
                    of = f" of {human_bytes(total)}" if total else ""
                    progress(f"downloading {title} ({human_bytes(got)}{of})", got / total if total else 0.0)
        if total and got != total:
            raise Incomplete(url, part, got, total)
        part.replace(target)
    except DownloadFailure:
        part.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as err:
        part.unlink(missing_ok=True)
        raise HTTPStatus(url, part, err.code, str(err.reason)) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
        part.unlink(missing_ok=True)
        raise Offline(url, part, err.reason if isinstance(err, urllib.error.URLError) else err) from None
    except OSError as err:
        part.unlink(missing_ok=True)
        raise NotSaved(url, part, err) from None
    except BaseException:  # a stop (Ctrl-C, a progress callback raising) leaves no half file behind
        part.unlink(missing_ok=True)
        raise
    return target
