"""Embeddings: a map of what the encoder learnt; select points to see their images and neighbours."""

from __future__ import annotations

import streamlit as st

from dashboard import evaluation, figures, pretrained, replay, services
from dashboard.errors import attempt
from dashboard.routing import ensure_routed

ensure_routed()

ss = st.session_state

st.title("Embeddings")
st.caption(
    "Each dot is one labelled image placed by its frozen features. Classes that form their own islands "
    "were separated without ever seeing a label. Drag a box or lasso to see the images; click one to see "
    "its nearest neighbours."
)

st.radio(
    "Encoder",
    ["Run", "Checkpoint file"],
    key="keep.emb_source",
    horizontal=True,
    help="A run from the sidebar, or a .ckpt file: this project's, or the tutorial's SimCLR.ckpt (uploaded or "
    "downloaded here).",
)
run = services.current_run() if ss["keep.emb_source"] == "Run" else None
if ss["keep.emb_source"] == "Run":
    if run is None:
        st.info(
            "No run selected: train one first (Home → demo, or the Train page), then pick it in the sidebar.",
            icon=":material/info:",
        )
        st.stop()
    train_spec, test_spec = evaluation.eval_specs(run)
else:
    choice = pretrained.checkpoint_input("upload.ckpt", "btn.emb_tutorial_ckpt")
    if choice is None:
        st.stop()
    # The tutorial's encoder is evaluated on STL-10's labelled splits, as the tutorial does; an upload names its own.
    train_spec, test_spec = pretrained.TUTORIAL_SPECS if choice.tutorial is not None else (None, None)

if not services.umap_ready():
    st.caption(
        ":material/hourglass_top: UMAP is compiling in the background (once per server start, about a "
        "minute); PCA works right away."
    )

c = st.columns([1, 1.4, 1, 1.2, 1])
c[0].selectbox("Checkpoint", ["last", "best"], key="keep.emb_which_ckpt", disabled=run is None)
splits = {"test": test_spec, "train": train_spec, "other": None}
c[1].selectbox(
    "Split",
    list(splits),
    key="keep.emb_split",
    bind="query-params",
    format_func=lambda k: "other labelled data ..." if k == "other" else f"{k} ({splits[k] or 'none'})",
)
# 2000 by the widget's own default, not by session state: Streamlit leaves a bound widget's default out of the address,
# so a link with 500 (the slider's first option, its default without value=) opened on 2000. Kept across pages by the
# binding itself (a keep.* key would be assigned on every run, which a widget with a value= must not be).
c[2].select_slider("Points", [500, 1000, 2000, 4000, 8000, 16000], value=2000, key="emb_points", bind="query-params")
c[3].selectbox("Method", list(evaluation.PROJECTIONS), key="keep.emb_method", bind="query-params")
c[4].radio(
    "Features",
    ["h", "z"],
    key="keep.emb_features",
    horizontal=True,
    help="h: the encoder's output, used downstream; z: after the projection head (used by the loss).",
)

if ss["keep.emb_split"] == "other":
    st.text_input(
        "Labelled data (spec)",
        key="keep.emb_other",
        bind="query-params",
        placeholder="e.g. shapes:test?n=50, cifar10:test, or a folder with one subfolder per class",
    )
# Read after the text box exists: on a link's first run its bound value is only in the session once it is drawn.
spec = (ss.get("keep.emb_other") or None) if ss["keep.emb_split"] == "other" else splits.get(ss["keep.emb_split"])
if not spec:
    if ss["keep.emb_split"] != "other":
        st.error(
            "This encoder's training data has no labelled split to colour the map: choose "
            "*other labelled data* and name one (e.g. shapes:test)."
        )
    st.stop()
if run is not None:
    ckpt = evaluation.run_checkpoint(run, ss["keep.emb_which_ckpt"])
    if ckpt is None:
        st.info(
            f"Run {run.id} has no checkpoint yet: the first one is written after its first epoch.",
            icon=":material/hourglass_top:",
        )
        st.stop()
else:
    ckpt = choice.checkpoint()
    if ckpt is None:
        st.stop()

feats = evaluation.feature_set(ckpt, spec, ss["keep.emb_features"])
if feats is None:
    st.stop()
table = evaluation.embedding(ckpt, spec, ss["keep.emb_features"], ss["keep.emb_method"], int(ss["emb_points"]))
if table is None:
    st.stop()

plot_col, side = st.columns([3, 1.2], gap="medium")
with side:
    knn = evaluation.feature_knn(ckpt, spec, ss["keep.emb_features"])
    st.metric(
        "kNN accuracy (k=20)",
        f"{knn:.1%}" if knn is not None else "—",
        help="Each image classified by a vote of its 20 most similar images (cosine), leave-one-out.",
    )
    st.caption(
        f"{len(table.indices):,} of {feats.feats.shape[0]:,} images · {feats.feats.shape[1]}-d {feats.which} · "
        f"{table.method.upper()} {table.dims}-D" + (" · cached" if table.cached else "")
    )
    st.download_button(
        "Download the map (CSV)",
        table.to_csv(),
        file_name=f"{run.id if run is not None else 'checkpoint'}-{table.method}-{table.dims}d.csv",
        mime="text/csv",
        icon=":material/download:",
        key="btn.map_csv",
        help="index (row in the dataset), label, class and the coordinates of every point on the map.",
    )
with plot_col:
    event = st.plotly_chart(
        figures.embedding_figure(table),
        width="stretch",
        key="chart.embedding",
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )

selected = evaluation.selected_indices(event)
with side:
    if selected:
        st.markdown(f"**{len(selected)} selected**")
    else:
        st.caption("Select points on the map to see their images here.")

if selected:
    size = int(feats.meta.get("image_size") or (evaluation.run_image_size(run) if run is not None else 96))
    images = attempt("load the images", services.dataset, spec, size)
    st.subheader("Selected images", anchor=False)
    evaluation.thumbnail_grid(images, selected[:48], feats.classes, feats.labels)
    if len(selected) > 48:
        st.caption(f"Showing 48 of {len(selected)}.")
    query = (
        selected[0]
        if len(selected) == 1
        else st.selectbox(
            "Nearest neighbours of",
            selected[:48],
            format_func=lambda i: f"image {i} ({evaluation.class_of(feats, i)})",
            key="emb_query",
        )
    )
    st.subheader(f"Nearest neighbours of image {query}", anchor=False)
    hits = attempt("find neighbours", evaluation.neighbours, feats, int(query), 12)
    if hits is not None:
        evaluation.thumbnail_grid(images, hits[0], feats.classes, feats.labels, similarities=hits[1])

if run is not None:
    replay.section(run, spec, int(ss["emb_points"]))
