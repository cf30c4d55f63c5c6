"""The run directory a training writes: created with its metadata, or reopened to resume from last.ckpt.

Only global rank 0 writes; other DDP ranks get no run here. Every writer holds the run's lock
(``run_lock``) from opening to the end of training. A resumed run is checked before any data is
loaded (not alive, not done, a loadable last.ckpt) and then cut back to its checkpoint: metric rows
past its step dropped, the temporary files a killed writer left removed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torchvision

from simclr_core.config import ConfigError, TrainConfig
from simclr_core.distributed import env_global_rank
from simclr_core.model import CheckpointError
from simclr_core.preflight import Prepared
from simclr_core.run_lock import RunLock
from simclr_core.safe_load import resume_step
from simclr_core.store import Run, create_run, write_json_atomic


def versions() -> dict[str, str]:
    """The library versions config.json records, so a result can be traced to the software that made it."""
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch_lightning": pl.__version__,
        "numpy": numpy.__version__,
    }


def device_description(accelerator: str) -> str:
    """The training device in words, as config.json records it (the benchmarks report it)."""
    if accelerator == "gpu" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def run_extra(prepared: Prepared) -> dict[str, Any]:
    """What config.json records beside the config: software, device, processes and data of this run."""
    return {
        "versions": versions(),
        "device": device_description(prepared.accelerator),
        "precision": prepared.precision,
        "world_size": prepared.world,
        "per_device_batch": prepared.per_device_batch,
        "train_images": len(prepared.train_images),
        "val_data": prepared.val_spec,
    }


def open_for_resume(run_dir: str | Path) -> tuple[Run, TrainConfig, Path]:
    """A stopped/interrupted/failed run, its config and last.ckpt; refuses runs that are alive or done."""
    run = Run(run_dir)
    if not run.config_path.is_file():
        raise ConfigError(f"--resume {run_dir}: not a run directory (no config.json)")
    broken = run.broken()
    if broken:
        raise ConfigError(f"--resume {run_dir}: {broken}")
    if run.kind != "simclr":
        raise ConfigError(f"--resume {run_dir}: a {run.kind} run, not a SimCLR run")
    state = run.state
    if state in ("running", "queued"):
        raise ConfigError(f"run {run.id} is still {state} (pid {run.raw_status().get('pid')}); stop it first")
    ckpt = run.checkpoint("last")
    if ckpt is None:
        raise ConfigError(
            f"run {run.id} has no checkpoints/last.ckpt yet (it stopped before its first save); start a new run instead"
        )
    RunLock(run.path).check_free()  # fail fast, before data loading; open_run takes the lock itself
    try:
        resume_step(ckpt)
    except CheckpointError as err:
        raise ConfigError(f"cannot resume run {run.id}: {err}") from None
    return run, TrainConfig.from_dict(run.train_config), ckpt


def resolve(
    config: TrainConfig | None, resume: str | Path | None, overrides: dict[str, Any] | None
) -> tuple[TrainConfig, Run | None, Path | None]:
    """(config, run to resume or None, its last.ckpt or None), with ``overrides`` applied."""
    run = ckpt = None
    if resume is not None:
        if env_global_rank() > 0:  # DDP rank > 0 (any launcher): rank 0 checked it and writes
            run = Run(resume)
            config, ckpt = TrainConfig.from_dict(run.train_config), run.checkpoint_dir / "last.ckpt"
        else:
            run, config, ckpt = open_for_resume(resume)
    if config is None:
        raise ConfigError("training needs a TrainConfig or a run directory to resume")
    if overrides:
        config = replace(config, **overrides)
    return config, run, ckpt


def open_run(
    prepared: Prepared, runs_root: str | Path, name: str | None, resumed: Run | None, ckpt: Path | None
) -> tuple[Run | None, RunLock | None]:
    """The run this process writes, locked: a new one, the resumed one (metrics cut at the checkpoint), or None."""
    if env_global_rank() > 0:
        return None, None  # rank 0 writes (torchrun/SLURM ranks never learn its directory); this one only computes
    if resumed is None:
        run = create_run(runs_root, prepared.config.to_dict(), name=name, kind="simclr", extra=run_extra(prepared))
        return run, RunLock(run.path).acquire()
    assert ckpt is not None
    lock = RunLock(resumed.path).acquire()  # before anything changes: a second writer is refused here
    try:
        _resume_files(resumed, prepared, ckpt)
    except BaseException:
        lock.release()
        raise
    return resumed, lock


def remove_stale_temporaries(run: Run) -> list[str]:
    """Temporary files a killed writer left (a half-written ``.last.ckpt.tmp`` can be 100+ MB); only under the lock."""
    removed = []
    for folder in (run.path, run.checkpoint_dir):
        for tmp in sorted(folder.glob(".*.tmp")):
            with contextlib.suppress(OSError):
                size = tmp.stat().st_size
                tmp.unlink()
                removed.append(f"{tmp.name} ({size / 2**20:.1f} MiB)")
    return removed


def _resume_files(resumed: Run, prepared: Prepared, ckpt: Path) -> None:
    removed = remove_stale_temporaries(resumed)
    if removed:
        resumed.log("removed stale temporary files: " + ", ".join(removed))
    step = resume_step(ckpt)
    dropped = resumed.truncate_metrics(step)
    resumed.log(
        f"resuming from {ckpt.name} at step {step}" + (f"; dropped {dropped} metric rows past it" if dropped else "")
    )
    cfg_json = dict(resumed.config)
    if cfg_json.get("config") != prepared.config.to_dict():
        cfg_json["config"] = prepared.config.to_dict()
        write_json_atomic(resumed.config_path, cfg_json)
    resumed.write_status(
        state="queued", message="resuming", pid=os.getpid(), host=socket.gethostname(), finished_at=None
    )
