"""The ``simclr-studio-dashboard`` command: ``streamlit run app.py`` for this checkout or the installed package.

From a checkout, app.py is the repository's (``python -m streamlit run app.py`` keeps working as
well). From an installed package it is the copy under ``dashboard/app/`` (app.py, pages/, the
Streamlit config and the Home page's picture, laid out as in the repository; see pyproject.toml).
Streamlit reads ``.streamlit/config.toml`` only from the working directory, so the app's own
config is passed as flags; flags given to this command come after them and win.
"""

from __future__ import annotations

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


def config_flags(app: Path) -> list[str]:
    """The app's ``.streamlit/config.toml`` as ``--section.key=value`` flags (none when it is absent)."""
    config = app.parent / ".streamlit" / "config.toml"
    if not config.is_file():
        return []
    flags = []
    for section, options in tomllib.loads(config.read_text()).items():
        for key, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{section}.{key}={text}")
    return flags


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
