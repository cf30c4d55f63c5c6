"""The CLI's progress bars: the engine's ``progress(message, fraction)`` callbacks drawn as tqdm bars on stderr.

The engine never draws progress itself: downloads, decoding, feature encoding and probing call
``progress(message, fraction)`` (the dashboard draws the same calls as its own bars). A command
passes a :class:`Bars` as that callback:

    bars = Bars()
    load_dataset(spec, progress=bars)
    features_for(..., progress=bars.counter("encoding shapes:test"))
    bars.close()

A message names its step and may end in a detail in parentheses: ``"downloading CIFAR-10 (12.0 MB of
170.5 MB)"`` is the step ``downloading CIFAR-10`` with the detail ``12.0 MB of 170.5 MB``. A bar lasts while the
step's name stays the same and its fraction does not go back; a new step closes it and opens the
next. A step that never moved (``verifying ...``) is cleared when it ends. Bars go to stderr only
(stdout stays for results such as ``probe --json``) and are off when stderr is not a terminal
(logs, pipes), unless ``enabled=True``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import IO, Any

from tqdm import tqdm

_DETAIL = re.compile(r"^(?P<step>.*) \((?P<detail>[^()]*)\)$")
_SCALE = 1000  # a fraction is drawn as n of 1000


def split_message(message: str) -> tuple[str, str]:
    """``"step (detail)"`` -> ``(step, detail)``; a final parenthesis without a digit is part of the step."""
    match = _DETAIL.match(message)
    if match and any(c.isdigit() for c in match.group("detail")):
        return match.group("step"), match.group("detail")
    return message, ""


class Bars:
    """One tqdm bar at a time, driven by ``progress(message, fraction)`` calls (fraction in [0, 1])."""

    def __init__(self, file: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.file = file
        self.enabled = enabled
        self._bar: Any = None
        self._step: str | None = None
        self._fraction = 0.0

    def _stream(self) -> IO[str]:
        return self.file if self.file is not None else sys.stderr

    def _disabled(self) -> bool:
        if self.enabled is not None:
            return not self.enabled
        isatty = getattr(self._stream(), "isatty", None)
        return not (callable(isatty) and isatty())

    def __call__(self, message: str, fraction: float) -> None:
        step, detail = split_message(message)
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self._bar is None or step != self._step or fraction < self._fraction:
            self.close()
            self._bar = tqdm(
                total=_SCALE,
                desc=step,
                file=self._stream(),
                disable=self._disabled(),
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                dynamic_ncols=True,
                leave=True,
            )
            self._step, self._fraction = step, 0.0
        self._bar.set_description_str(f"{step} ({detail})" if detail else step, refresh=False)
        target = round(fraction * _SCALE)
        self._fraction = fraction
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)
        else:
            self._bar.refresh()

    def counter(self, step: str, unit: str = "images") -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback (feature encoding) drawn as ``step (done/total unit)``."""

        def report(done: int, total: int) -> None:
            self(f"{step} ({done}/{total} {unit})", done / total if total else 1.0)

        return report

    def write(self, line: str) -> None:
        """A log line to stderr that does not tear an open bar."""
        tqdm.write(line, file=self._stream())

    def close(self) -> None:
        """End the open bar: kept on screen when it moved, cleared when it never did."""
        if self._bar is not None:
            if self._bar.n == 0:
                self._bar.leave = False
            self._bar.close()
        self._bar, self._step, self._fraction = None, None, 0.0

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
