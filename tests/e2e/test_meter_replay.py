"""The difficulty meter and the training replay (its snapshot slider and Play move the points) in a real browser.

Budget: ~2 minutes on 2 busy cores (a 4-step ResNet-10 run, one server start). Screenshots land in
test-artifacts/ (augment_difficulty.png, embeddings_replay.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_dashboard import choose, idle, metric_value, no_exception, wait_for

pytestmark = pytest.mark.e2e


def open_page(page, server: str, name: str) -> None:
    """As test_dashboard's, with room for a first start on a loaded host (imports, warm-up, data)."""
    page.goto(f"{server}/{name}")
    page.wait_for_selector("h1", timeout=400_000)
    idle(page, 300)


FRAME_XS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.layout && p.layout.sliders);
  const frames = plots.length ? plots[0]._transitionData._frames : [];
  return frames.map(f => f.data.flatMap(d => Array.from(d.x || [])).slice(0, 8));
}"""

# The replay's snapshot slider (Plotly's, drawn in SVG): each step's label centre, the rail's and the current value.
SLIDER = """() => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout && p.layout.sliders);
  if (!plot) return null;
  const centre = el => { const r = el.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; };
  const rail = plot.querySelector('.slider-rail-touch-rect');
  // the current value is the one label outside the steps' groups ("snapshot: step N (P%)")
  const current = [...plot.querySelectorAll('.slider-label')].find(l => !l.closest('.slider-label-group'));
  return {labels: [...plot.querySelectorAll('.slider-label-group .slider-label')].map(l => ({text: l.textContent, ...centre(l)})),
          rail: rail ? centre(rail) : null, current: current ? current.textContent : ''};
}"""

LAST_PLOT_X = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.layout && p.layout.sliders);
  return plots.length ? plots[0].data.flatMap(d => Array.from(d.x || [])).slice(0, 8) : null;
}"""


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A finished run with 4 snapshots in ``tmp_path/runs`` (the folder ``fresh_server`` serves)."""
    from simclr_core.config import TrainConfig, augmentation_preset
    from simclr_core.train import train

    config = TrainConfig(
        data="shapes:unlabeled",
        val_data="shapes:train?n=10",
        image_size=32,
        backbone="resnet10",
        limit_images=64,
        batch_size=32,
        epochs=3,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        snapshots=4,
        seed=0,
    )
    run = train(config, tmp_path / "runs", name="replay")
    assert len(run.snapshots()) == 4
    return run.path


def test_the_meter_follows_a_slider_and_the_replay_moves_the_points(trained: Path, fresh_server: str, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # the session's browser: a second sync_playwright in one process fails ("Sync API inside the asyncio loop")
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        open_page(page, fresh_server, "augment")
        page.get_by_role("tab", name="Difficulty").click()
        choose(page, "Encoder", trained.name)
        page.locator('[data-testid="stMetric"]').filter(has_text="InfoNCE loss").wait_for()
        before = metric_value(page, "InfoNCE loss")
        thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Area fraction").get_by_role("slider")
        thumb.first.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        wait_for(lambda: metric_value(page, "InfoNCE loss") != before, 60, "the meter did not follow the slider")
        idle(page)
        page.get_by_text("What the network sees").wait_for()
        assert page.get_by_text("its other view").count() >= 1
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "augment_difficulty.png"), full_page=True)

        open_page(page, fresh_server, "embeddings")
        choose(page, "Split", "other labelled data ...")
        spec = page.get_by_label("Labelled data (spec)", exact=True)
        spec.fill("shapes:test?n=20")
        spec.press("Enter")
        idle(page)
        choose(page, "Method", "PCA 2-D")
        page.get_by_text("Replay the training (4 snapshots)").click()
        idle(page)
        wait_for(lambda: page.evaluate(LAST_PLOT_X) is not None, 120, "no replay chart")
        frames = page.evaluate(FRAME_XS)  # what Play animates: one map per snapshot, the points moving
        assert len(frames) == 4 and frames[0] != frames[-1], frames
        assert page.evaluate(LAST_PLOT_X) == frames[0]  # the chart opens on the first snapshot
        # The snapshot slider: a click on its rail under a step's label shows that snapshot's map.
        page.locator('[data-testid="stPlotlyChart"]').filter(
            has=page.locator(".slider-rail-touch-rect")
        ).first.scroll_into_view_if_needed()
        for i in (3, 1):
            slider = page.evaluate(SLIDER)
            assert len(slider["labels"]) == 4 and slider["rail"], slider
            assert page.evaluate(LAST_PLOT_X) != frames[i]  # the click must move the points
            page.mouse.click(slider["labels"][i]["x"], slider["rail"]["y"])
            wait_for(lambda i=i: page.evaluate(LAST_PLOT_X) == frames[i], 30, f"the slider did not show snapshot {i}")
            assert slider["labels"][i]["text"] in page.evaluate(SLIDER)["current"]  # "snapshot: step N (P%)"
        # Play animates from there (snapshot 1) to the last snapshot, and stops on it.
        page.get_by_text("▶ Play").click()
        wait_for(lambda: page.evaluate(LAST_PLOT_X) == frames[-1], 30, "Play did not reach the last snapshot")
        assert slider["labels"][-1]["text"] in page.evaluate(SLIDER)["current"]
        no_exception(page)
        page.get_by_text("Clusters forming").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "embeddings_replay.png"), full_page=True)
    finally:
        context.close()
