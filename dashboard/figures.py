"""Plotly figures of the dashboard: plain data in (metric rows, projections, probe reports), a figure out.

No Streamlit here, so every chart can be built and checked without a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simclr_core.metrics import (
    KNN_ACC,
    KNN_ACC_RANDOM_INIT,
    LR,
    METHOD_METRICS,
    RANKME,
    TRAIN_ACC_MEAN_POS,
    TRAIN_ACC_TOP1,
    TRAIN_ACC_TOP5,
    TRAIN_LOSS,
    VAL_ACC_MEAN_POS,
    VAL_ACC_TOP1,
    VAL_ACC_TOP5,
    VAL_LOSS,
    VIEWS_PER_S,
    is_per_epoch,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from simclr_core.projection import EmbeddingTable
    from simclr_core.replay import Frame, Replay

MetricRow = dict[str, Any]  # one line of metrics.jsonl (step, epoch, time, metric values)
Report = dict[str, Any]  # a probe.json object (see simclr_core.commands.probe)

# The live panel: (panel title, [(metric, legend label)], drawn as a percentage)
CURVES = [
    ("Loss (the method's: InfoNCE for SimCLR)", [(TRAIN_LOSS, "train"), (VAL_LOSS, "val")], False),
    (
        "Top-1 / top-5 (positive pair found)",
        [
            (TRAIN_ACC_TOP1, "train top-1"),
            (TRAIN_ACC_TOP5, "train top-5"),
            (VAL_ACC_TOP1, "val top-1"),
            (VAL_ACC_TOP5, "val top-5"),
        ],
        True,
    ),
    ("Mean rank of the positive", [(TRAIN_ACC_MEAN_POS, "train"), (VAL_ACC_MEAN_POS, "val")], False),
    ("kNN accuracy (frozen features)", [(KNN_ACC, "kNN")], True),
    ("Learning rate", [(LR, "lr")], False),
    ("Views per second", [(VIEWS_PER_S, "views/s")], False),
    # Label-free collapse signal for every method: 1 means every image maps to one line.
    ("Effective rank of the features (RankMe)", [(RANKME, "RankMe")], False),
    (
        "Loss terms (BYOL, Barlow Twins, VICReg; log scale)",
        [(m, m.removeprefix("train_")) for m in METHOD_METRICS],
        False,
    ),
]
LOG_PANELS = {len(CURVES) - 1}  # the terms differ by orders of magnitude
# What the Train page's comparison offers, most telling first.
COMPARE_METRICS = [
    TRAIN_LOSS,
    KNN_ACC,
    VAL_ACC_TOP1,
    VAL_ACC_TOP5,
    VAL_LOSS,
    TRAIN_ACC_TOP1,
    TRAIN_ACC_TOP5,
    TRAIN_ACC_MEAN_POS,
    VAL_ACC_MEAN_POS,
    LR,
    VIEWS_PER_S,
]
PALETTE = ["#4f46e5", "#f97316", "#10b981", "#e11d48", "#0ea5e9", "#a855f7", "#84cc16", "#f59e0b", "#64748b", "#ec4899"]
# Classes on a map: Okabe & Ito's colour-blind-safe colours (grey and two of Tol's instead of black, which the
# dark theme would hide), each class also with its own marker symbol, so classes stay apart for every kind of
# colour vision and in grey print.
CLASS_PALETTE = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#999999",  # grey
    "#882255",  # wine (Tol)
    "#44AA99",  # teal (Tol)
]
CLASS_SYMBOLS = [
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "x",
    "cross",
    "triangle-down",
    "star",
    "pentagon",
    "hexagon",
]
CLASS_SYMBOLS_3D = ["circle", "square", "diamond", "cross", "x", "circle-open", "square-open", "diamond-open"]


def chart_config(name: str) -> dict[str, Any]:
    """Plotly's toolbar always shown (its camera saves a PNG at twice the size, named after the chart)."""
    return {"displayModeBar": True, "displaylogo": False, "toImageButtonOptions": {"filename": name, "scale": 2}}


def series(rows: list[MetricRow], metric: str, x: str = "step") -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(metric)
        if isinstance(value, int | float) and row.get(x) is not None:
            xs.append(row[x])
            ys.append(value)
    return xs, ys


