"""Cached engine calls: datasets, the run store, the device and the warm-up.

Shared by every session where sharing is safe (``st.cache_resource``: decoded datasets, the
device, the warm-up job); the run store is read on each rerun, metrics incrementally, so a
page always shows what the training writes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import streamlit as st

from dashboard.errors import attempt, log
from dashboard.figures import MetricRow
from dashboard.state import current_training, runs_root
from simclr_core.jobs import Job, spawn
from simclr_core.store import Run

if TYPE_CHECKING:
    from simclr_core.config import TrainConfig
    from simclr_core.data import ImageSet
    from simclr_core.estimate import Estimate
    from simclr_core.memory import MemoryNeed

Row = dict[str, object]  # one table row as st.dataframe takes it
Status = dict[str, Any]  # status.json: a JSON object (see the run store)
BUILTIN_SPECS = ("shapes:train", "shapes:test", "shapes:unlabeled")


# ---------------------------------------------------------------------------------------------- datasets


@st.cache_resource(max_entries=6, show_spinner=False)
def dataset(spec: str, image_size: int) -> ImageSet:
    """A decoded ImageSet, shared by every session (uint8 arrays, memory-mapped when large)."""
    from dashboard.paths import check_data
    from simclr_core.data import load_dataset

    check_data(spec)
    return load_dataset(spec, image_size=image_size)


def _available() -> list[dict[str, Any]]:
    from simclr_core.data import available_datasets, data_root

    return attempt("list the datasets", available_datasets, data_root()) or []


def dataset_choices() -> list[str]:
    """Specs for the sidebar's picker: what the data layer lists, the built-in splits, the current spec."""
    specs = [str(d["spec"]) for d in _available()]
    specs += [s for s in BUILTIN_SPECS if s not in specs]
    current = st.session_state.get("data_spec")
    if current and current not in specs:
        specs.insert(0, current)
    return specs


