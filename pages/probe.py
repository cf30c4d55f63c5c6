"""Probe: how good are the learnt features with only a few labels? The seed's figure, with error bars."""

from __future__ import annotations

import streamlit as st

from dashboard import probing, services
from dashboard.routing import ensure_routed

ensure_routed()

ss = st.session_state

st.title("Linear probe")
st.caption(
    "A logistic regression on frozen features, trained on k labelled images per class, tested on the test "
    "split. Pretraining pays off where the SimCLR line sits above random init with few labels."
)

runs = probing.probe_candidates()
if not runs:
    st.info(
        "No SimCLR run with a checkpoint yet: train one first (Home → demo, or the Train page).", icon=":material/info:"
    )
    st.stop()
current = ss.get("run_id")
if "keep.probe_runs" not in ss:
    ss["keep.probe_runs"] = [current] if current in runs else runs[:1]
# A run that vanished (deleted, or between two writes of its files) leaves the others chosen; never none.
ss["keep.probe_runs"] = [r for r in ss["keep.probe_runs"] if r in runs] or ([current] if current in runs else runs[:1])

st.multiselect("Runs", runs, key="keep.probe_runs", format_func=services.run_label)
c = st.columns([2.4, 1, 1, 1])
c[0].multiselect(
    "Images per class", probing.PROBE_SIZES, key="keep.probe_sizes", help="Capped by what the training split holds."
)
c[1].number_input(
    "Repeats",
    min_value=1,
    max_value=10,
    key="keep.probe_repeats",
    help="Random class-balanced subsets per size: the error bars.",
)
c[2].radio("Features", ["h", "z"], key="keep.probe_features", horizontal=True)
c[3].radio("Checkpoint", ["last", "best"], key="keep.probe_ckpt", horizontal=True)
with st.expander("Labelled data"):
    st.caption("Empty: the labelled train/test splits of the dataset each run was trained on.")
    d = st.columns(2)
    d[0].text_input("Training split (spec)", key="keep.probe_train", placeholder="e.g. shapes:train")
    d[1].text_input("Test split (spec)", key="keep.probe_test", placeholder="e.g. shapes:test")

chosen = list(ss["keep.probe_runs"])
start = st.button(
    "Run probe",
    type="primary",
    icon=":material/play_arrow:",
    disabled=not chosen or not ss["keep.probe_sizes"],
    key="btn.probe",
)
if start:
    probing.start_probe(
        chosen,
        sorted(ss["keep.probe_sizes"]),
        int(ss["keep.probe_repeats"]),
        ss["keep.probe_features"],
        ss["keep.probe_ckpt"],
        ss["keep.probe_train"].strip() or None,
        ss["keep.probe_test"].strip() or None,
    )

probing.probe_progress()
probing.probe_results(chosen)

st.divider()
st.subheader("Supervised baseline", anchor=False)
st.caption(
    "The seed's ResNet trained from scratch on the labelled images only (the largest size chosen above), "
    "with the baseline augmentations, within a time budget. It runs in the background like training."
)
s = st.columns([1, 1, 2], vertical_alignment="bottom")
s[0].number_input("Time budget (minutes)", min_value=0.5, max_value=600.0, step=0.5, key="keep.sup_minutes")
if s[1].button("Train baseline", icon=":material/school:", disabled=not chosen, key="btn.supervised"):
    probing.start_supervised(
        chosen[0],
        max(ss["keep.probe_sizes"] or [500]),
        float(ss["keep.sup_minutes"]),
        ss["keep.probe_train"].strip() or None,
        ss["keep.probe_test"].strip() or None,
    )
probing.supervised_progress()
