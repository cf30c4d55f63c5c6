"""The Augment page's lab: the ablation grid (the SimCLR paper's Figure 5, live) and "Try these augmentations".

Both queue short fast-recipe runs in the runs folder's queue (``dashboard.queueing`` runs them)
and read their scores back from the run directories, so a closed tab or a restarted server
loses nothing, and an ablation started with ``python -m simclr_core ablate`` shows here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboard import figures, lab_figures, services
from dashboard.errors import attempt
from dashboard.queueing import ensure_worker
from dashboard.state import runs_root, select_run
from simclr_core import ablation, tries
from simclr_core.config import METHODS

if TYPE_CHECKING:
    from simclr_core.config import AugmentationConfig

ss = st.session_state


def _scoring() -> tuple[str | None, str | None]:
    """The kNN bank and scored split typed in the lab (None: the training source's own)."""
    return ss.get("keep.lab_bank") or None, ss.get("keep.lab_scored") or None


def _checked_data() -> str:
    from dashboard.paths import check_data

    data = str(ss.get("keep.lab_data") or "").strip()
    check_data(data, *_scoring())
    return data


def _method() -> str:
    return str(ss.get("keep.lab_method") or "simclr")


def _queue_ablation(ops: list[str], minutes: float) -> dict[str, Any]:
    bank, scored = _scoring()
    data = _checked_data()
    return ablation.queue_ablation(runs_root(), data, ops, minutes, bank=bank, scored=scored, method=_method())


def _queue_try(cfg: AugmentationConfig, minutes: float) -> object:
    bank, scored = _scoring()
    preset = str(ss.get("aug.preset") or "tutorial")
    data = _checked_data()
    return tries.queue_try(runs_root(), data, cfg, preset, minutes, bank=bank, scored=scored, method=_method())


def _open(run_path: str) -> None:
    """Open a cell's run on the Train page, from a rerun of the whole page (``ablation_lab``).

    Not from the heatmap's fragment: a page switch there drew the fragment's elements into the Train
    page, and the browser failed ("Bad delta path index") and went blank.
    """
    ss["_show_run_tab"] = Path(run_path).name  # read by ablation_lab on the rerun below, then by the Train page
    ss["keep.lab_click"] = int(ss.get("keep.lab_click") or 0) + 1  # a fresh chart next time: no stale selection
    st.rerun(scope="app")


def settings() -> None:
    """The lab's data, method and scoring fields, shared by the ablation and the tries."""
    ss.setdefault("keep.lab_data", ss.get("train.data") or "shapes:unlabeled")
    a, m, b, c = st.columns([3, 2, 3, 3])
    a.text_input("Training data (spec)", key="keep.lab_data", help="Unlabelled images the short runs learn from.")
    m.selectbox(
        "Method",
        list(METHODS),
        key="keep.lab_method",
        format_func=ablation.method_label,
        help="The objective of every short run. The crop + colour lesson is SimCLR's; the others show whether it "
        "holds for them. SupCon trains on labels, so its training data must be labelled.",
    )
    b.text_input(
        "kNN bank (optional)", key="keep.lab_bank", help="Labelled images that vote; empty: the source's train split."
    )
    c.text_input(
        "Scored on (optional)",
        key="keep.lab_scored",
        help="Labelled held-out images; empty: shapes:test for shapes, the split carved from a folder "
        "(`?split=test`). Never a benchmark's test set.",
    )


def ablation_lab() -> None:
    """Pick operations and a budget, queue the grid, watch the heatmap fill; a click opens a cell's run."""
    opened = ss.get("_show_run_tab")
    if isinstance(opened, str):  # a cell was clicked (_open): select its run for the Train page's sidebar, go there
        select_run(opened)
        # query_params: the sidebar's run is bound to the address's run_id, which a switch's default (clear) refuses
        st.switch_page("pages/train.py", query_params={})
    a, b, c = st.columns([3, 1, 1.4], vertical_alignment="bottom")
    ss.setdefault("keep.lab_ops", ["crop", "color", "blur"])
    ops = a.multiselect(
        "Operations (2 to 5)", list(ablation.OPS), key="keep.lab_ops", max_selections=5, format_func=ablation.LABELS.get
    )
    minutes = b.number_input("Minutes per run", min_value=0.05, max_value=60.0, step=0.5, key="keep.lab_minutes")
    n = len(ablation.cells(ops)) if len(ops) >= 2 else 0
    if c.button("Queue the ablation", type="primary", key="btn.lab_ablate", disabled=n == 0, icon=":material/grid_on:"):
        plan = attempt("queue the ablation", _queue_ablation, ops, float(minutes))
        if plan is not None:
            ss["keep.lab_ablation"] = plan["id"]
            ensure_worker()
    st.caption(
        f"{n} runs of {ablation.method_label(_method())}'s fast recipe (same seed): no augmentation, each "
        "operation alone and each pair, "
        f"about {n * float(minutes):g} min of training plus scoring, one at a time."
        if n
        else "Pick at least two operations."
    )
    plans = ablation.list_ablations(runs_root())
    if not plans:
        return
    ids = [p["id"] for p in plans]
    if ss.get("keep.lab_ablation") not in ids:
        ss["keep.lab_ablation"] = ids[0]
    by_id = {p["id"]: p for p in plans}
    st.selectbox(
        "Ablation",
        ids,
        key="keep.lab_ablation",
        format_func=lambda i: (
            f"{i} · {ablation.method_label(by_id[i].get('method', 'simclr'))} · {', '.join(by_id[i]['ops'])} · "
            f"{by_id[i]['minutes_per_run']:g} min · {by_id[i]['data']}"
        ),
    )
    heatmap(by_id[ss["keep.lab_ablation"]])


@st.fragment(run_every=2.0)
def heatmap(plan: dict[str, Any]) -> None:
    result = attempt("read the ablation", ablation.matrix, runs_root(), plan)
    if result is None:
        return
    event = st.plotly_chart(
        lab_figures.ablation_heatmap(result),
        width="stretch",
        on_select="rerun",
        selection_mode="points",
        key=f"chart.ablation.{ss.get('keep.lab_click') or 0}",
        config=figures.chart_config(f"ablation-{plan['id']}"),  # the toolbar: its camera saves a PNG
    )
    points = (event.selection.points if event is not None and event.selection else None) or []
    picked = [p.get("customdata") for p in points if p.get("customdata")]
    if picked:
        _open(str(picked[0]))
    done = sum(c["knn_acc"] is not None for c in result["cells"])
    st.caption(
        f"{done} of {len(result['cells'])} cells scored (kNN k=20 of {result['bank']} on {result['scored']}). "
        "Rows: the first operation, columns: the second, the diagonal: one alone. Click a cell to open its run."
    )


def try_augmentations(cfg: AugmentationConfig | None) -> None:
    """One button queues a short run of the current settings; the leaderboard of every try, their kNN curves."""
    a, b = st.columns([1, 2], vertical_alignment="bottom")
    minutes = a.number_input("Minutes per try", min_value=0.05, max_value=60.0, step=0.5, key="keep.try_minutes")
    if (
        b.button(
            "Try these augmentations", type="primary", key="btn.try", disabled=cfg is None, icon=":material/science:"
        )
        and cfg is not None
    ):
        entry = attempt("queue the try", _queue_try, cfg, float(minutes))
        if entry is not None:
            ensure_worker()
            st.toast("Queued a try of these augmentations.", icon=":material/science:")
    leaderboard()


@st.fragment(run_every=3.0)
def leaderboard() -> None:
    rows = attempt("read the tries", tries.leaderboard, runs_root()) or []
    if not rows:
        st.caption("No tries yet: the button above queues a short fast-recipe run of the settings on the left.")
        return
    table = [
        {
            "kNN": None if r["knn_acc"] is None else 100 * r["knn_acc"],
            "state": r["state"],
            "method": ablation.method_label(r["method"]),
            "changes from the preset": f"{r['preset']}: " + ("; ".join(r["diff"]) or "none"),
            "settings": r["words"],
            "minutes": r["minutes"],
            "run": r["run"] or "",
        }
        for r in rows
    ]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"kNN": st.column_config.NumberColumn("kNN %", format="%.1f")},
        key="table.tries",
    )
    curves = {}
    for i, r in enumerate(rows):
        run = services.open_run(r["run"]) if r["run"] else None
        if run is not None:
            curves[f"#{i + 1} {r['run']}"] = services.metric_rows(run)
    if curves:
        st.plotly_chart(
            lab_figures.knn_curves(curves), width="stretch", key="chart.tries", config=figures.chart_config("tries-knn")
        )
