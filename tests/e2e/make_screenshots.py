"""Make the README's screenshots: the real dashboard on a real run, in Debian's chromium.

    python tests/e2e/make_screenshots.py --runs RUNS_DIR [--data DATA_ROOT]

RUNS_DIR should hold one finished SimCLR run with a probe.json (``python -m simclr_core probe
--run RUN``), so every page has something to show; the pictures land in assets/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, _wait_healthy  # noqa: E402  (the tests' own harness)


def _settle(page, seconds: float = 3.0) -> None:
    """Wait for the script to finish, skeletons to go and charts to draw."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=300_000)
    deadline = time.time() + 300
    while time.time() < deadline and page.locator('[data-testid="stSkeleton"], [data-testid="stSpinner"]').count():
        time.sleep(0.5)
    time.sleep(seconds)


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(300_000)
        for name in ("home", "augment", "train", "embeddings", "probe"):
            page.goto(f"{url}/{'' if name == 'home' else name}")
            page.wait_for_selector("h1")
            _settle(page)
            if name == "embeddings":
                page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
                _settle(page)
            page.screenshot(path=str(out / f"screenshot_{name}.png"))
            print(f"wrote {out / f'screenshot_{name}.png'}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="runs folder with one finished, probed run")
    parser.add_argument("--data", type=Path, help="data root (default: $SIMCLR_STUDIO_DATA or ~/.cache/simclr-studio)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "SIMCLR_STUDIO_RUNS": str(args.runs.resolve())}
    if args.data:
        env["SIMCLR_STUDIO_DATA"] = str(args.data.resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    with open(log, "w") as fh:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, server, log, timeout=120)
        shoot(url, args.out)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
