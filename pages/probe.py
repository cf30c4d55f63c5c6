"""Probe: how good are the learnt features with only a few labels? The seed's figure, with error bars."""

from __future__ import annotations

import streamlit as st

from dashboard import pretrained, probing, services
from dashboard.routing import ensure_routed

ensure_routed()

ss = st.session_state

st.title("Linear probe")
st.caption(
    "A logistic regression on frozen features, trained on k labelled images per class, tested on the test "
    "split. Pretraining pays off where the SimCLR line sits above random init with few labels."
)

st.radio(
    "Encoder",
    ["Runs", "Checkpoint file"],
    key="keep.probe_source",
    horizontal=True,
    help="SimCLR runs of this server, or a .ckpt file: this project's, or the tutorial's SimCLR.ckpt (uploaded or "
    "downloaded here).",
)
from_file = ss["keep.probe_source"] == "Checkpoint file"
choice = None
if from_file:
    choice = pretrained.checkpoint_input("upload.probe_ckpt", "btn.probe_tutorial_ckpt")
    if choice is None:
        st.stop()
    chosen: list[str] = []
else:
    runs = probing.probe_candidates()
    if not runs:
        st.info(
            "No SimCLR run with a checkpoint yet: train one first (Home → demo, or the Train page), or probe a "
            "checkpoint file (*Encoder* above), such as the tutorial's pretrained SimCLR.",
            icon=":material/info:",
        )
        st.stop()
    current = ss.get("run_id")
    if "keep.probe_runs" not in ss:
        ss["keep.probe_runs"] = [current] if current in runs else runs[:1]
    # A run that vanished (deleted, or between two writes of its files) leaves the others chosen; never none.
    ss["keep.probe_runs"] = [r for r in ss["keep.probe_runs"] if r in runs] or (
        [current] if current in runs else runs[:1]
    )
    st.multiselect("Runs", runs, key="keep.probe_runs", format_func=services.run_label)
    chosen = list(ss["keep.probe_runs"])
c = st.columns([2.4, 1, 1, 1])
c[0].multiselect(
    "Images per class",
    probing.PROBE_SIZES,
    key="keep.probe_sizes",
    bind="query-params",  # the address carries them: a share link shows the same sizes
    help="Capped by what the training split holds.",
)
c[1].number_input(
    "Repeats",
    min_value=1,
    max_value=10,
    key="keep.probe_repeats",
    help="Random class-balanced subsets per size: the error bars.",
)
c[2].radio("Features", ["h", "z"], key="keep.probe_features", horizontal=True)
c[3].radio("Checkpoint", ["last", "best"], key="keep.probe_ckpt", horizontal=True, disabled=from_file)
# Defaults for a checkpoint file: the tutorial's encoder is probed on STL-10 as the tutorial does; an upload
# names its own labelled data.
defaults = pretrained.TUTORIAL_SPECS if choice is not None and choice.tutorial is not None else (None, None)
with st.expander("Labelled data", expanded=from_file and defaults[0] is None):
    if from_file:
        st.caption(
            f"Empty: {defaults[0]} / {defaults[1]}, the tutorial's labelled splits."
            if defaults[0]
            else "Name the labelled splits to probe an uploaded checkpoint on."
        )
    else:
        st.caption("Empty: the labelled train/test splits of the dataset each run was trained on.")
    d = st.columns(2)
    d[0].text_input("Training split (spec)", key="keep.probe_train", placeholder="e.g. shapes:train")
    d[1].text_input("Test split (spec)", key="keep.probe_test", placeholder="e.g. shapes:test")
train_spec = ss["keep.probe_train"].strip() or None
test_spec = ss["keep.probe_test"].strip() or None

start = st.button(
    "Run probe",
    type="primary",
    icon=":material/play_arrow:",
    disabled=not (chosen or from_file) or not ss["keep.probe_sizes"],
    key="btn.probe",
)
ckpt = None
if from_file:
    ckpt = choice.checkpoint()
    if ckpt is None:
        st.stop()
if start and ckpt is not None:
    train_spec, test_spec = train_spec or defaults[0], test_spec or defaults[1]
    if not train_spec or not test_spec:
        st.error("Name both labelled splits under *Labelled data* (e.g. shapes:train and shapes:test).")
    else:
        probing.start_checkpoint_probe(
            ckpt,
            choice.label,
            sorted(ss["keep.probe_sizes"]),
            int(ss["keep.probe_repeats"]),
            ss["keep.probe_features"],
            train_spec,
            test_spec,
        )
elif start:
    probing.start_probe(
        chosen,
        sorted(ss["keep.probe_sizes"]),
        int(ss["keep.probe_repeats"]),
        ss["keep.probe_features"],
        ss["keep.probe_ckpt"],
        train_spec,
        test_spec,
    )

probing.probe_progress()
probing.probe_results(chosen, {choice.label: probing.checkpoint_report(ckpt)} if ckpt is not None else None)
if from_file:
    st.stop()  # the supervised baseline below trains beside a run's encoder and data

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
