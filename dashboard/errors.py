"""Engine errors become messages in the page: a user's mistake never shows as a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

log = logging.getLogger("simclr_studio")
T = TypeVar("T")
P = ParamSpec("P")


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is written for the user (ValueError covers Dataset/Config/CheckpointError)."""
    return (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, OSError)


def describe_error(err: BaseException) -> str:
    from simclr_core.safe_load import clean_message

    if isinstance(err, user_errors()):
        return clean_message(str(err)) or type(err).__name__
    return clean_message(f"{type(err).__name__}: {err}")


def attempt(what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """Call an engine function; on failure show what went wrong in the page and return None."""
    try:
        return fn(*args, **kwargs)
    except user_errors() as err:
        st.error(f"Could not {what}: {describe_error(err)}", icon=":material/error:")
    except Exception as err:  # anything else is a bug: say so briefly, log the traceback for developers
        log.exception("while trying to %s", what)
        st.error(
            f"Could not {what}: unexpected {type(err).__name__}: {err}. Details are in the terminal log.",
            icon=":material/bug_report:",
        )
    return None
