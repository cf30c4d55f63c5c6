"""A share link restores the whole view in a real browser, and the address follows the widgets.

The address names the page (its path), the sidebar's run (bare: ``run_id=<run name>``) and dataset, the Train
page's tab, the map's split, method and points (Embeddings) and the probe's sizes (Probe). Its own server and runs
folder (``fresh_server``); the two runs are made by the run store with a placeholder checkpoint, not trained: no
page here loads it (the map waits for its labelled data, the probe for its button). Budget: under a minute on 2
busy cores (one server start).
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_dashboard import idle, no_exception

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """Two finished runs in ``tmp_path/runs`` (the folder ``fresh_server`` serves): ``older``, then ``newer``, which
    a session opened without a link shows."""
    from simclr_core.config import TrainConfig
    from simclr_core.store import create_run

    root = tmp_path / "runs"
    for name in ("older", "newer"):
        run = create_run(root, TrainConfig(data="shapes:unlabeled").to_dict(), run_id=name)
        (run.checkpoint_dir / "last.ckpt").write_bytes(b"placeholder: never loaded here")
        run.write_status(state="finished")
        time.sleep(0.02)  # newest first, by creation time
    return root


def address(page) -> tuple[str, dict[str, list[str]]]:
    """The page's path and query, read in the page (Playwright's page.url lags behind history.replaceState)."""
    url = urlsplit(page.evaluate("() => location.href"))
    return url.path, parse_qs(url.query)


def until(page, check, message: str, timeout_s: float = 30) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check(*address(page)):
            return
        time.sleep(0.25)
    raise AssertionError(f"{message}; the address is {page.evaluate('() => location.href')}")


def open_link(page, link: str) -> None:
    page.goto(link)
    page.wait_for_selector("h1", timeout=120_000)
    idle(page)


def shown(page, testid: str, label: str):
    """The widget of that kind whose label is ``label`` (exactly)."""
    return page.locator(f'[data-testid="{testid}"]').filter(has=page.get_by_text(label, exact=True)).first


def value(page, label: str) -> str:
    """What a selectbox shows (its text field's value)."""
    return shown(page, "stSelectbox", label).locator("input").input_value()


def pick(page, label: str, option: str) -> None:
    shown(page, "stSelectbox", label).click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def chips(page, label: str) -> list[str]:
    return [t.strip() for t in shown(page, "stMultiSelect", label).inner_text().split("\n")[1:] if t.strip()]


def test_a_share_link_restores_the_view_and_the_address_follows_the_widgets(
    two_runs: Path, fresh_server: str, browser
) -> None:
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        # Train: the run (not the newest) and the tab come from the link.
        open_link(page, f"{fresh_server}/train?run_id=older&nav.train_tab=Compare+runs")
        assert page.locator("h1").first.inner_text().strip() == "Training"
        assert value(page, "Run") == "older"
        assert page.get_by_role("tab", name="Compare runs").get_attribute("aria-selected") == "true"
        no_exception(page)
        # A tab and a run picked: the address says so, with the run's bare name.
        page.get_by_role("tab", name="Queue").click()
        until(page, lambda path, q: q.get("nav.train_tab") == ["Queue"], "the address did not follow the tab")
        pick(page, "Run", "newer")
        # The dataset joins the address from the session's second run on; wait for it too (written after the run).
        until(
            page,
            lambda path, q: q.get("run_id") == ["newer"] and bool(q.get("data_spec")),
            "the address did not follow the run or did not name the dataset",
        )
        path, query = address(page)
        assert path == "/train" and query["nav.train_tab"] == ["Queue"] and query["data_spec"], query

        # That address is the share link: a new visitor sees the same tab and run.
        link = page.evaluate("() => location.href")
        open_link(page, link)
        assert value(page, "Run") == "newer"
        assert page.get_by_role("tab", name="Queue").get_attribute("aria-selected") == "true"

        # Embeddings: the map's split, method and points (500: the slider's first option). The split is other labelled
        # data, not named yet: no map is computed.
        query = {"run_id": "older", "keep.emb_split": "other labelled data ...", "keep.emb_method": "PCA 3-D"}
        open_link(page, f"{fresh_server}/embeddings?{urlencode({**query, 'emb_points': '500'})}")
        assert page.locator("h1").first.inner_text().strip() == "Embeddings"
        assert value(page, "Run") == "older"
        assert value(page, "Split") == "other labelled data ..."
        assert value(page, "Method") == "PCA 3-D"
        points = shown(page, "stSlider", "Points").locator('[data-testid="stSliderThumbValue"]')
        assert points.inner_text().strip() == "500"
        no_exception(page)
        pick(page, "Method", "t-SNE 2-D")
        until(page, lambda path, q: q.get("keep.emb_method") == ["t-SNE 2-D"], "the address did not follow Method")
        assert address(page)[1]["emb_points"] == ["500"]

        # Probe: the sizes.
        open_link(page, f"{fresh_server}/probe?run_id=older&keep.probe_sizes=2&keep.probe_sizes=5")
        assert page.locator("h1").first.inner_text().strip() == "Linear probe"
        assert chips(page, "Images per class") == ["2", "5"]
        shown(page, "stMultiSelect", "Images per class").get_by_label("Remove 5").click()
        until(page, lambda path, q: q.get("keep.probe_sizes") == ["2"], "the address did not follow the sizes")
        no_exception(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "share_link_probe.png"), full_page=True)
    finally:
        print(f"the share-link test took {time.monotonic() - started:.0f} s in the browser")
        context.close()
