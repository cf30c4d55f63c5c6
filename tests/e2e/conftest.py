"""A real `streamlit run app.py` on a free port, and Debian's chromium driven by Playwright.

Never `playwright install`: the browser is the system's /usr/bin/chromium (skip if absent).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        message = "/usr/bin/chromium is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("SIMCLR_STUDIO_REQUIRE_BROWSER"):  # CI (.ci/run) must not skip them silently
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def serve(
    runs: Path, data_root: Path, log: Path, address: str = "127.0.0.1", env_extra: dict[str, str] | None = None
) -> Iterator[str]:
    """``streamlit run app.py`` on a free port with its own runs folder, until the block ends.

    ``address``: where it listens (0.0.0.0 is beyond loopback: the password applies); the browser
    always connects through 127.0.0.1.
    """
    port = _free_port()
    env = {
        **os.environ,
        **(env_extra or {}),
        "SIMCLR_STUDIO_RUNS": str(runs),
        "SIMCLR_STUDIO_DATA": str(data_root),
        "SIMCLR_STUDIO_DEFAULT_DATA": "shapes:train?n=10",  # 100 images: the sidebar's default, quick to make
        # One core for training leaves the other to the server and the browser: pages stay responsive on 2 cores.
        "OMP_NUM_THREADS": os.environ.get("SIMCLR_STUDIO_E2E_THREADS", "1"),
    }
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / log.name).write_text(log.read_text())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[str]:
    """The dashboard for the whole session; the session's data root is shared."""
    _require_chromium()
    log = tmp_path_factory.mktemp("e2e_log") / "streamlit.log"
    with serve(tmp_path_factory.mktemp("e2e_runs"), data_root, log) as url:
        yield url


@pytest.fixture
def fresh_server(tmp_path: Path, data_root: Path) -> Iterator[str]:
    """A dashboard server no browser has opened yet (Streamlit's first run decides its navigation mode)."""
    _require_chromium()
    with serve(tmp_path / "runs", data_root, tmp_path / "streamlit-fresh.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser(server: str) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1200})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"page error: {e}"))
    pg.on("crash", lambda _: console.append("the page crashed (renderer process gone)"))
    pg.console_log = console  # read by screenshot_on_failure
    yield pg
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed
        page = item.funcargs.get("page") if report.failed else None
        if page is not None:  # in the failure report itself: CI logs keep no artifacts
            try:
                text = f"{page.url}\n{page.inner_text('body', timeout=10_000)[-4000:]}"
            except Exception as e:  # noqa: BLE001  (a crashed page must not hide the test's own failure)
                text = f"could not read the page: {e}"
            report.sections.append(("what the page showed", text))


FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """What the browser showed when a test failed: test-artifacts/FAILED-<test>.png, and .txt with the
    page's address, the browser console of the session and the page's text."""
    yield
    if request.node.stash.get(FAILED, False) and "page" in request.fixturenames:
        ARTIFACTS.mkdir(exist_ok=True)
        page = request.getfixturevalue("page")
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
        console = "\n".join(getattr(page, "console_log", [])[-200:])
        text = f"{page.url}\n\n--- console\n{console}\n\n--- page text\n{page.inner_text('body')}\n"
        (ARTIFACTS / f"FAILED-{request.node.name}.txt").write_text(text)
        if "server" in request.fixturenames:
            _stop_a_run_left_training(page, request.getfixturevalue("server"))


def _stop_a_run_left_training(page: object, server: str) -> None:
    """After a failure in the shared server: stop a run the test left training, so it cannot starve the next tests.

    Best effort (the failure itself is already reported): the Train page's Run tab, Stop, until Resume shows.
    """
    try:
        page.goto(f"{server}/train")  # type: ignore[attr-defined]
        page.wait_for_selector("h1", timeout=120_000)  # type: ignore[attr-defined]
        page.get_by_role("tab", name="Run", exact=True).click(timeout=60_000)  # type: ignore[attr-defined]
        # exact, and not Streamlit's header "Stop" (shown while a script runs), which stops a rerun, not a run
        stop = page.get_by_role("button", name="Stop", exact=True).and_(  # type: ignore[attr-defined]
            page.locator('button:not([kind="header"])')  # type: ignore[attr-defined]
        )
        if stop.count():
            stop.first.click(timeout=60_000)
            page.get_by_role("button", name="Resume").wait_for(timeout=240_000)  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001  (must not mask the test's own failure)
        print(f"could not stop a run left training after the failure: {e}")
