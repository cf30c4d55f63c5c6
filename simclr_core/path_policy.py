"""Which server folders a dashboard visitor may name: the data root, the runs root, the working directory
and the roots an operator lists in ``$SIMCLR_STUDIO_ALLOWED_ROOTS`` (``os.pathsep``-separated).

A path field in the browser is a request to read the server's disk. Without a policy ``~/.ssh`` or
``/etc`` could be opened, and error messages told which paths exist. So a path is resolved
(``realpath``: links and ``..`` cannot leave a root) and compared with the roots before anything
looks at it, and the one refusal message is the same whether or not the path exists.

Two further rules keep a careless start from exposing secrets. Below a root, no component of the
resolved path may be hidden (start with ``.``): ``.ssh``, ``.git``, ``.env``, ``.aws`` stay out even
inside an allowed folder (a root that itself lies in a hidden folder, like the default data root
``~/.cache/simclr-studio``, is fine: only what lies below it is checked). And the working directory is
a root only when it is not ``/``, ``$HOME`` or a folder above ``$HOME`` (a server started from the home
folder would otherwise serve all of it); the data root, the runs root and the operator's roots are
always roots, whatever they are.
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


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def cwd_is_a_root(cwd: Path | None = None) -> bool:
    """Whether the working directory may serve as a root: not ``/``, ``$HOME`` or a folder holding ``$HOME``."""
    cwd = _real(cwd or Path.cwd())
    return cwd != Path(cwd.anchor) and not _real(Path.home()).is_relative_to(cwd)


def allowed_roots(*extra: str | Path) -> list[Path]:
    """The data root, the working directory (unless ``/`` or ``$HOME``: ``cwd_is_a_root``), ``extra`` (the
    runs root) and the operator's roots, resolved."""
    from simclr_core.data import data_root

    named = [data_root(), *([Path.cwd()] if cwd_is_a_root() else []), *extra]
    named += [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [_real(p) for p in named]


def _visible_below(resolved: Path, root: Path) -> bool:
    """Whether ``resolved`` lies in ``root`` with no hidden component (``.ssh``, ``.git``) below it."""
    if not resolved.is_relative_to(root):
        return False
    return not any(part.startswith(".") for part in resolved.relative_to(root).parts)


def inside(path: str | Path, roots: Iterable[Path]) -> Path:
    """``path`` resolved, if it lies in one of ``roots`` with no hidden component below that root; else
    PathRefused (the same message whether the path is outside, hidden or missing)."""
    resolved = _real(path)
    if any(_visible_below(resolved, root) for root in roots):
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
