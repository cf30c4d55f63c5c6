"""Served beyond loopback, the dashboard shows nothing but a password field until the operator's password is typed.

A real ``streamlit run app.py --server.address 0.0.0.0`` with ``$SIMCLR_STUDIO_PASSWORD`` set, and a real
browser. Budget: ~1 minute (one server start).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, _require_chromium, serve

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


@pytest.fixture
def shared_server(tmp_path: Path, data_root: Path) -> Iterator[str]:
    _require_chromium()
    env = {"SIMCLR_STUDIO_PASSWORD": PASSWORD}
    with serve(tmp_path / "runs", data_root, tmp_path / "streamlit-shared.log", "0.0.0.0", env) as url:
        yield url


def _settled(page) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        if page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').count():
            return
        time.sleep(0.3)
    raise AssertionError("the script never finished")


def _nothing_but_the_password(page) -> None:
    assert page.locator('[data-testid="stSidebar"]').count() == 0, "the sidebar rendered before the password"
    assert page.locator("h1").count() == 0, page.locator("h1").all_inner_texts()
    assert "runs" not in page.inner_text("body").lower()


def test_a_shared_server_asks_for_the_password_before_any_page(shared_server: str, browser) -> None:
    # the session's browser: a second sync_playwright in one process fails ("Sync API inside the asyncio loop")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)  # a first script run on 2 busy cores
        for path in ("/", "/train"):  # a deep link is held back as well
            page.goto(shared_server + path)
            field = page.locator('input[type="password"]')
            field.wait_for()
            _settled(page)
            _nothing_but_the_password(page)
        field.fill("wrong guess")
        field.press("Enter")
        page.get_by_text("Wrong password.").wait_for()
        _settled(page)
        _nothing_but_the_password(page)
        field.fill(PASSWORD)
        field.press("Enter")
        page.locator("h1").first.wait_for()
        deadline = time.time() + 180
        while not page.locator('[data-testid="stSidebar"]').count() and time.time() < deadline:
            time.sleep(0.3)
        assert page.locator('[data-testid="stSidebar"]').count(), "the pages did not appear after the password"
        _settled(page)
        deadline = time.time() + 60
        while page.locator('input[type="password"]').count() and time.time() < deadline:
            time.sleep(0.3)  # the prompt of the last run fades once the new one has drawn
        assert page.locator('input[type="password"]').count() == 0, "the prompt stayed after the password"
        assert page.locator("h1").first.inner_text().strip() == "Training", "the deep link was not kept"
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "FAILED-shared-server.png"), full_page=True)
        (ARTIFACTS / "FAILED-shared-server.txt").write_text(page.inner_text("body"))
        raise
    finally:
        context.close()
