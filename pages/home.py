"""Home: what SimCLR does, what this machine offers, the runs so far, and a one-click demo."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import streamlit as st

from dashboard import jobs, services, state
from dashboard.routing import ensure_routed
from simclr_core.config import cpu_demo_config

ensure_routed()

ASSETS = Path(__file__).resolve().parents[1] / "assets"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def dataset_table(rows: list[dict[str, object]]) -> str:
    """The dataset rows as a markdown table (counts with separators, a dash where unknown, text escaped), then
    each source's description once, below it (a column of them would not fit beside the demo)."""

    def cell(value: object) -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))

    header = [key for key in rows[0] if key != "about"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in header) + " |" for row in rows]
    about: dict[str, str] = {}
    for row in rows:
        source = str(row.get("spec", "")).split(":")[0]
        if row.get("about") and source not in about:
            about[source] = str(row["about"])
    lines += [""] + [f"- **{cell(source)}**: {cell(text)}" for source, text in about.items()]
    return "\n".join(lines)


st.title("SimCLR Studio")
st.markdown(
    "**SimCLR** learns image features without labels. Each image is augmented twice at random "
    "(crop, flip, colour jitter, grayscale, blur); an encoder *f* turns each view into features *h*, "
    "a small head *g* projects them to *z*, and the InfoNCE loss pulls the two views of one image "
    "together while pushing the other images of the batch apart. After training, *h* is kept: "
    "a linear classifier on it needs only a few labels per class."
)
pipeline = ASSETS / "pipeline.svg"
if pipeline.is_file():
    st.image(str(pipeline), width="stretch")

left, right = st.columns([3, 2], gap="large")

with right:
    st.subheader("Try it", anchor=False)
    st.markdown(
        "A run of the **fast recipe** on the built-in **shapes** dataset (32×32 px, ResNet-10), its learning "
        "rate annealed over the minutes you have. Watch the loss fall and the kNN accuracy rise on the Train "
        "page, then see the classes form islands on Embeddings (5 minutes is enough on this dataset)."
    )
    minutes = st.number_input("I have ... minutes", min_value=1.0, max_value=120.0, step=1.0, key="keep.demo_minutes")
    if st.button("Start a demo run", type="primary", icon=":material/play_arrow:", key="home.demo"):
        job = jobs.start_training(replace(cpu_demo_config(), max_minutes=float(minutes)), name="demo")
        if job is not None:
            st.session_state["_show_run_tab"] = True
            st.switch_page("pages/train.py")

    st.subheader("This machine", anchor=False)
    dev = services.device_summary()
    if dev["kind"] == "cuda":
        extra = f" ({dev['count']} GPUs)" if dev.get("count", 1) > 1 else ""
        st.markdown(
            f":material/memory: **GPU** {dev['name']}{extra}, {dev['memory_gb']:.0f} GB"
            + (", bf16" if dev.get("bf16") else "")
        )
    else:
        st.markdown(
            f":material/memory: **CPU** {dev['name']}: {dev['threads']} torch threads "
            f"({dev['cpus']} cores). No GPU found: use small images (32 px) for quick runs."
        )
    st.caption(f"PyTorch {dev['torch']}")

with left:
    st.subheader("Runs", anchor=False)
    runs = services.run_rows()
    if runs:
        st.dataframe(
            runs,
            hide_index=True,
            width="stretch",
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")
            },
        )
    else:
        st.info(
            f"No runs yet in `{state.runs_root()}`. Start the demo, or set one up on the Train page.",
            icon=":material/info:",
        )

st.subheader("Datasets", anchor=False)
rows = services.dataset_rows()
if rows:
    # Markdown, not st.dataframe: the interactive grid's script (~0.5 MB) loads lazily, and on a first visit
    # (nothing cached, a busy machine) the table stood as an empty grey placeholder for seconds; markdown
    # is drawn with the heading above it.
    st.markdown(dataset_table(rows))
st.caption(
    "Built-in **shapes** works offline. `cifar10` / `stl10` download on first use; any folder of images "
    "(one subfolder per class), .zip or .tar.gz can be typed into the sidebar's *Dataset* box."
)
