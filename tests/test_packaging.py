"""Packaging and CLI tidiness: the [project] table installs working commands; --version; help texts; no chatter.

The install test builds a wheel from a copy of the sources (``pip install --no-deps
--no-build-isolation --target``: offline, this venv's setuptools, the dependencies already here)
and runs the installed console scripts from outside the repository.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

import simclr_core
from simclr_core.__main__ import get_args_parser, main
from simclr_core.process import LIGHTNING_TIP_LOGGERS, quiet_library_chatter

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    "pyproject.toml",
    "README.md",
    "requirements.txt",
    "app.py",
    ".streamlit",
    "assets",
    "pages",
    "dashboard",
    "simclr_core",
]


def _subparser(name: str):
    return get_args_parser()._subparsers._group_actions[0].choices[name]


def _help_of(command: str, flag: str) -> str:
    action = next(a for a in _subparser(command)._actions if flag in a.option_strings)
    return action.help or ""


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"simclr-studio {simclr_core.__version__}"


def test_help_texts() -> None:
    assert "umap" in _help_of("embed", "--method") and "pca" in _help_of("embed", "--method")
    assert "2 or 3" in _help_of("embed", "--dims")
    image_size = _help_of("train", "--image-size")
    assert "small" not in image_size and "default 96" in image_size  # the default really is 96
    probe = _subparser("probe")
    assert "docstring" not in _help_of("probe", "--json")
    assert "table" in probe.format_help() and "timing_s" in probe.format_help()  # the fields --json's help points to


def test_quiet_library_chatter_drops_only_the_tip_and_the_leafspec_warning(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_chatter()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead.",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("some other future change", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["some other future change"]
    logger = logging.getLogger(LIGHTNING_TIP_LOGGERS[0])
    with caplog.at_level(logging.INFO, logger=LIGHTNING_TIP_LOGGERS[0]):
        logger.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        logger.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_project_table_matches_requirements() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["dynamic"]) == {"version", "dependencies"}  # single sources: __version__, requirements.txt
    assert project["scripts"] == {
        "simclr-studio": "simclr_core.__main__:cli",
        "simclr-studio-dashboard": "dashboard.launch:main",
    }
    requirements = (ROOT / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements  # projection.py imports it


def _third_party_imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in ``paths`` (files or folders), with a file each."""
    import ast

    local = {"simclr_core", "dashboard", "pages", "tests", "conftest"} | {
        p.stem for p in (ROOT / "tests").rglob("*.py")
    }
    found: dict[str, set[str]] = {}
    for path in paths:
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                        found.setdefault(top, set()).add(str(file.relative_to(ROOT)))
    return found


def _declared(*files: str) -> set[str]:
    """Distribution names (normalised) pinned in requirement files; ``-r`` lines are followed by the caller."""
    import re

    names = set()
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_every_imported_library_is_declared() -> None:
    """An import of the app or engine needs requirements.txt (the package's dependencies); the tests' also -dev."""
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()

    def missing(paths: list[Path], declared: set[str]) -> dict[str, set[str]]:
        gaps = {}
        for module, files in _third_party_imports(paths).items():
            names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not names & declared:
                gaps[module] = files
        return gaps

    app = [ROOT / "app.py", ROOT / "pages", ROOT / "dashboard", ROOT / "simclr_core"]
    assert missing(app, _declared("requirements.txt")) == {}
    assert missing([ROOT / "tests"], _declared("requirements.txt", "requirements-dev.txt")) == {}


def test_dashboard_launcher_finds_the_checkout_app() -> None:
    from dashboard import launch

    assert launch.app_path() == ROOT / "app.py"
    argv = launch.streamlit_argv(["--server.port", "8600"])
    assert argv[:3] == ["streamlit", "run", str(ROOT / "app.py")]
    assert "--server.headless=true" in argv and argv[-2:] == ["--server.port", "8600"]


def test_streamlit_parses_the_launchers_argv() -> None:
    """Streamlit's own click command accepts every flag made from the app's config ([theme.light] included)."""
    from streamlit.web.cli import main_run

    from dashboard import launch

    argv = launch.streamlit_argv(["--server.port", "8600"])
    context = main_run.make_context("run", argv[2:])
    assert context.params["target"] == str(ROOT / "app.py")
    assert context.params["server_headless"] is True and context.params["server_port"] == 8600
    assert context.params["theme_light_primaryColor"] == "#4f46e5"
    assert context.params["theme_dark_primaryColor"] == "#818cf8"


