"""README.md speaks to someone who has only the repository: no developer-session wording, no paths outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_no_developer_session_wording() -> None:
    for phrase in ("this machine", "last session", "this session", "on this 2-core"):
        assert phrase not in README.lower(), phrase


def test_nothing_points_outside_the_repository() -> None:
    assert "../shared" not in README
    assert not re.findall(r"(?<![.\w-])\.\./", README)  # no parent-folder path ("runs/demo-.../" is a placeholder)
    bench = section("Benchmarks and results")
    assert "optional" in bench and "$SIMCLR_BENCH_REFERENCE" in bench  # the reference script: optional, where found


def test_quick_start_comes_first_and_the_layout_names_every_top_level_package() -> None:
    titles = re.findall(r"^## (.+)$", README, flags=re.M)
    assert titles[0] == "Quick start"
    layout = section("Layout")
    for folder in ("simclr_core/", "app.py", "pages/", "dashboard/", "tests/"):
        assert f"`{folder}`" in layout, folder


def test_the_makefile_says_the_dashboard_is_served() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "open the dashboard" not in makefile and "serve the dashboard" in makefile
