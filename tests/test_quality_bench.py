"""bench quality's bookkeeping: cells parsed, newest result per cell, targets checked (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simclr_core.bench.quality_bench import latest, load_records, parse_cells, section_from
from simclr_core.config import ConfigError


def record(
    data: str, variant: str, minutes: float, knn: float, probe: float, t: float, map_knn: float | None = None
) -> dict:
    sizes = ("10", "100", "500", "4000") if data == "cifar10" else ("10", "100", "500")
    table = {s: {"probe": probe - 0.1, "knn": knn - 0.1, "random_probe": 0.2, "random_knn": 0.3} for s in sizes}
    table[sizes[-1]] = {"probe": probe, "knn": knn, "random_probe": 0.41, "random_knn": 0.38}
    return {
        "data": data,
        "variant": variant,
        "minutes": minutes,
        "steps": 100,
        "epochs": 1.5,
        "lr_last_over_peak": 0.02,
        "table": table,
        "map_knn": map_knn,
        "created_at": t,
    }


def test_cells_parse_and_refuse_typos() -> None:
    assert parse_cells("cifar10:fast:20, shapes:fast-nojitter:5") == [
        ("cifar10", "fast", 20.0),
        ("shapes", "fast-nojitter", 5.0),
    ]
    for bad in ("cifar:fast:5", "shapes:fastest:5", "shapes:fast", "shapes:fast:five"):
        with pytest.raises(ConfigError):
            parse_cells(bad)


def test_newest_result_per_cell_and_the_targets(tmp_path: Path) -> None:
    records = [
        record("cifar10", "fast", 20.0, knn=0.55, probe=0.60, t=1.0),
        record("cifar10", "fast", 20.0, knn=0.61, probe=0.66, t=2.0),  # newer: replaces the first
        record("cifar10", "fast", 5.0, knn=0.45, probe=0.5, t=1.0),
        record("shapes", "fast", 5.0, knn=0.85, probe=0.9, t=1.0, map_knn=0.75),
        record("shapes", "fast-nojitter", 5.0, knn=0.75, probe=0.8, t=1.0),
    ]
    assert latest(records)[("cifar10", "fast", 20.0)]["table"]["4000"]["knn"] == 0.61
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    section = section_from(load_records(path))
    assert len(section.rows) == 4
    met = {c.name: c.met for c in section.checks}
    assert met["CIFAR-10 fast 20 min: kNN"] is True and met["CIFAR-10 fast 20 min: probe, all labels"] is True
    assert met["CIFAR-10 fast 5 min: kNN"] is False
    assert met["shapes demo 5 min: kNN on shapes:test"] is True
    assert met["shapes demo 5 min: kNN on the 2-D UMAP"] is True
    assert met["shapes 5 min: kNN lost without colour jitter"] is False  # 10 points, 15 asked
    row = next(r for r in section.rows if r[:3] == ["cifar10", "fast", "20"])
    assert row[4] == "61.0" and row[5].endswith("/ 66.0")
    assert load_records(tmp_path / "absent.jsonl") == []


def test_method_cells_parse_with_epochs_or_minutes_and_render_their_own_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from simclr_core import config
    from simclr_core.bench.quality_bench import methods_section_from

    monkeypatch.setattr(config, "FAST_METHOD_SETTINGS", {})

    assert parse_cells("cifar10:fast:1ep:byol, shapes:fast:5:vicreg") == [
        ("cifar10", "fast", 0.0, "byol", 1),
        ("shapes", "fast", 5.0, "vicreg", None),
    ]
    for bad in ("cifar10:fast:1ep:moco", "cifar10:fast:xep:byol", "cifar10:fast:1:byol:extra"):
        with pytest.raises(ConfigError):
            parse_cells(bad)
    rows = [
        {**record("cifar10", "fast", 0.0, knn=0.40, probe=0.45, t=1.0), "method": "byol", "budget": "1ep"},
        {**record("cifar10", "fast", 0.0, knn=0.42, probe=0.47, t=2.0), "method": "byol", "budget": "1ep"},
        {**record("cifar10", "fast", 0.0, knn=0.44, probe=0.50, t=1.0), "method": "simclr", "budget": "1ep"},
    ]
    rows[1].update(steps_per_s=1.25, rankme=[(100, 37.4)])
    section = methods_section_from(rows)
    assert [r[:3] for r in section.rows] == [["cifar10", "simclr", "1ep"], ["cifar10", "byol", "1ep"]]
    byol = section.rows[1]
    assert byol[4] == "1.25" and byol[5] == "42.0" and byol[6].endswith("4000: 47.0") and byol[7] == "37"


def test_the_methods_table_takes_simclr_minute_rows_from_the_recipe_cells_and_groups_rows_by_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from simclr_core import config
    from simclr_core.bench.quality_bench import methods_section_from

    monkeypatch.setattr(config, "FAST_METHOD_SETTINGS", {})  # every method on SimCLR's settings

    recipe = [
        record("cifar10", "fast", 5.0, knn=0.54, probe=0.58, t=1.0),
        record("cifar10", "tutorial", 5.0, knn=0.30, probe=0.35, t=1.0),  # not the fast recipe: left out
        record("cifar10", "fast", 20.0, knn=0.61, probe=0.65, t=1.0),
    ]
    methods = [
        {**record("cifar10", "fast", 5.0, knn=0.50, probe=0.55, t=2.0), "method": "vicreg", "budget": "5m"},
        {**record("cifar10", "fast", 5.0, knn=0.48, probe=0.52, t=2.0), "method": "byol", "budget": "5m"},
        {**record("cifar10", "fast", 0.0, knn=0.40, probe=0.45, t=2.0), "method": "byol", "budget": "1ep"},
        {**record("cifar10", "fast", 20.0, knn=0.63, probe=0.66, t=2.0), "method": "simclr", "budget": "20m"},
    ]
    rows = methods_section_from(methods, recipe).rows
    assert [r[1:3] for r in rows] == [
        ["simclr", "5m"],
        ["byol", "5m"],
        ["vicreg", "5m"],
        ["simclr", "20m"],
        ["byol", "1ep"],
    ]
    assert rows[0][5] == "54.0"  # the recipe's own 5-minute cell
    assert rows[3][5] == "63.0"  # a simclr method cell of that budget wins over the recipe's


def test_a_method_cell_is_the_recipes_when_its_flags_are_the_methods_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from simclr_core import config
    from simclr_core.bench.quality_bench import methods_section_from

    monkeypatch.setitem(config.FAST_METHOD_SETTINGS, "vicreg", {"hidden_dim": 512})
    monkeypatch.delitem(config.FAST_METHOD_SETTINGS, "barlowtwins", raising=False)
    methods = [
        # before the method had its own settings: now a try
        {**record("cifar10", "fast", 5.0, knn=0.50, probe=0.55, t=1.0), "method": "vicreg", "budget": "5m"},
        # the try that became the recipe (no "flags": its variant's)
        {**record("cifar10", "fast-w512", 5.0, knn=0.53, probe=0.57, t=2.0), "method": "vicreg", "budget": "5m"},
        {**record("cifar10", "fast-w512", 5.0, knn=0.49, probe=0.52, t=3.0), "method": "barlowtwins", "budget": "5m"},
        {**record("cifar10", "fast", 5.0, knn=0.48, probe=0.51, t=1.0), "method": "barlowtwins", "budget": "5m"},
        # a cell run after: its written-out flags
        {
            **record("cifar10", "fast", 20.0, knn=0.60, probe=0.64, t=4.0),
            "method": "vicreg",
            "budget": "20m",
            "flags": ["--hidden-dim", "512.0"],
        },
    ]
    section = methods_section_from(methods)
    assert [(r[1], r[2], r[5]) for r in section.rows] == [
        ("barlowtwins", "5m", "48.0"),
        ("vicreg", "5m", "53.0"),
        ("vicreg", "20m", "60.0"),
    ]
    tries = section.notes[-1]
    assert "vicreg cifar10 5m `SimCLR's settings` 50.0 / 55.0" in tries
    assert "barlowtwins cifar10 5m `--hidden-dim 512` 49.0 / 52.0" in tries
