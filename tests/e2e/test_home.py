"""Home in a real browser: the dataset table is filled on a first visit (it was an empty grey box).

st.dataframe's grid is a ~0.5 MB script loaded lazily; until it arrives (seconds on a busy machine,
on a first visit with nothing cached) the table stood as an empty grey placeholder. The table is
markdown now, drawn with the page's text. Budget: a few seconds on the session's server.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_first_visit_shows_the_dataset_table_filled(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # a first visit: nothing cached
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(server)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        page.locator("h3", has_text="Datasets").wait_for()
        table = page.locator('[data-testid="stMain"] [data-testid="stMarkdown"] table').first
        # Drawn with the page's text once the script has sent it, not after a lazily loaded grid script.
        table.locator("td", has_text="shapes:train").first.wait_for(state="visible", timeout=10_000)
        assert "cifar10:test" in table.inner_text() and "not downloaded" in table.inner_text()
    finally:
        context.close()
