"""A password in front of every page when the server listens beyond this machine.

Streamlit has no login of its own. On loopback only the machine's own users reach the server; on
any other address everyone who can route to it could read the runs and start trainings, so the
operator must set ``$SIMCLR_STUDIO_PASSWORD``. It is compared in constant time before any page renders.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

import streamlit as st

PASSWORD_ENV = "SIMCLR_STUDIO_PASSWORD"
_GRANTED = "access.granted"


def is_loopback(address: str | None) -> bool:
    """Whether a listen address is reachable from this machine only (Streamlit's unset address is all interfaces)."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def policy(address: str | None, password: str | None) -> str:
    """ "open" (loopback), "ask" (a password is set) or "refuse" (shared with no password)."""
    if is_loopback(address):
        return "open"
    return "ask" if password else "refuse"


def password_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _locked() -> None:
    """The one page of a session without access (never run: the prompt stops the script first)."""


def require_access() -> None:
    """Stop the script run here unless this session may see the pages."""
    expected = os.environ.get(PASSWORD_ENV) or None
    decision = policy(st.get_option("server.address"), expected)
    if decision == "open" or st.session_state.get(_GRANTED):
        return
    # Until a first st.navigation a fresh server lists every file of pages/ in the sidebar. A hidden navigation
    # of locked stand-ins, one per page address (a deep link is no "page not found"), shows only the prompt.
    names = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "pages").glob("*.py"))
    locked = [st.Page(_locked, title="SimCLR Studio", url_path=n, default=n == "home") for n in names]
    st.navigation(locked or [st.Page(_locked, title="SimCLR Studio", default=True)], position="hidden")
    if decision == "refuse":
        st.error(
            f"This server listens beyond this machine without a password. The operator must set {PASSWORD_ENV} "
            "and restart it, or serve on 127.0.0.1.",
            icon=":material/lock:",
        )
        st.stop()
    given = st.text_input("Password", type="password", key="access.password")
    if given and expected and password_matches(given, expected):
        st.session_state[_GRANTED] = True
        st.rerun()
    if given:
        st.error("Wrong password.", icon=":material/lock:")
    st.stop()
