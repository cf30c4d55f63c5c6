"""A freshly started server shows only the real navigation at any address, in a real browser.

Until app.py's first ``st.navigation``, Streamlit treats a project with ``pages/`` as a
pages-folder app: a first visit to /augment ran the page alone, and /ui (a helper module that
used to live in pages/) showed an automatic list of every file and a blank page. Each case
needs a server no browser has opened yet. Budget: ~1 minute (two server starts).
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

NAVIGATION = ["Home", "Augment", "Train", "Embeddings", "Probe"]


def _shows(page, title: str, timeout_s: float = 120) -> None:
    """Wait until the page's heading is ``title``, its script has ended and the shared sidebar is drawn."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        done = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').count()
        heading = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
        if (
            done
            and heading.strip() == title
            and page.locator('[data-testid="stSidebar"]').get_by_text("Dataset").count()
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"expected the page {title!r}, found {page.locator('h1').all_inner_texts()}")


def _navigation(page) -> list[str]:
    """The sidebar's page links, by label (each link's text is its icon's name, then the label)."""
    return [t.split()[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


@pytest.mark.parametrize(
    ("address", "title"),
    [("augment", "Augmentations"), ("ui", "SimCLR Studio")],
    ids=["a page", "a former helper module"],
)
def test_first_visit_at_any_address_shows_only_the_real_navigation(browser, fresh_server, address, title):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{fresh_server}/{address}")
        _shows(page, title)
        assert _navigation(page) == NAVIGATION
        assert page.locator('[data-testid="stException"]').count() == 0
        for other in ("figures", "evaluation"):  # the other former helpers, now on a started server
            page.goto(f"{fresh_server}/{other}")
            _shows(page, "SimCLR Studio")
            assert _navigation(page) == NAVIGATION
    finally:
        context.close()
