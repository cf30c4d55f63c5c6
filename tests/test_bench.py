"""The benchmark suite's smallest configuration runs and writes well-formed tables (never timed assertions).

Budget: about 30 s on 2 shared cores (two quick sections, each figure in a fresh process).
"""

from __future__ import annotations

import json
import sys

import pytest

from simclr_core.__main__ import main
from simclr_core.bench import core, report


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in ``text`` as lists of rows of cells."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split(" | ")])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_quick_suite_writes_well_formed_tables_and_keeps_notes(tmp_path, capsys):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("old tables\n\n" + report.NOTES_MARKER + "\n\n## Where the time goes\n\nhand-written note 42\n")
    assert main(["bench", "loss", "augment", "--quick", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "old tables" not in text
    assert text.rstrip().endswith("hand-written note 42")  # notes below the marker survive regeneration
    assert "## 2. Loss alone" in text and "## 3. Augmentation engine" in text
    tables = _tables(text.split(report.NOTES_MARKER)[0])
    assert len(tables) >= 4  # machine, targets, loss, augment
    for table in tables:
        assert set(table[1]) == {"---"}
        assert all(len(row) == len(table[0]) for row in table), table
    loss = next(t for t in tables if t[0][0] == "batch N")
    assert loss[2][0] == "64"
    assert float(loss[2][1].replace(",", "")) > 0  # ours ms: a real measurement
    if core.reference_path() is not None:
        assert loss[2][3].endswith("x")  # the ratio against the tutorial's loss
    augment = next(t for t in tables if t[0][0] == "pipeline")
    assert float(augment[2][2].replace(",", "")) > 0
    assert "| augmentation vs per-image pipeline" in text
    assert "## 2. Loss alone" in capsys.readouterr().out


def test_writing_one_section_keeps_the_others_and_their_targets():
    machine = {"cpu": "test"}
    order = ["train", "loss"]
    first = report.merge(
        "",
        [
            core.Section("train", "1. Train", ["a"], [["1"]], checks=[core.Check("t", "3x", ">= 3x", True)]),
            core.Section("loss", "2. Loss", ["b"], [["old"]]),
        ],
        machine,
        order,
        quick=False,
    )
    second = report.merge(
        first,
        [core.Section("loss", "2. Loss", ["b"], [["new"]], checks=[core.Check("l", "9x", ">= 100x", False)])],
        machine,
        order,
        False,
    )
    assert "| old |" not in second and "| new |" in second and "## 1. Train" in second
    assert second.index("## 1. Train") < second.index("## 2. Loss")
    targets = _tables(second.split("## Targets")[1])[0]
    assert [row[0] for row in targets[2:]] == ["t", "l"]
    assert targets[3][3] == "**no**"


def test_unknown_section_is_a_user_error(capsys):
    assert main(["bench", "nonsense"]) == 2
    assert "unknown bench section" in capsys.readouterr().err


def test_child_peak_memory_is_its_own_not_the_parents():
    """Linux hands a forking parent's high-water RSS to its child; the launcher must hide ours (> 500 MiB here)."""
    big = bytearray(600 * 2**20)
    code = (
        "import json, resource; print(json.dumps({'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    res = core.run_json([sys.executable, "-c", code], timeout=60, what="rss probe")
    assert len(big) and res["rss"] < 300
    assert res[core.PEAK_KEY] is not None and res[core.PEAK_KEY] < 300


def test_failed_child_raises_bench_error_with_its_message():
    with pytest.raises(core.BenchError, match="boom"):
        core.run_json([sys.executable, "-c", "raise SystemExit('boom')"], timeout=60, what="failing child")
    res = core.run_json([sys.executable, "-c", f"print({json.dumps(json.dumps({'a': 1}))})"], 60, "json child")
    assert res["a"] == 1


def test_formatting():
    assert core.fmt(None) == "-"
    assert core.fmt(0.012345) == "0.0123"
    assert core.fmt(12345.6) == "12,346"
    assert core.ratio(10.0, 2.0, True) == 5.0 and core.ratio(2.0, 10.0, False) == 5.0
    assert core.ratio(1.0, None, True) is None
    assert report.table(["a", "b"], [["1|2", "3"]]).splitlines()[2] == "| 1\\|2 | 3 |"