def test_config_flags_flatten_nested_tables_and_lists(tmp_path: Path) -> None:
    from streamlit.web.cli import main_run

    from dashboard import launch

    (tmp_path / "pages").mkdir()
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(
        "[server]\nheadless = true\nfolderWatchList = ['a', 'b']\n"
        "[theme.light]\nprimaryColor = '#111111'\n"
        "[theme.dark.sidebar]\nchartCategoricalColors = ['#222222', '#333333']\n"
    )
    flags = launch.config_flags(tmp_path / "app.py")
    assert flags == [
        "--server.headless=true",
        "--server.folderWatchList=a",
        "--server.folderWatchList=b",
        "--theme.light.primaryColor=#111111",
        '--theme.dark.sidebar.chartCategoricalColors=["#222222", "#333333"]',
    ]
    params = main_run.make_context("run", [str(tmp_path / "app.py"), *flags]).params
    assert params["server_folderWatchList"] == ("a", "b")
    assert params["theme_dark_sidebar_chartCategoricalColors"] == '["#222222", "#333333"]'


def _serves(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    """Start ``command`` (a Streamlit server) on a free port, wait for /_stcore/health and the page, stop it."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*command, "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, f"the dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, f"no health answer in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_pip_install_gives_working_commands(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert not (target / "pages").exists() and not (target / "app.py").exists()  # no generic top-level names
    for package in ("simclr_core", "dashboard"):
        for module in (ROOT / package).rglob("*.py"):
            assert (target / module.relative_to(ROOT)).is_file(), module
    app = target / "dashboard" / "app"
    assert sorted(p.name for p in (app / "pages").glob("*.py")) == sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert (app / ".streamlit" / "config.toml").is_file() and (app / "assets" / "pipeline.svg").is_file()
    metadata = next(target.glob("simclr_studio-*.dist-info")) / "METADATA"
    text = metadata.read_text()
    assert f"Version: {simclr_core.__version__}" in text
    assert "Requires-Dist: scikit-learn" in text and "Requires-Dist: torch==2.14.1" in text
    assert "Provides-Extra: tensorboard" in text

    env = {**os.environ, "PYTHONPATH": str(target)}
    run = tmp_path / "elsewhere"  # not the checkout: only the installed copy can be imported
    run.mkdir()

    def command(name: str, *args: str) -> str:
        out = subprocess.run(
            [str(target / "bin" / name), *args], cwd=run, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert command("simclr-studio", "--version").strip() == f"simclr-studio {simclr_core.__version__}"
    assert "probe" in command("simclr-studio", "--help")
    assert f"app: {app / 'app.py'}" in command("simclr-studio-dashboard", "--help")
    # The installed command starts a real server (the app's config as flags, ours after them) and serves the page.
    _serves(
        [str(target / "bin" / "simclr-studio-dashboard")],
        cwd=run,
        env={**env, "SIMCLR_STUDIO_RUNS": str(tmp_path / "runs")},
        log=tmp_path / "dashboard.log",
    )


def test_a_cli_process_prints_no_lightning_tip_and_no_leafspec_warning() -> None:
    """The real libraries: a Trainer (its litlogger tip) and Lightning's _pytree (torch's LeafSpec warning)."""
    code = (
        "from simclr_core.process import configure_process\n"
        "import sys\n"
        "if sys.argv[1] == 'configured':\n"
        "    configure_process()\n"
        "import torch, pytorch_lightning as pl\n"
        "from pytorch_lightning.utilities._pytree import _tree_flatten\n"
        "pl.Trainer(default_root_dir=sys.argv[2], enable_checkpointing=False)\n"
        "_tree_flatten(torch.tensor(1.0))\n"
        "import warnings; warnings.warn('kept', FutureWarning)\n"
    )

    def stderr(mode: str, tmp: Path) -> str:
        out = subprocess.run(
            [sys.executable, "-W", "default", "-c", code, mode, str(tmp)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        return out.stderr

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        quiet = stderr("configured", Path(tmp))
        assert "litlogger" not in quiet and "LeafSpec" not in quiet
        assert "kept" in quiet and "GPU available" in quiet  # other warnings and Lightning's info stay