def curves_figure(rows: list[MetricRow]) -> go.Figure:
    """2 x 3 panels of the live metrics against the step."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n_rows = -(-len(CURVES) // 3)
    specs = [[{} if 3 * r + c < len(CURVES) else None for c in range(3)] for r in range(n_rows)]
    fig = make_subplots(
        rows=n_rows,
        cols=3,
        specs=specs,
        subplot_titles=[c[0] for c in CURVES],
        horizontal_spacing=0.07,
        vertical_spacing=0.32 / n_rows,
    )
    drawn: set[int] = set()
    for i, (_, metrics, percent) in enumerate(CURVES):
        r, c = divmod(i, 3)
        for j, (metric, label) in enumerate(metrics):
            xs, ys = series(rows, metric)
            if not xs:
                continue
            drawn.add(i)
            per_epoch = is_per_epoch(metric)
            fig.add_trace(
                go.Scattergl(
                    x=xs,
                    y=ys,
                    name=label,
                    legendgroup=f"{i}",
                    showlegend=i in (1, len(CURVES) - 1),
                    mode="lines+markers" if per_epoch else "lines",
                    line={"color": PALETTE[j], "width": 2},
                    hovertemplate=f"{label}: %{{y:.4g}}<br>step %{{x}}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
        if any(metric == KNN_ACC for metric, _ in metrics):
            level = next((row[KNN_ACC_RANDOM_INIT] for row in rows if row.get(KNN_ACC_RANDOM_INIT) is not None), None)
            if isinstance(level, int | float):
                # The random encoder's level: is it learning? at a glance.
                fig.add_hline(
                    y=level,
                    line={"dash": "dash", "color": "#64748b", "width": 1.5},
                    annotation_text=f"random init {level:.0%}",
                    annotation_position="bottom right",
                    annotation_font_color="#64748b",
                    row=r + 1,
                    col=c + 1,
                )
                drawn.add(i)
        if percent:
            fig.update_yaxes(tickformat=".0%", range=[0, 1.02], row=r + 1, col=c + 1)
        if i in LOG_PANELS:
            fig.update_yaxes(type="log", row=r + 1, col=c + 1)
        if i not in drawn:
            axis = "" if i == 0 else str(i + 1)
            xd, yd = fig.layout[f"xaxis{axis}"].domain, fig.layout[f"yaxis{axis}"].domain
            fig.add_annotation(
                text={3: "after the first epoch", 7: "BYOL, Barlow Twins, VICReg"}.get(i, "waiting for data"),
                showarrow=False,
                font={"color": "#94a3b8"},
                xref="paper",
                yref="paper",
                x=sum(xd) / 2,
                y=sum(yd) / 2,
            )
            fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
            fig.update_yaxes(visible=False, row=r + 1, col=c + 1)
    fig.update_layout(
        height=270 * n_rows,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        uirevision="curves",
        legend={"orientation": "h", "y": -0.12, "x": 0.5, "xanchor": "center"},
    )
    fig.update_xaxes(title_text="step", title_standoff=2, row=n_rows)
    return fig


def compare_figure(
    runs: dict[str, list[MetricRow]],
    metric: str,
    x: str,
    overlays: dict[str, list[MetricRow]] | None = None,
    log_x: bool = False,
) -> go.Figure:
    """One metric of several runs (their metric rows by run id) against the step, epoch or minutes.

    ``overlays``: rows read from TensorBoard event files (the tutorial's run), drawn dotted after the runs;
    one without the metric is named in a note instead of drawing nothing silently.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    missing = []
    drawn = [(label, rows, False) for label, rows in runs.items()]
    drawn += [(label, rows, True) for label, rows in (overlays or {}).items()]
    for i, (label, rows, overlay) in enumerate(drawn):
        if x == "time" and rows:
            t0 = min(float(r["time"]) for r in rows if isinstance(r.get("time"), int | float))
            rows = [{**r, "time": (float(r["time"]) - t0) / 60} for r in rows if isinstance(r.get("time"), int | float)]
        xs, ys = series(rows, metric, x)
        if overlay and not xs:
            missing.append(label)
            continue
        if log_x:
            xs, ys = [a for a in xs if a > 0], [b for a, b in zip(xs, ys, strict=True) if a > 0]
        fig.add_trace(
            go.Scattergl(
                x=xs,
                y=ys,
                name=label,
                mode="lines+markers" if len(xs) < 60 else "lines",
                line={"color": PALETTE[i % len(PALETTE)], **({"dash": "dot", "width": 2.5} if overlay else {})},
            )
        )
    if missing:
        fig.add_annotation(
            text=f"no {metric} in {', '.join(missing)}",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0,
            y=1.06,
            xanchor="left",
            font={"color": "#64748b"},
        )
    fig.update_layout(
        height=460,
        xaxis={"title": "minutes" if x == "time" else x, "type": "log" if log_x else "linear"},
        yaxis_title=metric,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def class_marker(c: int, n_classes: int, n_points: int, dims: int = 2) -> dict[str, Any]:
    """Marker of class ``c`` on a map: its colour-blind-safe colour and its own symbol, sized for the point count.
    Past ten classes Plotly's own colour cycle takes over (the symbols still repeat in step)."""
    colour = CLASS_PALETTE[c] if n_classes <= len(CLASS_PALETTE) else None
    symbols = CLASS_SYMBOLS if dims == 2 else CLASS_SYMBOLS_3D
    n = n_points
    size = (7 if n <= 1000 else 5 if n <= 5000 else 3) if dims == 2 else (4 if n <= 2000 else 2.5)
    return {
        "size": size,
        "opacity": 0.85,
        "symbol": symbols[c % len(symbols)],
        "line": {"width": 0},
        **({"color": colour} if colour else {}),
    }


def embedding_figure(table: EmbeddingTable) -> go.Figure:
    """WebGL scatter (2-D) or 3-D scatter, one trace per class; customdata carries the dataset index."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for c, name in enumerate(table.classes):
        mask = table.labels == c
        if not mask.any():
            continue
        idx = table.indices[mask]
        xyz = table.coords[mask]
        common = {"name": name, "customdata": idx, "hovertemplate": f"{name}<br>image %{{customdata}}<extra></extra>"}
        marker = class_marker(c, len(table.classes), len(table.indices), table.dims)
        if table.dims == 3:
            fig.add_trace(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", marker=marker, **common))
        else:
            fig.add_trace(go.Scattergl(x=xyz[:, 0], y=xyz[:, 1], mode="markers", marker=marker, **common))
    fig.update_layout(
        height=560,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        legend={"itemsizing": "constant", "y": 0.9},
        dragmode="lasso" if table.dims == 2 else None,
        uirevision=f"{table.method}{table.dims}",
    )
    if table.dims == 2:
        fig.update_xaxes(showticklabels=False, title=None)
        fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x")
    return fig


def probe_figure(reports: dict[str, Report], supervised: list[dict[str, Any]]) -> go.Figure:
    """Probe accuracy against labelled images per class: each run's probe.json, random init, supervised points."""
    import plotly.graph_objects as go

    fig = go.Figure()
    random_drawn = False
    for i, (run_id, rep) in enumerate(reports.items()):
        table = rep["table"]
        xs = [r["size"] for r in table]
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[r.get("probe_test_acc_mean") for r in table],
                name=f"{run_id}{_method_suffix(rep)} ({rep.get('features', 'h')})",
                error_y={"type": "data", "array": [r.get("probe_test_acc_std", 0) for r in table], "visible": True},
                mode="lines+markers",
                line={"color": colour, "width": 2.5},
                marker={"size": 8},
            )
        )
        if not random_drawn and any("random_probe_test_acc_mean" in r for r in table):
            random_drawn = True
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[r.get("random_probe_test_acc_mean") for r in table],
                    name="random init",
                    error_y={"type": "data", "array": [r.get("random_probe_test_acc_std", 0) for r in table]},
                    mode="lines+markers",
                    line={"color": "#64748b", "dash": "dash"},
                    marker={"size": 7},
                )
            )
    if supervised:
        fig.add_trace(
            go.Scatter(
                x=[p["size"] for p in supervised],
                y=[p["test_acc"] for p in supervised],
                name="supervised from scratch",
                mode="markers",
                marker={"symbol": "star", "size": 16, "color": "#e11d48"},
                hovertext=[f"{p['run']}: {p.get('epochs', '?')} epochs" for p in supervised],
            )
        )
    ys = [y for trace in fig.data for y in (trace.y or ()) if isinstance(y, int | float)]
    fine = bool(ys) and max(ys) - min(ys) < 0.1
    sizes = sorted({x for trace in fig.data for x in (trace.x or ())})
    fig.update_layout(
        height=460,
        xaxis={"type": "log", "title": "labelled images per class", "tickvals": sizes},
        yaxis={"title": "test accuracy", "tickformat": ".1%" if fine else ".0%"},
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        legend={"orientation": "h", "y": -0.22},
    )
    return fig


