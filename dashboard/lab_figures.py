"""The augmentation lab's figures: the ablation heatmap (the SimCLR paper's Figure 5) and the tries' kNN curves.

Plain data in (``ablation.matrix`` objects, metric rows), a plotly figure out; no Streamlit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simclr_core.metrics import KNN_ACC

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from dashboard.figures import MetricRow

PENDING = {"queued": "queued", "running": "running…", "failed": "failed", "cancelled": "cancelled"}


def _cell_text(cells: list[dict[str, Any]], pair: tuple[str, ...]) -> tuple[str, str | None]:
    """What a heatmap cell says (its kNN %, or how far it is) and its run directory."""
    for c in cells:
        if tuple(sorted(c["ops"])) == tuple(sorted(pair)):
            if c["knn_acc"] is not None:
                return f"{100 * c['knn_acc']:.1f}", c["run"]
            return PENDING.get(c["state"], c["state"]), c["run"]
    return "", None


def ablation_heatmap(result: dict[str, Any]) -> go.Figure:
    """kNN accuracy (%) of each pair of operations: rows the first, columns the second, the diagonal alone.

    Each cell carries its run directory as ``customdata`` on an overlaid marker, so a click can open it.
    """
    import plotly.graph_objects as go

    ops, labels = result["ops"], result["labels"]
    z = [[None if v is None else 100 * v for v in row] for row in result["matrix"]]
    texts, xs, ys, runs = [], [], [], []
    for i, a in enumerate(ops):
        row = []
        for j, b in enumerate(ops):
            text, run = _cell_text(result["cells"], (a,) if i == j else (a, b))
            row.append(text)
            if run:
                xs.append(labels[j])
                ys.append(labels[i])
                runs.append(run)
        texts.append(row)
    ref = result.get("reference") or {}
    ref_acc = ref.get("knn_acc")
    values = [v for row in z for v in row if v is not None] + ([100 * ref_acc] if ref_acc is not None else [])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=texts,
            customdata=[[run or "" for run in row] for row in result["runs"]],
            texttemplate="%{text}",
            textfont={"size": 16},
            colorscale="Greens",
            zmin=min(values) if values else 0,
            zmax=max(values) if values else 100,
            colorbar={"title": "kNN %"},
            hovertemplate="1st: %{y}<br>2nd: %{x}<br>kNN %{z:.1f} %<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            customdata=runs,
            mode="markers",
            marker={"size": 60, "symbol": "square", "opacity": 0.01, "color": "white"},
            hovertemplate="click to open %{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    ref_text = f"{100 * ref_acc:.1f} %" if ref_acc is not None else PENDING.get(ref.get("state", ""), "—")
    fig.update_layout(
        title=f"kNN accuracy (%) on {result['scored']} · no augmentation: {ref_text}",
        xaxis={"title": "2nd transformation", "side": "bottom"},
        yaxis={"title": "1st transformation", "autorange": "reversed"},
        height=140 + 90 * len(ops),
        margin={"l": 20, "r": 20, "t": 60, "b": 20},
        clickmode="event+select",
        hovermode="closest",
    )
    return fig


def knn_curves(curves: dict[str, list[MetricRow]]) -> go.Figure:
    """The kNN monitor of several runs against minutes of training, one line per label."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, rows in curves.items():
        points = [r for r in rows if isinstance(r.get(KNN_ACC), int | float)]
        if not points:
            continue
        t0 = rows[0].get("time") or 0.0
        fig.add_trace(
            go.Scatter(
                x=[((r.get("time") or t0) - t0) / 60 for r in points],
                y=[100 * r[KNN_ACC] for r in points],
                mode="lines+markers",
                name=label,
            )
        )
    fig.update_layout(
        xaxis_title="minutes of training",
        yaxis_title="kNN accuracy (%), monitor",
        height=360,
        margin={"l": 20, "r": 20, "t": 30, "b": 20},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
