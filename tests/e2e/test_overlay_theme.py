"""In a real browser: the tutorial's published run overlaid on Compare runs (offline first), PNG toolbar, theme menu."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simclr_core.tutorial_files import local_path
from tests.e2e.test_dashboard import idle, no_exception, open_page, shot

pytestmark = pytest.mark.e2e
TUTORIAL = Path(__file__).resolve().parents[3] / "shared" / "reference" / "tutorial17" / "events.out.tfevents.SimCLR"


@pytest.mark.skipif(not TUTORIAL.is_file(), reason=f"the tutorial's event file is not at {TUTORIAL}")
def test_the_tutorials_run_overlays_compare_runs_and_the_theme_menu_offers_dark(page, server, data_root, monkeypatch):
    monkeypatch.delenv("SIMCLR_STUDIO_TUTORIAL_URL", raising=False)
    target = local_path("simclr_events", data_root)
    target.unlink(missing_ok=True)
    try:
        open_page(page, server, "train")
        page.get_by_role("tab", name="Compare runs").click()
        idle(page)
        page.get_by_text("Overlay a TensorBoard event file").click()
        button = page.get_by_role("button", name="The tutorial's SimCLR run")
        button.click()
        idle(page)
        # No internet on developer machines and CI: one message says what to do; elsewhere it downloads.
        if not target.is_file():
            alert = page.get_by_text("this machine seems to be offline")
            alert.wait_for(timeout=60_000)
            assert page.get_by_text("unexpected").count() == 0  # a user's situation, not a bug
            shot(page, "compare-offline")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(TUTORIAL, target)
            button.click()
            idle(page)
        page.get_by_text("4,800 steps").first.wait_for(timeout=60_000)
        # Every chart carries Plotly's PNG button (runs left by earlier e2e tests may add charts beside it).
        charts = page.locator('[data-testid="stPlotlyChart"]')
        png = charts.locator('.modebar-btn[data-title*="png" i]')
        png.first.wait_for(state="attached", timeout=60_000)  # Plotly shows its toolbar on hover
        assert png.count() == charts.count() >= 1
        no_exception(page)
        shot(page, "compare-tutorial")
        page.locator('[data-testid="stMainMenu"]').click()
        menu = page.locator('[data-testid="stMainMenuList"]')
        menu.wait_for(timeout=30_000)
        text = menu.inner_text()
        assert all(choice in text for choice in ("System", "Light", "Dark")), text
        shot(page, "compare-tutorial-theme-menu")
    finally:
        target.unlink(missing_ok=True)  # the session's data root is shared with the unit tests
