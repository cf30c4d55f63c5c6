"""CLI: ``python -m simclr_core {data,preview,train,queue,ablate,probe,embed,bench,cache} ...``.

Each subcommand lives in ``simclr_core/commands/<name>.py`` with ``add_parser(subparsers)``
that registers its flags and ``set_defaults(func=run)``. Errors a user can cause are
printed as one line and exit with status 2, never as a traceback. SIGINT/SIGTERM exit with 128 + the
signal and one line (``train`` stops its run gracefully first; see ``signals.py``).
"""

# ruff: noqa: E402  (the signal guard below must run before the other imports)
from __future__ import annotations

import os
import signal

_STARTUP_HANDLERS: dict[int, object] = {}  # the interpreter's own, while the import-time guard stands


def _during_imports(signum: int, frame: object) -> None:
    """A signal while this module's imports run (seconds on a loaded machine): one line, nothing written.

    Without it Python's SIGINT handler printed a KeyboardInterrupt traceback from inside an import.
    """
    os.write(2, f"stopped by {signal.Signals(signum).name} before anything was written\n".encode())
    os._exit(128 + signum)


if __name__ == "__main__":  # ``python -m simclr_core`` only: importing the module changes no handler
    _STARTUP_HANDLERS.update({s: signal.signal(s, _during_imports) for s in (signal.SIGINT, signal.SIGTERM)})

import argparse
import contextlib
import importlib
import sys
import threading

from simclr_core import __version__
from simclr_core.config import ConfigError
from simclr_core.process import configure_process

COMMANDS = ("data", "preview", "train", "queue", "ablate", "probe", "embed", "bench", "cache")


def get_args_parser(prog: str = "python -m simclr_core") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"simclr-studio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"simclr_core.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"simclr_core.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user (no traceback)."""
    errors: list[type[BaseException]] = [ConfigError, FileNotFoundError]
    for module, name in (("simclr_core.data", "DatasetError"), ("simclr_core.model", "CheckpointError")):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


class Interrupted(BaseException):  # like KeyboardInterrupt: no "except Exception" swallows it
    """SIGINT/SIGTERM before a command took the signals over (``train`` turns them into a graceful stop)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None, prog: str = "python -m simclr_core") -> int:
    main_thread = threading.current_thread() is threading.main_thread()  # only it may take signals
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM) if main_thread}
    previous.update(_STARTUP_HANDLERS)  # given back at the end: the interpreter's, not the import-time guard
    try:
        configure_process()  # before the subcommands import torch
        args = get_args_parser(prog).parse_args(argv)
        return int(args.func(args) or 0)
    except Interrupted as err:  # first: user_errors() imports torch, which a signal may have left half-imported
        print(f"stopped by {err} before anything was written", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except user_errors() as err:
        from simclr_core.safe_load import clean_message

        print(f"error: {clean_message(str(err))}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cli() -> None:
    """The ``simclr-studio`` console command (the installed package's ``python -m simclr_core``)."""
    sys.exit(main(prog="simclr-studio"))


if __name__ == "__main__":
    sys.exit(main())
