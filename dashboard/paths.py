"""The dashboard's path fields, resolved only inside the allowed roots (``simclr_core.path_policy``).

Every dataset spec and runs folder a visitor types goes through here before the engine sees it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from simclr_core.path_policy import PathRefused, allowed_roots, check_spec, inside

if TYPE_CHECKING:
    from simclr_core.config import TrainConfig


def default_runs_root() -> Path:
    """The operator's runs folder: $SIMCLR_STUDIO_RUNS or ./runs."""
    return Path(os.environ.get("SIMCLR_STUDIO_RUNS") or "runs").expanduser()


def roots() -> list[Path]:
    return allowed_roots(default_runs_root())


def runs_folder(typed: str | None) -> tuple[Path, str | None]:
    """(the runs folder to use, why the typed one was refused or None): a refused one falls back to the default."""
    if not typed:
        return default_runs_root(), None
    try:
        return inside(typed, roots()), None
    except PathRefused as err:
        return default_runs_root(), str(err)


def check_data(*specs: str | None) -> None:
    """Raise PathRefused for the first spec naming a server path outside the roots."""
    allowed = roots()
    for spec in specs:
        check_spec(spec, allowed)


def check_config(cfg: TrainConfig) -> None:
    """Refuse a run's data before anything loads: outside the roots (PathRefused), or a typo, a missing file, a
    bad option (DatasetError); seconds after Start, not after the long-run question or a data load."""
    from simclr_core.data.spec import parse_spec

    check_data(cfg.data, cfg.val_data)
    for spec in filter(None, (cfg.data, cfg.val_data)):
        parse_spec(spec)