def _method_suffix(rep: Report) -> str:
    """' · byol' for a probe of a run trained with a method (probe.json's source), '' when unknown."""
    method = (rep.get("source") or {}).get("method")
    return f" · {method}" if method else ""


def probe_table(reports: dict[str, Report]) -> list[dict[str, object]]:
    rows = []
    for run_id, rep in reports.items():
        for r in rep["table"]:
            rows.append(
                {
                    "run": run_id,
                    "method": (rep.get("source") or {}).get("method"),
                    "features": rep.get("features"),
                    "images per class": r["size"],
                    "probe test acc": r.get("probe_test_acc_mean"),
                    "± std": r.get("probe_test_acc_std"),
                    "probe train acc": r.get("probe_train_acc_mean"),
                    "kNN acc": r.get("knn_acc_mean"),
                    "random-init probe": r.get("random_probe_test_acc_mean"),
                    "repeats": rep.get("repeats"),
                }
            )
    return rows


def replay_figure(replay: Replay, frame_ms: int = 700) -> go.Figure:
    """The map at each snapshot as Plotly animation frames, with Play/Pause and a slider over the snapshots.

    One trace per class in every frame (empty where a class has no point), so frames tween point by point;
    the axes are fixed over all frames so that islands forming are not hidden by the zoom following them.
    """
    import numpy as np
    import plotly.graph_objects as go

    frames = replay.frames
    classes = replay.classes or ["images"]
    every = np.concatenate([f.coords for f in frames])
    lo, hi = every.min(axis=0), every.max(axis=0)
    pad = 0.05 * (hi - lo).max()

    def traces(coords: np.ndarray) -> list[go.Scatter]:
        out = []
        for c, name in enumerate(classes):
            mask = replay.labels == c
            idx = replay.indices[mask]
            out.append(
                go.Scatter(
                    # plain lists: plotly.py sends numpy arrays as base64 typed arrays, which a frame's
                    # tween in the browser does not read (Play then moved nothing)
                    x=coords[mask, 0].tolist(),
                    y=coords[mask, 1].tolist(),
                    mode="markers",
                    name=name,
                    customdata=idx.tolist(),
                    hovertemplate=f"{name}<br>image %{{customdata}}<extra></extra>",
                    marker=class_marker(c, len(classes), len(replay.indices)),  # as on the map above it
                )
            )
        return out

    def label(f: Frame) -> str:
        return f"step {f.step} ({f.progress:.0%})"

    fig = go.Figure(
        data=traces(frames[0].coords),
        frames=[go.Frame(data=traces(f.coords), name=str(i)) for i, f in enumerate(frames)],
    )
    still = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    fig.update_layout(
        height=560,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        legend={"itemsizing": "constant", "y": 0.9},
        xaxis={"range": [lo[0] - pad, hi[0] + pad], "showticklabels": False, "zeroline": False},
        yaxis={"range": [lo[1] - pad, hi[1] + pad], "showticklabels": False, "zeroline": False, "scaleanchor": "x"},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0,
                "y": 0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 40, "r": 10},
                "showactive": False,
                "buttons": [
                    {
                        "label": "▶ Play",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": frame_ms, "redraw": False},
                                "fromcurrent": True,
                                "transition": {"duration": int(frame_ms * 0.8), "easing": "cubic-in-out"},
                            },
                        ],
                    },
                    {"label": "❚❚ Pause", "method": "animate", "args": [[None], still]},
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.16,
                "len": 0.84,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 30},
                "currentvalue": {"prefix": "snapshot: "},
                "steps": [
                    {"label": label(f), "method": "animate", "args": [[str(i)], still]} for i, f in enumerate(frames)
                ],
            }
        ],
    )
    return fig
