"""SimCLR Studio: `streamlit run app.py`.

The entry script runs on every rerun of every page: it sets the page up, draws the shared
sidebar (runs folder, dataset, run) whose choices carry across pages, and runs the chosen page.
"""

from __future__ import annotations

import streamlit as st

from pages import ui

st.set_page_config(page_title="SimCLR Studio", page_icon=":material/blur_on:", layout="wide")

ui.init_state()

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/augment.py", title="Augment", icon=":material/auto_fix_high:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/probe.py", title="Probe", icon=":material/insights:"),
]
page = st.navigation(PAGES)
ui.sidebar()
ui.start_warm_up()
st.session_state["_routed"] = True
page.run()
