"""Render an ``ablate --out FILE.json`` matrix as the dashboard's heatmap, to a PNG for the README.

The figure is the Augment page's own (``dashboard.lab_figures.ablation_heatmap``), drawn by Plotly in
Debian's chromium through Playwright (no kaleido needed). Usage:
``.venv/bin/python benchmarks/ablation_figure.py ablation.json assets/ablation_cifar10.png --title "CIFAR-10"``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path, help="the JSON file `ablate --out` wrote")
    parser.add_argument("png", type=Path, help="where the picture goes")
    parser.add_argument(
        "--title",
        default=None,
        help="the title above the heatmap (default: the figure's own, which names the scored data)",
    )
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=520)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from dashboard.lab_figures import ablation_heatmap
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # the browser tests' chromium and flags

    fig = ablation_heatmap(json.loads(args.matrix.read_text()))
    if args.title:
        fig.update_layout(title_text=args.title)
    fig.update_layout(width=args.width, height=args.height)
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "figure.html"
        fig.write_html(page_file, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".main-svg")
            page.locator(".plotly").first.screenshot(path=str(args.png))
            browser.close()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
