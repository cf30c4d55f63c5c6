"""The Augment page's lab in a real browser: an ablation fills its heatmap, a try lands on the leaderboard.

Tiny budgets on purpose (the CI machine is 2 shared cores): 2 operations (4 runs: no augmentation,
crop, colour, crop + colour) and one try, each 3 seconds of the fast recipe on 130 generated images,
scored by kNN with a bank of 100 and 50 scored images. Budget: ~1.5 minutes on 2 busy cores (a loaded host: more). Screenshots
land in test-artifacts/ (lab_ablation.png, lab_try.png). The runs end before the test does: the
session's server has nothing queued or running afterwards.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_dashboard import idle, no_exception, wait_for

pytestmark = pytest.mark.e2e

DATA = "shapes:train?n=13"  # 130 labelled images (labels unused by training): one step of 128 per epoch
BANK = "shapes:train?n=10"  # 100 images vote
SCORED = "shapes:test?n=5"  # 50 held-out images scored
MINUTES = "0.05"  # the smallest budget the lab accepts: 3 s of training per run

HEATMAP = """() => {
  const p = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.data && p.data[0] && p.data[0].type === 'heatmap');
  if (!p) return null;
  const title = p.layout.title;
  return {z: p.data[0].z, text: p.data[0].text, runs: p.data[1].customdata,
          title: typeof title === 'string' ? title : (title && title.text) || ''};
}"""

TRY_CURVES = """() => {
  const p = [...document.querySelectorAll('.js-plotly-plot')].find(
    p => p.data && p.data.length && p.data.every(d => d.type === 'scatter') && (p.layout.xaxis.title || {}).text === 'minutes of training');
  return p ? p.data.map(d => ({name: d.name, y: Array.from(d.y || [])})) : null;
}"""

LEADERBOARD = """() => {
  const t = document.querySelector('[data-testid="stDataFrame"] table[role="grid"]');
  if (!t) return [];
  const heads = [...t.querySelectorAll('th[role="columnheader"]')].map(h => h.textContent.trim());
  return [...t.querySelectorAll('tbody tr[role="row"]')].map(
    r => Object.fromEntries([...r.querySelectorAll('td[role="gridcell"]')].map((c, i) => [heads[i], c.textContent.trim()])));
}"""

# The scatter markers over the heatmap that carry each cell's run: their centres in the page.
CELL_MARKS = """() => {
  const p = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.data && p.data[0] && p.data[0].type === 'heatmap');
  if (!p) return [];
  const points = [...p.querySelectorAll('.scatterlayer .trace .point')];
  return points.map((el, i) => {
    const r = el.getBoundingClientRect();
    return {run: p.data[1].customdata[i], x: r.x + r.width / 2, y: r.y + r.height / 2};
  });
}"""


def open_augment(page, server: str) -> None:
    page.goto(f"{server}/augment")
    page.wait_for_selector("h1", timeout=400_000)  # a first visit on a loaded host: imports, data, warm-up
    idle(page, 300)


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")
    idle(page)


def leaderboard(page) -> list[dict[str, str]]:
    """The leaderboard's rows, by column header (the data grid's accessible table: raw values, not formatted)."""
    return page.evaluate(LEADERBOARD)


def one_try(page, ready, timeout_s: float, message: str) -> dict[str, str]:
    """The leaderboard's only row once ``ready(row)``; the grid's table is redrawn as its tab opens (empty a moment)."""
    seen: list[dict[str, str]] = []

    def listed() -> bool:
        rows = leaderboard(page)
        seen[:] = rows[:1]
        return len(rows) == 1 and ready(rows[0])

    wait_for(listed, timeout_s, message)
    return seen[0]


def test_an_ablation_fills_its_heatmap_and_a_try_lands_on_the_leaderboard(server, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # its own session: the cell it opens selects a run in the sidebar, which the shared page's later tests must not see
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(120_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    page.on("framenavigated", lambda f: console.append(f"navigated: {f.url}"))
    try:
        open_augment(page, server)
        # One change from the preset for the try to report: colour jitter's hue 0.1 -> 0.15.
        hue = page.locator('[data-testid="stSlider"]').filter(has_text="Hue").first
        hue.get_by_role("slider").focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        wait_for(lambda: "0.15" in hue.inner_text(), 30, "Hue did not move to 0.15")
        idle(page)

        page.get_by_role("heading", name="Augmentation lab").scroll_into_view_if_needed()
        fill(page, "Training data (spec)", DATA)
        fill(page, "kNN bank (optional)", BANK)
        fill(page, "Scored on (optional)", SCORED)

        # The ablation: crop and colour only (the default also has blur), 3 s per run.
        ops = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Operations (2 to 5)").first
        ops.get_by_label("Remove blur").click()
        page.keyboard.press("Escape")
        idle(page)
        chips = [t.strip() for t in ops.inner_text().split("\n")[1:] if t.strip()]
        assert chips == ["crop", "colour"], chips
        fill(page, "Minutes per run", MINUTES)
        page.get_by_text("4 runs of the fast recipe").wait_for()  # reference, crop, colour, crop + colour
        page.get_by_role("button", name="Queue the ablation").click()
        wait_for(lambda: page.evaluate(HEATMAP) is not None, 120, "no heatmap after queueing the ablation")
        first = page.evaluate(HEATMAP)
        assert len(first["z"]) == 2 and all(len(row) == 2 for row in first["z"]), first
        no_exception(page)

        # The try, queued behind the ablation: the current settings (the hue moved), 3 s.
        page.get_by_role("tab", name="Try these augmentations").click()
        fill(page, "Minutes per try", MINUTES)
        page.get_by_role("button", name="Try these augmentations").click()
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
        listed = one_try(page, lambda row: True, 60, "the try is not listed")
        assert listed["changes from the preset"] == "tutorial: jitter_hue 0.1 → 0.15", listed
        assert listed["state"] in ("queued", "running"), listed  # behind the ablation's runs

        # The heatmap fills live as the cells are scored: numbers on the diagonal and both halves of the pair.
        page.get_by_role("tab", name="Ablation grid").click()

        def filled() -> bool:
            result = page.evaluate(HEATMAP)
            return result is not None and all(isinstance(v, int | float) for row in result["z"] for v in row)

        wait_for(filled, 600, "the heatmap did not fill")
        page.get_by_text("4 of 4 cells scored").wait_for(timeout=60_000)
        result = page.evaluate(HEATMAP)
        z, text = result["z"], result["text"]
        assert all(0 <= v <= 100 for row in z for v in row), z
        assert z[0][1] == z[1][0], z  # the pair fills both halves
        assert text == [[f"{v:.1f}" for v in row] for row in z], text  # each cell shows its kNN %
        assert re.search(r"no augmentation: \d+\.\d %", result["title"]), result["title"]
        no_exception(page)
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        chart.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "lab_ablation.png"), full_page=True)

        # The try: scored, on the leaderboard with its kNN, its curve in the overlay.
        page.get_by_role("tab", name="Try these augmentations").click()

        row = one_try(
            page,
            lambda row: row["state"] == "finished" and row["kNN %"] not in ("", "None"),
            300,
            "the try was not scored on the leaderboard",
        )
        assert 0 <= float(row["kNN %"]) <= 100, row
        assert row["changes from the preset"] == "tutorial: jitter_hue 0.1 → 0.15", row
        assert "colour jitter p=0.8 (0.5/0.5/0.5/0.15)" in row["settings"], row  # the settings in words
        assert row["minutes"] == MINUTES and row["run"].startswith("try-"), row
        wait_for(lambda: page.evaluate(TRY_CURVES), 60, "no kNN curve of the try")
        curves = page.evaluate(TRY_CURVES)
        assert [c["name"] for c in curves] == [f"#1 {row['run']}"] and curves[0]["y"], curves
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "lab_try.png"), full_page=True)

        # Clicking the pair's cell opens its run on the Train page.
        page.get_by_role("tab", name="Ablation grid").click()
        wait_for(lambda: len(page.evaluate(CELL_MARKS)) == 4, 60, "the heatmap's cells carry no runs")
        pair = next(m for m in page.evaluate(CELL_MARKS) if "abl-crop-color-" in m["run"])
        page.mouse.move(pair["x"], pair["y"])
        page.mouse.click(pair["x"], pair["y"])
        page.wait_for_url(re.compile(r"/train(\?|$)"), timeout=120_000)
        page.get_by_role("heading", name="Training").wait_for()
        idle(page)
        run_name = pair["run"].rsplit("/", 1)[-1]
        page.get_by_role("heading", name=run_name).wait_for(timeout=60_000)  # its Run tab, with its curves
        assert page.get_by_role("tab", name="Run", exact=True).get_attribute("aria-selected") == "true"
        no_exception(page)

        # Nothing is left queued or running on the session's server.
        page.get_by_role("tab", name="Queue").click()
        idle(page)
        panel = page.get_by_text("Runs one at a time from")
        panel.wait_for()
        wait_for(
            lambda: page.get_by_role("button", name="Cancel").count() == 0, 120, "the queue still has entries waiting"
        )
        assert page.get_by_text("in the background").count() == 0
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "FAILED-lab.png"), full_page=True)
        log = "\n".join(console[-200:])
        (ARTIFACTS / "FAILED-lab.txt").write_text(
            f"{page.url}\n\n--- console\n{log}\n\n--- page\n{page.inner_text('body')}\n"
        )
        raise
    finally:
        context.close()
