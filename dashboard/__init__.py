"""The dashboard's helpers, beside ``pages/`` (which holds only the five screens).

Pages take widgets in and draw; what they draw comes from here, the only place with
``st.cache_*``:

- ``state``: every session-state key in one table; widget values <-> configs
- ``sharing``: ``?setup=`` share links and setup files
- ``errors``: ``attempt`` turns an engine error into a message in the page
- ``routing``: ``ensure_routed``, the first call of every page
- ``services``: cached engine calls (datasets, runs, the device, warm-up)
- ``jobs``: this server's background jobs (one training slot, evaluation tasks)
- ``widgets``: the shared sidebar and the Train page's live panel
- ``preview``: the Augment page's images, grid and step-through
- ``evaluation``: feature sets, maps, neighbours, the probe and the supervised baseline
- ``figures``: plotly figures from plain data (no Streamlit)

Modules here import torch only inside functions: Streamlit can run a page before app.py (a link
to a page on a freshly started server) and app.py's ``configure_process()`` must run before
torch loads (tests/test_dashboard_package.py checks it).
"""
