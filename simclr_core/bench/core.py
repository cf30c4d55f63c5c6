"""Shared pieces of the benchmark suite: result records, timing, fresh-process workers, the reference.

Every figure is a median over repeats after a warm-up, measured in the same run as its
reference. Anything whose memory or cold-start time matters runs in a fresh subprocess
(``python -m simclr_core.bench.worker``) so one measurement cannot inherit another's
allocations, caches or compiled kernels.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "bench" / "tutorial_reference.py"


class BenchError(RuntimeError):
    """A measurement that could not be taken; the message says which and why."""


@dataclass
class Check:
    """One target of issue 6: what was measured against what was asked."""

    name: str
    measured: str
    target: str
    met: bool | None  # None: not measured in this run


@dataclass
class Section:
    """One block of BENCHMARKS.md: a markdown table plus the notes that make it honest."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # (caption, headers, rows)
    seconds: float = 0.0


@dataclass
class Options:
    """How hard to measure: ``quick`` shrinks every setting to a smoke test."""

    quick: bool = False
    device: str = "auto"
    reference: bool = True
    repeats: int = 5
    cells: str = ""  # bench quality: DATA:VARIANT:MINUTES,... (empty: all cells)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. An unavailable CUDA request is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from simclr_core.config import ConfigError

        raise ConfigError(f"--device {name}: no CUDA device is visible here; use --device cpu or auto")
    return dev


def sync(device: torch.device | str) -> None:
    """Wait for queued device work so wall-clock timing covers it (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu", warmup: int = 1, repeats: int = 5) -> list[float]:
    """Seconds per call of ``fn`` for each of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def peak_rss_mib() -> float:
    """High-water resident memory of this process in MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_path() -> Path | None:
    """The tutorial's runnable recipe in ../shared, or None where this checkout has no shared folder."""
    override = os.environ.get("SIMCLR_BENCH_REFERENCE")
    path = Path(override) if override else REFERENCE
    return path if path.is_file() else None


def load_reference_module() -> Any:
    """Import the reference script as a module (its ``main`` does not run) to reuse its exact pipeline."""
    import importlib.util

    path = reference_path()
    if path is None:
        raise BenchError(
            "the tutorial reference script is absent: set $SIMCLR_BENCH_REFERENCE to its path "
            "(a checkout looks in ../shared/bench/tutorial_reference.py)"
        )
    spec = importlib.util.spec_from_file_location("tutorial_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONWARNINGS", "ignore")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


# Linux carries a parent's high-water RSS into a child it forks and execs (the old mm's hiwater goes to
# the child's ru_maxrss), so a child started straight from this torch-laden process would report our
# peak, not its own. A tiny interpreter in between starts the measured process with a clean slate and
# reports the largest peak RSS among its descendants (the measured process and any workers it waited for).
_LAUNCH = (
    "import json, resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print(json.dumps({'__peak_rss_mib__': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})); "
    "sys.exit(rc)"
)
PEAK_KEY = "proc_peak_rss_mib"


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.strip().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def run_json(cmd: list[str], timeout: float, what: str) -> dict[str, Any]:
    """Run ``cmd`` in a fresh process and parse the last JSON line it prints.

    The result gains ``proc_peak_rss_mib``: the peak RSS of that process (the largest of its tree).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:  # timeout or Ctrl-C: the measured grandchild must not outlive us
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if sys.exc_info()[0] is subprocess.TimeoutExpired:
            raise BenchError(f"{what}: gave no answer within {timeout:.0f} s") from None
        raise
    if proc.returncode != 0:
        tail = [ln for ln in (stderr or stdout).strip().splitlines() if "__peak_rss_mib__" not in ln][-3:]
        raise BenchError(f"{what}: exit status {proc.returncode}: {' | '.join(tail)[:400]}")
    lines = _json_lines(stdout)
    peaks = [d["__peak_rss_mib__"] for d in lines if "__peak_rss_mib__" in d]
    results = [d for d in lines if "__peak_rss_mib__" not in d]
    if not results:
        raise BenchError(f"{what}: printed no JSON result: {stdout[-300:]!r}")
    return {**results[-1], PEAK_KEY: peaks[-1] if peaks else None}


def run_worker(kind: str, timeout: float = 900, **params: Any) -> dict[str, Any]:
    """One measurement in a fresh interpreter: ``python -m simclr_core.bench.worker KIND JSON``."""
    cmd = [sys.executable, "-m", "simclr_core.bench.worker", kind, json.dumps(params)]
    return run_json(cmd, timeout, f"worker {kind}")


def run_reference(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    """The tutorial's recipe as a subprocess, exactly as its ``--help`` documents."""
    path = reference_path()
    if path is None:
        raise BenchError("the tutorial reference is absent")
    return run_json([sys.executable, str(path), *args], timeout, "tutorial_reference.py " + " ".join(args))


def fmt(value: float | None, digits: int = 3) -> str:
    """Numbers for tables: three significant figures, thousands separated, '-' when missing."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - int(f"{mag:e}".split("e")[1]))
    return f"{value:.{decimals}f}"


def ratio(ours: float | None, ref: float | None, higher_is_better: bool) -> float | None:
    """How many times better ours is than the reference (> 1 means better)."""
    if not ours or not ref:
        return None
    return ours / ref if higher_is_better else ref / ours


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{fmt(value)}x"


def idle_process(imports: list[str], reference: bool = False) -> dict[str, Any]:
    """Peak RSS of a process that only imports ``imports`` (and the reference script if asked).

    The baseline subtracted from every peak-memory figure: torch alone maps hundreds of MiB,
    which no measured operation should be charged for.
    """
    import importlib

    for name in imports:
        importlib.import_module(name)
    if reference:
        load_reference_module()
    return {"peak_rss_mib": peak_rss_mib()}
