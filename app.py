"""SimCLR Studio: `streamlit run app.py`.

The entry script runs on every rerun of every page: it sets the page up, draws the shared
sidebar (runs folder, dataset, run) whose choices carry across pages, and runs the chosen page.
Pages live in ``pages/``; what they share lives in ``dashboard/``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import access, queueing, services, sharing, state, widgets
from simclr_core.process import configure_process

configure_process(interactive=True)  # once per server, before torch loads (the dashboard package imports it lazily)

st.set_page_config(page_title="SimCLR Studio", page_icon=":material/blur_on:", layout="wide")
access.require_access()  # before any page renders: a password when the server listens beyond loopback

state.init_state()
sharing.apply_shared_link()

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/augment.py", title="Augment", icon=":material/auto_fix_high:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/probe.py", title="Probe", icon=":material/insights:"),
]
page = st.navigation(PAGES)
widgets.sidebar()
services.warm_up_job()
queueing.ensure_worker()  # runs the runs folder's queue while the server is up
page.run()
