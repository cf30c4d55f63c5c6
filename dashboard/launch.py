"""The ``simclr-studio-dashboard`` command: ``streamlit run app.py`` for this checkout or the installed package.

From a checkout, app.py is the repository's (``python -m streamlit run app.py`` keeps working as
well). From an installed package it is the copy under ``dashboard/app/`` (app.py, pages/, the
Streamlit config and the Home page's picture, laid out as in the repository; see pyproject.toml).
Streamlit reads ``.streamlit/config.toml`` only from the working directory, so the app's own
config is passed as flags; flags given to this command come after them and win.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def app_path() -> Path:
    """app.py: the installed copy (``dashboard/app/app.py``) or, in a checkout, the repository's."""
    for candidate in (HERE / "app" / "app.py", HERE.parent / "app.py"):
        if candidate.is_file() and (candidate.parent / "pages" / "home.py").is_file():
            return candidate
    raise FileNotFoundError(f"the dashboard's app.py was not found next to {HERE} (a broken install?)")


def _flag_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _leaf_options(table: dict, prefix: str) -> list[tuple[str, object]]:
    """Dotted leaf names of a TOML table: ``[theme.light] primaryColor`` -> ``theme.light.primaryColor``.

    Streamlit's command line has one option per leaf (``--theme.light.primaryColor``), none for a
    nested table (``--theme.light`` is refused as NoSuchOption), so tables are walked down to leaves.
    """
    leaves: list[tuple[str, object]] = []
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            leaves.extend(_leaf_options(value, name))
        else:
            leaves.append((name, value))
    return leaves


def config_flags(app: Path) -> list[str]:
    """The app's ``.streamlit/config.toml`` as ``--section.key=value`` flags (none when it is absent).

    Nested tables become dotted leaf options (``--theme.light.primaryColor=#4f46e5``). A list value
    becomes one flag per item for Streamlit's multiple-valued options (``server.folderWatchList``) and
    one JSON flag for the others (``theme.chartCategoricalColors``, which Streamlit reads with json.loads).
    """
    config = app.parent / ".streamlit" / "config.toml"
    if not config.is_file():
        return []
    flags = []
    for name, value in _leaf_options(tomllib.loads(config.read_text()), ""):
        if not isinstance(value, list):
            flags.append(f"--{name}={_flag_text(value)}")
        elif _multiple_valued(name):
            flags.extend(f"--{name}={_flag_text(item)}" for item in value)
        else:
            flags.append(f"--{name}={json.dumps(value)}")
    return flags


def _multiple_valued(name: str) -> bool:
    from streamlit import config as st_config

    option = st_config.get_config_options().get(name)
    return bool(option is not None and option.multiple)


def streamlit_argv(args: list[str]) -> list[str]:
    app = app_path()
    return ["streamlit", "run", str(app), *config_flags(app), *args]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        print(f"usage: simclr-studio-dashboard [STREAMLIT FLAGS]\n\n{__doc__.splitlines()[0]}\napp: {app_path()}")
        return 0
    from streamlit.web import cli as stcli

    sys.argv = streamlit_argv(args)
    return int(stcli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