def dataset_rows() -> list[Row]:
    """The datasets Home lists, as plain rows."""
    rows: list[Row] = []
    for item in _available():
        sizes = item.get("cached_sizes") or []
        rows.append(
            {
                "spec": str(item.get("spec", "")),
                "status": str(item.get("status", "")),
                "labelled": bool(item.get("labelled")),
                "images": item.get("images"),
                "classes": item.get("classes"),
                "decoded at": ", ".join(f"{s}px" for s in sizes),
                "about": str(item.get("description", "")),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- runs


def list_runs() -> list[Run]:
    from simclr_core import store

    root = runs_root()
    if not root.is_dir():
        return []
    return attempt("list the runs", store.list_runs, root) or []


def run_names() -> list[str]:
    return [r.path.name for r in list_runs()]


def open_run(name: str | None) -> Run | None:
    if not name or "/" in name or name in (".", ".."):  # a run id, never a path out of the runs folder
        return None
    path = runs_root() / name
    if not path.is_dir():
        return None
    return attempt(f"open run {name}", Run, path)


def current_run() -> Run | None:
    """The sidebar's run."""
    return open_run(st.session_state.get("run_id"))


def run_state(run: Run) -> Status:
    """status.json as read by the store (a dead writer reads as interrupted); {} when unreadable."""
    return attempt(f"read the status of {run.path.name}", run.status) or {}


def run_label(name: str | None) -> str:
    if not name:
        return "—"
    run = open_run(name)
    state = run_state(run).get("state", "?") if run is not None else "?"
    method = run.train_config.get("method", "simclr") if run is not None and run.kind == "simclr" else None
    return f"{name} · {method} · {state}" if method else f"{name} · {state}"


def run_rows() -> list[Row]:
    """The runs Home lists, newest first."""
    rows: list[Row] = []
    for run in list_runs():
        status = run_state(run)
        created = status.get("created_at")
        rows.append(
            {
                "run": run.id,
                "kind": run.kind,
                "state": status.get("state", "?"),
                "epoch": status.get("epoch"),
                "progress": float(status.get("progress") or 0.0),
                "data": run.train_config.get("data"),
                "message": status.get("message") or "",
                "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
                if isinstance(created, int | float)
                else "",
            }
        )
    return rows


def metric_rows(run: Run) -> list[MetricRow]:
    """All metric rows of a run, read incrementally (only new bytes of metrics.jsonl on each poll)."""
    cache: dict[str, tuple[int, float, list[MetricRow]]] = st.session_state.setdefault("_metrics_cache", {})
    key = str(run.path)
    offset, _, rows = cache.get(key, (0, 0.0, []))
    try:
        now_size = run.metrics_path.stat().st_size
    except OSError:
        now_size = 0
    if now_size < offset:  # truncated by a resume: read again from the start
        offset, rows = 0, []
    new, offset = run.read_metrics(offset)
    rows = rows + new
    cache[key] = (offset, now_size, rows)
    return rows


# ---------------------------------------------------------------------------------------------- device


class DeviceSummary(TypedDict, total=False):
    kind: str  # "cuda" or "cpu"
    name: str
    torch: str
    threads: int
    cpus: int | None
    memory_gb: float
    count: int
    bf16: bool


@st.cache_resource
def device_summary() -> DeviceSummary:
    """What the engine will train on: GPU name and memory, else CPU threads."""
    import torch

    info = DeviceSummary(torch=torch.__version__, threads=torch.get_num_threads(), cpus=os.cpu_count())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            kind="cuda",
            name=props.name,
            memory_gb=props.total_memory / 2**30,
            count=torch.cuda.device_count(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    else:
        info.update(kind="cpu", name=_cpu_name())
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


# ---------------------------------------------------------------------------------------------- warm-up


def _warm_up(job: Job[None]) -> None:
    """Load (or compile, once per machine) the CPU augmentation kernel, then UMAP's numba code."""
    from simclr_core import augment_cpu, projection

    steps = [("the first preview", augment_cpu.warm_up), ("UMAP on first use", projection.warm_up_umap)]
    for i, (waits, fn) in enumerate(steps):
        job.report(i / len(steps), f"compiling for {waits}")
        try:
            fn()
        except Exception:
            log.warning("Warm-up failed; %s will compile instead", waits, exc_info=True)


@st.cache_resource
def warm_up_job() -> Job[None]:
    """The server's one warm-up, started by the first run of app.py."""
    return spawn("warm-up", _warm_up, name="simclr-studio-warm-up")


def umap_ready() -> bool:
    from simclr_core import projection

    return bool(projection.umap_ready())


# ---------------------------------------------------------------------------------------------- estimates


def memory_need(cfg: TrainConfig) -> MemoryNeed:
    """The peak memory ``cfg`` needs here; ConfigError with the figure and what to lower when it exceeds what is free."""
    from simclr_core.devices import resolve_device, resolve_precision
    from simclr_core.memory import check

    accelerator, _ = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, accelerator, cfg.image_size)
    world = max(1, cfg.devices * cfg.num_nodes)
    return check(cfg, precision, accelerator, cfg.batch_size // world, processes_here=cfg.devices)


def memory_caption() -> str:
    """The Train form's settings' memory need against what is free here ("" while they do not validate)."""
    from simclr_core.config import ConfigError
    from simclr_core.memory import GiB, available_host

    try:
        cfg = current_training()
    except (ValueError, TypeError):  # the form's own check says why when Start is pressed
        return ""
    try:
        need = memory_need(cfg)
    except ConfigError as err:
        return f":red[Memory: {err}]"
    return f"Memory: {need.summary()}, with {available_host() / GiB:.1f} GiB RAM free on this server."


@st.cache_data(max_entries=32, show_spinner="Timing a few training steps on this machine ...")
def seconds_per_image(config_json: str) -> float:
    """Measured seconds per training image of these settings here (cached: the hardware does not change)."""
    import json

    from simclr_core.config import TrainConfig
    from simclr_core.estimate import seconds_per_image as measure

    return measure(TrainConfig.from_dict(json.loads(config_json)))


def estimate(cfg: TrainConfig) -> Estimate | None:
    """How long ``cfg`` would train here, or None (and a message) when its data cannot be loaded."""
    import json

    from simclr_core.config import ConfigError
    from simclr_core.devices import torch_device
    from simclr_core.estimate import Estimate

    try:
        memory_need(cfg)
    except ConfigError:
        return None  # nothing loaded or timed: Start then shows the engine's refusal with the figure
    data = attempt("load the training data", dataset, cfg.data, cfg.image_size)
    if data is None:
        return None
    n = len(data.images) if cfg.limit_images is None else min(len(data.images), cfg.limit_images)
    per_image = attempt("time a training step", seconds_per_image, json.dumps(cfg.to_dict(), sort_keys=True))
    if per_image is None:
        return None
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    return Estimate(per_image, n, cfg.epochs, budget, torch_device(cfg.device).type)
