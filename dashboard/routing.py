"""Every page runs inside app.py's navigation, whatever address the browser opened first."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_routed() -> None:
    """Call first in every page.

    Until app.py has called ``st.navigation`` once, Streamlit treats a project with a ``pages/``
    folder as a pages-folder app: on a freshly started server a link to /augment runs
    pages/augment.py alone, under an automatic list of every file in ``pages/``, without
    app.py's sidebar and state. Streamlit keeps that choice in one process-wide flag, which
    ``st.navigation`` clears; clearing it here and rerunning runs app.py, whose navigation then
    runs this page (the address is kept). Addresses of no page fall back to Home there.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
