"""The lab's charts keep Plotly's toolbar (its camera saves a PNG), like every other chart: figures.chart_config."""

from __future__ import annotations

import json
from pathlib import Path

from simclr_core import ablation
from simclr_core.store import write_json_atomic
from tests.test_pages import like_a_running_server, page, runs_root  # noqa: F401  (fixtures)


def test_the_ablation_heatmap_shows_the_toolbar_with_its_png_button(runs_root: Path) -> None:  # noqa: F811
    """A saved plan whose queue entries are gone (nothing queued, so nothing trains): its heatmap is drawn."""
    plan = {
        "id": "20260101-000000-abcd",
        "created_at": 0.0,
        "data": "shapes:train?n=3",
        "ops": ["crop", "color"],
        "minutes_per_run": 1.0,
        "recipe": "fast",
        "seed": 0,
        "bank": "shapes:train?n=3",
        "scored": "shapes:test?n=3",
        "overrides": {},
        "cells": [{"ops": ops, "entry": f"gone-{i}", "aug": {}} for i, ops in enumerate([[], ["crop"], ["color"]])],
    }
    (runs_root / ablation.FOLDER).mkdir(parents=True)
    write_json_atomic(runs_root / ablation.FOLDER / f"{plan['id']}.json", plan)
    at = page("augment")
    charts = [c for c in at.get("plotly_chart") if c.proto.id and "chart.ablation" in c.proto.id]
    assert charts, "no heatmap"
    config = json.loads(charts[0].proto.config)
    assert config["displayModeBar"] is True and config["displaylogo"] is False
    assert config["toImageButtonOptions"]["filename"] == f"ablation-{plan['id']}"
