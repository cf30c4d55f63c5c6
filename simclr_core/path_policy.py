"""Which server folders a dashboard visitor may name: the data root, the runs root, the working directory
and the roots an operator lists in ``$SIMCLR_STUDIO_ALLOWED_ROOTS`` (``os.pathsep``-separated).

A path field in the browser is a request to read the server's disk. Without a policy ``~/.ssh`` or
``/etc`` could be opened, and error messages told which paths exist. So a path is resolved
(``realpath``: links and ``..`` cannot leave a root) and compared with the roots before anything
looks at it, and the one refusal message is the same whether or not the path exists.
The CLI is not restricted: its user already has the shell.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

ROOTS_ENV = "SIMCLR_STUDIO_ALLOWED_ROOTS"


class PathRefused(ValueError):
    """A path outside the allowed roots; the message never says whether it exists.

    A ValueError (the dashboard's user errors), not DatasetError: importing the data package loads torch,
    and the dashboard's modules must not before app.py configures the process.
    """


def allowed_roots(*extra: str | Path) -> list[Path]:
    """The data root, the working directory, ``extra`` (the runs root) and the operator's roots, resolved."""
    from simclr_core.data import data_root

    named = [data_root(), Path.cwd(), *extra]
    named += [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(Path(p).expanduser())) for p in named]


def inside(path: str | Path, roots: Iterable[Path]) -> Path:
    """``path`` resolved, if it lies in one of ``roots``; else PathRefused."""
    resolved = Path(os.path.realpath(Path(path).expanduser()))
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    raise PathRefused(
        f"{str(path)!r} is outside the folders this server may read (its data cache, runs folder and working "
        f"directory). Upload the images instead, or ask the operator to allow a folder with {ROOTS_ENV}=/a:/b"
    )


def is_path_spec(spec: str) -> bool:
    """Whether a dataset spec names a server path (not a built-in or downloadable set)."""
    from simclr_core.data.spec import BUILTIN_SPLITS

    base = spec.strip().partition("?")[0]
    return base.split(":", 1)[0].lower() not in BUILTIN_SPLITS or base.startswith(("./", "/"))


def check_spec(spec: str | None, roots: Iterable[Path]) -> None:
    """Refuse a dataset spec whose path lies outside ``roots`` (built-in specs always pass)."""
    if spec and is_path_spec(spec):
        inside(spec.strip().partition("?")[0], roots)
