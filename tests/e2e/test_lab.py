"""The Augment page's lab in a real browser: an ablation fills its heatmap, a try lands on the leaderboard.

Tiny budgets on purpose (the CI machine is 2 shared cores): 2 operations (4 runs: no augmentation,
crop, colour, crop + colour) and one try, each 3 seconds of the fast recipe on 130 generated images,
scored by kNN with a bank of 100 and 50 scored images (~10 s a run from the CLI). Its own server and
runs folder (``fresh_server``): no run of it shows in the other browser tests, and nothing of it is
left running. Every wait polls for the state it needs and draws on one budget (``Budget``) that ends
well before pytest's timeout, so a hang fails with the step it hung at. Budget: ~3 minutes on 2 busy
cores. Screenshots land in test-artifacts/ (lab_ablation.png, lab_try.png, lab_cell_opened.png).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_dashboard import no_exception

BUDGET_S = 330  # the test's own waits, all together; the server's start (<= 90 s) and stop (<= 15 s) come on top
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(BUDGET_S + 150)]

DATA = "shapes:train?n=13"  # 130 labelled images (labels unused by training): one step of 128 per epoch
BANK = "shapes:train?n=10"  # 100 images vote
SCORED = "shapes:test?n=5"  # 50 held-out images scored
MINUTES = "0.05"  # the smallest budget the lab accepts: 3 s of training per run
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"]'

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


class Budget:
    """One deadline for every wait of the test; each wait takes at most ``cap`` seconds of what is left.

    The page's default timeout (clicks, fills) follows what is left, so no Playwright call outlives it either.
    """

    def __init__(self, page, seconds: float) -> None:
        self.page = page
        self.deadline = time.monotonic() + seconds
        self.log: list[str] = []  # "12.3 s  what": how long each wait took, for the failure report
        self.started = time.monotonic()

    def left(self, cap: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 1:
            raise AssertionError(f"the test's {BUDGET_S} s budget is spent; waits so far:\n" + "\n".join(self.log))
        self.page.set_default_timeout(min(left, 60) * 1000)
        return min(cap, left)

    def until(self, predicate: Callable[[], object], cap: float, message: str) -> object:
        """Poll ``predicate`` (every 0.25 s) until it returns something truthy, which is returned."""
        t0 = time.monotonic()
        deadline = t0 + self.left(cap)
        while True:
            value = predicate()
            if value:
                self.log.append(f"{time.monotonic() - t0:6.1f} s  {message}")
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"after {time.monotonic() - t0:.0f} s: {message}")
            time.sleep(0.25)

    def settled(self, cap: float = 60) -> None:
        """The script is not running and nothing is still loading (fragments rerun every 2-3 s: wait between)."""
        page = self.page
        self.until(
            lambda: page.locator(SETTLED).count() and not page.locator('[data-testid="stSkeleton"]').count(),
            cap,
            "the page settles",
        )


def fill(page, budget: Budget, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")
    budget.until(lambda: box.input_value() == value, 30, f"{label} = {value}")
    budget.settled()


def tab(page, budget: Budget, name: str) -> None:
    """Select a tab of the lab (client-side: no rerun), checked."""
    t = page.get_by_role("tab", name=name, exact=True)
    t.click()
    budget.until(lambda: t.get_attribute("aria-selected") == "true", 20, f"the tab {name!r} is selected")


def one_try(page, budget: Budget, ready: Callable[[dict[str, str]], bool], cap: float, message: str) -> dict[str, str]:
    """The leaderboard's only row once ``ready(row)`` (the grid's accessible table: raw values, not formatted)."""

    def row() -> dict[str, str] | None:
        rows = page.evaluate(LEADERBOARD)  # empty a moment while the fragment redraws the table
        return rows[0] if len(rows) == 1 and ready(rows[0]) else None

    return budget.until(row, cap, message)


def test_an_ablation_fills_its_heatmap_a_try_lands_on_the_leaderboard_and_a_cell_opens_its_run(
    fresh_server, browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = context.new_page()
    budget = Budget(page, BUDGET_S)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    page.on("framenavigated", lambda f: console.append(f"navigated: {f.url}"))
    try:
        page.goto(f"{fresh_server}/augment", timeout=budget.left(60) * 1000)
        # a first visit of a fresh server: torch imported, data generated, the preview drawn
        budget.until(lambda: page.get_by_role("heading", name="Augmentation lab").count(), 150, "the Augment page")
        budget.settled(120)

        # One change from the preset for the try to report: colour jitter's hue 0.1 -> 0.15.
        hue = page.locator('[data-testid="stSlider"]').filter(has_text="Hue").first
        # One step at a time, focusing the slider again each time: each step reruns the page, and a key
        # pressed while it redraws can land on nothing.
        for _ in range(12):
            if "0.15" in hue.inner_text():
                break
            before = hue.inner_text()
            hue.get_by_role("slider").focus()
            page.keyboard.press("ArrowRight")
            with contextlib.suppress(AssertionError):
                budget.until(lambda was=before: hue.inner_text() != was, 5, "Hue moves one step")
            budget.settled()
        budget.until(lambda: "0.15" in hue.inner_text(), 30, "Hue moves to 0.15")
        budget.settled()

        page.get_by_role("heading", name="Augmentation lab").scroll_into_view_if_needed()
        fill(page, budget, "Training data (spec)", DATA)
        fill(page, budget, "kNN bank (optional)", BANK)
        fill(page, budget, "Scored on (optional)", SCORED)

        # The ablation: crop and colour only (the default also has blur), 3 s per run.
        ops = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Operations (2 to 5)").first
        ops.get_by_label("Remove blur").click()
        page.keyboard.press("Escape")
        budget.until(lambda: ops.get_by_label("Remove blur").count() == 0, 30, "blur removed")
        budget.settled()
        chips = [t.strip() for t in ops.inner_text().split("\n")[1:] if t.strip()]
        assert chips == ["crop", "colour"], chips
        fill(page, budget, "Minutes per run", MINUTES)
        caption = page.get_by_text("4 runs of SimCLR's fast recipe")  # reference, crop, colour, crop + colour
        budget.until(caption.count, 30, "the caption counts 4 runs")
        page.get_by_role("button", name="Queue the ablation").click()
        first = budget.until(lambda: page.evaluate(HEATMAP), 60, "a heatmap after queueing the ablation")
        assert len(first["z"]) == 2 and all(len(row) == 2 for row in first["z"]), first
        no_exception(page)

        # The try, queued behind the ablation: the current settings (the hue moved), 3 s.
        tab(page, budget, "Try these augmentations")
        fill(page, budget, "Minutes per try", MINUTES)
        page.get_by_role("button", name="Try these augmentations").click()
        listed = one_try(page, budget, lambda row: True, 60, "the try is listed")
        assert listed["changes from the preset"] == "tutorial: jitter_hue 0.1 → 0.15", listed
        assert listed["state"] in ("queued", "running"), listed  # behind the ablation's runs

        # The heatmap fills live as the cells are scored: numbers on the diagonal and both halves of the pair.
        tab(page, budget, "Ablation grid")
        seen: set[int] = set()  # how many cells were scored at each look

        def filled() -> dict | None:
            result = page.evaluate(HEATMAP)
            if result is None:
                return None
            seen.add(sum(isinstance(v, int | float) for row in result["z"] for v in row))
            return result if all(isinstance(v, int | float) for row in result["z"] for v in row) else None

        result = budget.until(filled, 240, "the heatmap fills")
        budget.log.append(f"         scored cells at each look: {sorted(seen)}")
        assert any(0 < n < 4 for n in seen), seen  # drawn partly filled before it was full: live
        budget.until(page.get_by_text("4 of 4 cells scored").count, 30, "the caption says 4 of 4 cells scored")
        result = page.evaluate(HEATMAP)
        z, text = result["z"], result["text"]
        assert all(0 <= v <= 100 for row in z for v in row), z
        assert z[0][1] == z[1][0], z  # the pair fills both halves
        assert text == [[f"{v:.1f}" for v in row] for row in z], text  # each cell shows its kNN %
        assert re.search(r"no augmentation: \d+\.\d %", result["title"]), result["title"]
        no_exception(page)
        page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "lab_ablation.png"), full_page=True)

        # The try: scored, on the leaderboard with its kNN, its curve in the overlay.
        tab(page, budget, "Try these augmentations")
        row = one_try(
            page,
            budget,
            lambda row: row["state"] == "finished" and row["kNN %"] not in ("", "None"),
            90,
            "the try is scored on the leaderboard",
        )
        assert 0 <= float(row["kNN %"]) <= 100, row
        assert row["changes from the preset"] == "tutorial: jitter_hue 0.1 → 0.15", row
        assert "colour jitter p=0.8 (0.5/0.5/0.5/0.15)" in row["settings"], row  # the settings in words
        assert row["minutes"] == MINUTES and row["run"].startswith("try-"), row
        curves = budget.until(lambda: page.evaluate(TRY_CURVES), 30, "the try's kNN curve")
        assert [c["name"] for c in curves] == [f"#1 {row['run']}"] and curves[0]["y"], curves
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "lab_try.png"), full_page=True)

        # Clicking the pair's cell opens its run on the Train page.
        tab(page, budget, "Ablation grid")

        def four_marks() -> list[dict] | None:
            marks = page.evaluate(CELL_MARKS)
            return marks if len(marks) == 4 else None

        marks = budget.until(four_marks, 30, "the heatmap's 4 cells carry runs")
        pair = next(m for m in marks if "abl-crop-color-" in m["run"])
        page.mouse.move(pair["x"], pair["y"])
        page.mouse.click(pair["x"], pair["y"])
        run_name = pair["run"].rsplit("/", 1)[-1]

        def at_train() -> str | None:
            """The address once it is the Train page's with the sidebar's run bound to the cell's run (the switch
            keeps the bound query: run_id=<name>). From the page itself: Playwright's page.url
            only follows navigations while it is called."""
            url = page.evaluate("() => location.href")
            run_id = parse_qs(urlsplit(url).query).get("run_id", [""])[0]
            return url if re.search(r"/train(\?|$)", url) and run_id.startswith(run_name) else None

        budget.until(at_train, 60, f"the Train page's address with run_id={run_name}")
        heading = page.get_by_role("heading", name=run_name)  # its Run tab, with its curves
        budget.until(heading.count, 60, f"the Run tab shows {run_name}")
        assert page.get_by_role("heading", name="Training").count() == 1
        assert page.get_by_role("tab", name="Run", exact=True).get_attribute("aria-selected") == "true"
        budget.settled()
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "lab_cell_opened.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "FAILED-lab.png"), full_page=True, timeout=30_000)
        log = "\n".join(console[-200:])
        (ARTIFACTS / "FAILED-lab.txt").write_text(
            f"{page.url}\n\n--- waits\n" + "\n".join(budget.log) + f"\n\n--- console\n{log}\n\n"
            f"--- page\n{page.inner_text('body', timeout=30_000)}\n"
        )
        raise
    finally:
        print("waits of the lab test:\n" + "\n".join(budget.log))
        print(f"the lab test's body took {time.monotonic() - budget.started:.0f} s")
        context.close()
