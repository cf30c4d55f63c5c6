"""The run directory: the one contract between training, the CLI, the dashboard and evaluation.

Layout (see ARCHITECTURE.md)::

    <runs_root>/<run_id>/config.json  status.json  metrics.jsonl  train.log
                         checkpoints/{last,best}.ckpt  tensorboard/  probe.json  features/
                         snapshots/step-<step>.pt (backbone-only, for the map's replay: simclr_core/snapshots.py)

Writers: one process (global rank 0) appends to ``metrics.jsonl`` (flushed per write, so
readers see complete lines) and replaces ``status.json`` atomically (tmp + rename).
Readers never lock: they tolerate a half-written last line and treat a ``running`` run
whose process is gone (same host) or whose heartbeat is stale as ``interrupted``.

Timestamps (``created_at``, ``started_at``, ``updated_at``, ``finished_at``, metric ``time``)
are Unix seconds (float). In status.json ``epoch`` is the 0-based epoch in progress, ``epochs`` the
planned total, ``step``/``total_steps`` optimiser steps, ``best`` = {metric, value, epoch, step} of
best.ckpt. Metric rows carry the 0-based ``epoch`` they belong to and the global ``step`` after
which they were measured (a validation row shares the step of the epoch's last training row).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from simclr_core.processes import pid_alive

STATES = ("queued", "running", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATES = ("queued", "running")
# A live writer refreshes updated_at every few seconds; past this the writer is presumed dead.
STALE_AFTER_S = 600.0
CHECKPOINTS = ("last", "best")
SNAPSHOT_NAME = re.compile(r"step-\d{8}\.pt")  # snapshots/step-<step>.pt; temporaries start with a dot
DEFAULT_RUNS_ROOT = Path("runs")


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.")
    return slug[:60] or "run"


def new_run_id(name: str | None = None) -> str:
    """``<name>-YYYYmmdd-HHMMSS-xxxxxx``: sortable by start time; 24 random bits make a clash within one
    second rare (a queue or a cluster starting many runs at once), and ``create_run`` retries the rare one."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    return f"{_slug(name or 'simclr')}-{stamp}-{secrets.token_hex(3)}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null so every reader can parse every line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write then rename, so a reader sees the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Run:
    """A run directory. Cheap to construct; every accessor reads the files fresh."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self._config: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def snapshot_dir(self) -> Path:
        return self.path / "snapshots"

    def snapshots(self) -> list[Path]:
        """Backbone snapshots written during training (``simclr_core/snapshots.py``), oldest first."""
        if not self.snapshot_dir.is_dir():
            return []
        return sorted(p for p in self.snapshot_dir.iterdir() if SNAPSHOT_NAME.fullmatch(p.name))

    # -- config -------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The whole config.json: {"kind", "config": TrainConfig dict, "versions", "device", ...}."""
        if self._config is None:
            self._config = self.read_object("config.json")
        return self._config

    @property
    def kind(self) -> str:
        return str(self.config.get("kind", "simclr"))

    @property
    def train_config(self) -> dict[str, Any]:
        """The TrainConfig dict (``config.json["config"]``); empty when config.json is broken."""
        inner = self.config.get("config")
        return dict(inner) if isinstance(inner, dict) else {}

    # -- status -------------------------------------------------------------------------------
    def raw_status(self) -> dict[str, Any]:
        """status.json exactly as written (empty dict if missing, unreadable or not a JSON object)."""
        return self.read_object("status.json")

    def status(self) -> dict[str, Any]:
        """status.json with the liveness check applied: a dead writer reads ``interrupted``."""
        status = self.raw_status()
        broken = self.broken()
        if broken:
            return {**status, "state": "failed", "message": broken}
        if not status:
            return {
                "state": "interrupted" if self.config_path.exists() else "failed",
                "message": "status.json is missing",
            }
        if status.get("state") in ACTIVE_STATES:
            reason = self._dead_writer_reason(status)
            if reason:
                status = {**status, "state": "interrupted", "message": reason}
        return status

    @staticmethod
    def _dead_writer_reason(status: dict[str, Any]) -> str | None:
        host, pid = status.get("host"), status.get("pid")
        if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
            return f"the training process (pid {pid}) is gone; resume it from last.ckpt"
        updated = status.get("updated_at")
        if isinstance(updated, int | float) and time.time() - updated > STALE_AFTER_S:
            return f"no heartbeat for {(time.time() - updated) / 60:.0f} min; the training process is presumed dead"
        return None

    @property
    def state(self) -> str:
        return str(self.status().get("state", "failed"))

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomic), stamping updated_at, pid and host."""
        status = self.raw_status()
        status.update({k: _clean(v) for k, v in fields.items()})
        status["updated_at"] = time.time()
        status.setdefault("pid", os.getpid())
        status.setdefault("host", socket.gethostname())
        write_json_atomic(self.status_path, status)
        return status

    # -- metrics ------------------------------------------------------------------------------
    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows (each with step, epoch, time, metrics) as complete lines, flushed."""
        text = "".join(json.dumps({k: _clean(v) for k, v in row.items()}, default=_json_default) + "\n" for row in rows)
        if not text:
            return
        with open(self.metrics_path, "a") as fh:
            fh.write(text)
            fh.flush()

    def read_metrics(self, since_offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Rows from byte ``since_offset`` on, and the offset to pass next time.

        Only complete lines are consumed: a half-written last line stays for the next call.
        Lines that are not JSON objects (a crash mid-write long ago) are skipped.
        """
        try:
            with open(self.metrics_path, "rb") as fh:
                fh.seek(since_offset)
                data = fh.read()
        except FileNotFoundError:
            return [], since_offset
        end = data.rfind(b"\n")
        if end < 0:
            return [], since_offset
        rows = []
        for line in data[: end + 1].splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows, since_offset + end + 1

    def metrics(self) -> list[dict[str, Any]]:
        """All complete metric rows, in order."""
        return self.read_metrics(0)[0]

    def truncate_metrics(self, max_step: int) -> int:
        """Keep rows with ``step <= max_step`` (resume from a checkpoint at that step); returns rows dropped.

        Also drops a trailing partial line left by a killed writer.
        """
        if not self.metrics_path.exists():
            return 0
        rows = self.metrics()
        keep = [r for r in rows if isinstance(r.get("step"), int) and r["step"] <= max_step]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        with open(tmp, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in keep)
        os.replace(tmp, self.metrics_path)
        return len(rows) - len(keep)

    # -- files --------------------------------------------------------------------------------
    def checkpoint(self, which: str = "last") -> Path | None:
        """Path of ``last`` or ``best`` checkpoint, or None if not written yet."""
        if which not in CHECKPOINTS:
            raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {which!r}")
        path = self.checkpoint_dir / f"{which}.ckpt"
        return path if path.is_file() else None

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``<run>/<name>`` atomically (probe.json and other results)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, obj)
        return path

    def read_object(self, name: str) -> dict[str, Any]:
        """``<run>/<name>`` when it holds a JSON object, else {} (missing, half-written or foreign)."""
        value = self.read_json(name)
        return value if isinstance(value, dict) else {}

    def broken(self) -> str | None:
        """Why this directory cannot be read as a run (config.json or status.json not a JSON object), or None."""
        for name in ("config.json", "status.json"):
            path = self.path / name
            if path.exists() and not isinstance(self.read_json(name), dict):
                return f"{name} is damaged (not a JSON object); this run cannot be shown or resumed"
        return None

    def read_json(self, name: str) -> Any:
        """Parsed ``<run>/<name>``, or None if missing or unreadable."""
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def log(self, message: str) -> None:
        """Append a timestamped line to train.log."""
        with open(self.log_path, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message.rstrip()}\n")


MARKER = ".simclr-studio-run"  # written by create_run: what makes a folder a run, not any config.json
KINDS = ("simclr", "supervised")


def is_run_dir(path: Path) -> bool:
    """A folder the run store made: its marker, or (runs made before the marker) a config.json of its own shape."""
    if (path / MARKER).is_file():
        return True
    if not (path / "config.json").is_file():
        return False
    config = Run(path).config
    return config.get("kind") in KINDS and isinstance(config.get("config"), dict)


def create_run(
    runs_root: str | Path,
    config: dict[str, Any],
    *,
    name: str | None = None,
    kind: str = "simclr",
    extra: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> Run:
    """Make a new run directory with config.json and a ``queued`` status."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = root / (run_id or new_run_id(name))
        try:
            path.mkdir()
            break
        except FileExistsError:
            if run_id:
                raise
    else:
        raise FileExistsError(f"could not create a unique run directory under {root}")
    (path / "checkpoints").mkdir()
    run = Run(path)
    write_json_atomic(run.config_path, {"kind": kind, "name": name or path.name, "config": config, **(extra or {})})
    now = time.time()
    run.write_status(
        state="queued",
        message="",
        epoch=0,
        step=0,
        total_steps=None,
        progress=0.0,
        eta_s=None,
        created_at=now,
        started_at=None,
        finished_at=None,
    )
    (path / MARKER).write_text("1\n")  # last: a reader listing runs never finds one without its files
    return run


def list_runs(runs_root: str | Path = DEFAULT_RUNS_ROOT, kind: str | None = None) -> list[Run]:
    """Run directories under ``runs_root``, newest first; ``kind`` filters on config.json's kind."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if p.is_dir() and is_run_dir(p)]
    if kind is not None:
        runs = [r for r in runs if r.kind == kind]

    def created(run: Run) -> float:
        with contextlib.suppress(TypeError, ValueError):
            return float(run.raw_status().get("created_at"))
        with contextlib.suppress(OSError):  # a broken or vanishing run still lists, last
            return run.path.stat().st_mtime
        return 0.0

    return sorted(runs, key=created, reverse=True)
