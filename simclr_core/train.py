"""Run a SimCLR training into a run directory: blocking (`train`) or in a background thread (`TrainingJob`).

Order of events, so that no work is lost and nothing starts on bad settings:

1. ``prepare``: validate the config, load the data, check data-dependent limits (batch vs images,
   labelled validation images). Any problem raises ConfigError/DatasetError before a run exists.
2. ``create_run`` (or reopen one to resume: metrics past the checkpoint's step are dropped).
3. ``trainer.fit`` with the callbacks of ``callbacks.run_callbacks``: step metrics in batches every
   ~2 s (first step at once), status heartbeat with progress/ETA every ~3 s, validation row per
   epoch, ``last.ckpt`` every epoch and on stop, ``best.ckpt`` on the monitored metric.
4. ``_final_status`` from the stop policy's reason: NaN/inf -> failed, stop request -> stopped,
   ``max_minutes`` -> finished with the reason, else finished.

Batch size is global: each of W processes takes ``batch_size // W`` images per step.
Only global rank 0 writes the run directory; under Lightning's DDP launcher the other ranks
re-run the same command and learn the directory from ``$SIMCLR_RUN_DIR``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torchvision
from torch.utils.data import DataLoader

from simclr_core.callbacks import Progress, RunCallbacks, run_callbacks
from simclr_core.config import ConfigError, TrainConfig
from simclr_core.data import DatasetError, ImageSet, load_dataset
from simclr_core.data.batches import EpochBatches, UInt8Images, balanced_subset, batch_loader, knn_query_mask
from simclr_core.data.spec import sibling_spec
from simclr_core.devices import resolve_device, resolve_precision
from simclr_core.distributed import env_global_rank
from simclr_core.jobs import Job
from simclr_core.memory import check as check_memory
from simclr_core.model import CheckpointError
from simclr_core.module import SimCLRModule
from simclr_core.run_lock import RunLock
from simclr_core.safe_load import clean_message, resume_step
from simclr_core.signals import keep_our_handlers
from simclr_core.store import Run, create_run, write_json_atomic

RUN_DIR_ENV = "SIMCLR_RUN_DIR"


class StoppedBeforeStart(Exception):
    """A stop was requested while settings were checked and data loaded: no run directory was made."""


def stop_while_loading(stop_event: threading.Event | None) -> Callable[[str, float], None] | None:
    """A data-progress callback that ends decoding at its next report once a stop is requested.

    Decoding a large folder takes minutes; a signal then should not wait for it. The raise unwinds
    through the cache writer, which removes its half-written entry.
    """
    if stop_event is None:
        return None

    def check(message: str, fraction: float) -> None:
        if stop_event.is_set():
            raise StoppedBeforeStart(f"stopped while {message} ({fraction:.0%} done); nothing was written")

    return check


@dataclass
class Prepared:
    """Everything ``train`` needs, checked before a run directory exists."""

    config: TrainConfig
    train_set: ImageSet
    train_images: torch.Tensor
    val_images: torch.Tensor | None
    val_labels: torch.Tensor | None
    knn_mask: torch.Tensor | None
    val_spec: str | None
    accelerator: str
    devices: Any
    precision: str
    world: int
    per_device_batch: int
    train_labels: torch.Tensor | None = None  # (N,) int64, only for a method that trains on labels (supcon)


def default_val_spec(data: str) -> str | None:
    """The labelled train split of the training source (the seed's validation set), if it has one."""
    try:
        return sibling_spec(data, "train")
    except (DatasetError, ValueError):
        return None


def prepare(config: TrainConfig, data_progress: Callable[..., None] | None = None) -> Prepared:
    """Validate settings and load data; raise ConfigError/DatasetError on anything that cannot work."""
    config.validate()
    check_strategy(config.strategy)
    if config.aug.crop_size != config.image_size:  # views are image_size; keep config.json saying so
        config = replace(config, aug=replace(config.aug, crop_size=config.image_size))
    accelerator, device_list = resolve_device(config.device)
    precision = resolve_precision(config.precision, accelerator, config.image_size)
    devices = device_list or config.devices
    world = (len(devices) if isinstance(devices, list) else int(devices)) * config.num_nodes
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} is global and must divide evenly over {world} processes")
    per_device = config.batch_size // world
    if per_device < 2:
        raise ConfigError(f"batch_size {config.batch_size} over {world} processes leaves fewer than 2 images each")
    here = world // config.num_nodes  # processes on this host
    check_memory(config, precision, accelerator, per_device, processes_here=here)  # before any data is decoded
    kwargs = {"progress": data_progress} if data_progress else {}
    train_set = load_dataset(config.data, config.image_size, **kwargs)
    images = train_set.images
    if config.limit_images is not None:
        images = images[: config.limit_images]
    n = int(images.shape[0])
    if config.batch_size > n:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the {n} training images of {config.data!r}; "
            f"lower --batch-size to at most {n} or use more images"
        )
    train_labels = _train_labels(config, train_set.labels[:n]) if config.method == "supcon" else None
    val_spec = config.val_data or default_val_spec(config.data)
    val_images = val_labels = mask = None
    if val_spec:
        val_set = train_set if val_spec == train_set.spec else load_dataset(val_spec, config.image_size, **kwargs)
        labelled = (val_set.labels >= 0).nonzero().flatten()
        if len(labelled) >= 2:
            keep = labelled
            if config.val_limit is not None and config.val_limit < len(keep):
                keep = keep[balanced_subset(val_set.labels[keep], config.val_limit, config.seed)]
            query = knn_query_mask(val_set.labels[keep], config.seed)
            keep = torch.cat([keep[query], keep[~query]])  # queries first: whole batches of them for val_*
            copy = len(keep) * 3 * config.image_size**2  # the validation images about to be copied into RAM
            check_memory(config, precision, accelerator, per_device, data_bytes=copy, processes_here=here)
            val_images, val_labels = val_set.images[keep], val_set.labels[keep].clone()
            mask = torch.arange(len(keep)) < int(query.sum())
        elif config.val_data:
            raise ConfigError(f"validation data {val_spec!r} has fewer than 2 labelled images; give a labelled split")
    if mask is None and config.monitor == "knn_acc":
        raise ConfigError("monitor knn_acc needs labelled validation data (--val-data); use --monitor val_acc_top5")
    return Prepared(
        config,
        train_set,
        images,
        val_images,
        val_labels,
        mask,
        val_spec,
        accelerator,
        devices,
        precision,
        world,
        per_device,
        train_labels,
    )


def _train_labels(config: TrainConfig, labels: torch.Tensor) -> torch.Tensor:
    """The training images' labels for supcon, refused in one line when some image has none."""
    missing = int((labels < 0).sum())
    if missing:
        raise ConfigError(
            f"method supcon trains on labels, but {missing} of the {len(labels)} training images of {config.data!r} "
            "have none; train on a labelled split (e.g. cifar10:train, shapes:train) or use a self-supervised method"
        )
    return labels.clone()


# -- recording ------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch_lightning": pl.__version__,
        "numpy": numpy.__version__,
    }


def _device_description(accelerator: str) -> str:
    if accelerator == "gpu" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


# -- the run --------------------------------------------------------------------------------------
def build_trainer(
    prepared: Prepared, callbacks: list[pl.Callback], run: Run | None, progress_bar: bool = False
) -> pl.Trainer:
    """A Lightning Trainer that writes nothing itself: ``callbacks`` (``run_callbacks``) own the run directory."""
    cfg = prepared.config
    return pl.Trainer(
        accelerator=prepared.accelerator,
        devices=prepared.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=prepared.precision,
        max_epochs=cfg.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=str(run.path) if run else None,
        callbacks=callbacks,
    )


def _loaders(prepared: Prepared) -> tuple[DataLoader, DataLoader | None]:
    cfg = prepared.config
    pin = prepared.accelerator == "gpu"
    train_sampler = EpochBatches(
        len(prepared.train_images), prepared.per_device_batch, shuffle=True, seed=cfg.seed, world=prepared.world
    )
    train = batch_loader(UInt8Images(prepared.train_images, prepared.train_labels), train_sampler, pin)
    val = None
    if prepared.val_images is not None:
        val_sampler = EpochBatches(
            len(prepared.val_images), prepared.per_device_batch, shuffle=False, world=prepared.world
        )
        val = batch_loader(UInt8Images(prepared.val_images, prepared.val_labels), val_sampler, pin)
    return train, val


def check_strategy(name: str) -> None:
    """Lightning's strategy names, refused here rather than by the Trainer once a run directory exists."""
    from pytorch_lightning.strategies import StrategyRegistry

    known = ("auto", *StrategyRegistry.available_strategies())
    if name not in known:
        common = ", ".join(n for n in known if "_" not in n or n == "ddp_spawn")
        raise ConfigError(f"unknown strategy {name!r}; choose one of {common} (or another Lightning strategy name)")


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
    RunLock(run.path).check_free()  # fail fast, before data loading; _open_run takes the lock itself
    try:
        resume_step(ckpt)
    except CheckpointError as err:
        raise ConfigError(f"cannot resume run {run.id}: {err}") from None
    return run, TrainConfig.from_dict(run.train_config), ckpt


def _run_extra(prepared: Prepared) -> dict[str, Any]:
    return {
        "versions": _versions(),
        "device": _device_description(prepared.accelerator),
        "precision": prepared.precision,
        "world_size": prepared.world,
        "per_device_batch": prepared.per_device_batch,
        "train_images": len(prepared.train_images),
        "val_data": prepared.val_spec,
    }


def _resolve(
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


def _open_run(
    prepared: Prepared, runs_root: str | Path, name: str | None, resumed: Run | None, ckpt: Path | None
) -> tuple[Run | None, RunLock | None]:
    """The run this process writes, locked: a new one, the resumed one (metrics cut at the checkpoint), or None."""
    if env_global_rank() > 0:
        return None, None  # rank 0 writes (torchrun/SLURM ranks never learn its directory); this one only computes
    if resumed is None:
        run = create_run(runs_root, prepared.config.to_dict(), name=name, kind="simclr", extra=_run_extra(prepared))
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


def train(
    config: TrainConfig | None = None,
    runs_root: str | Path = "runs",
    name: str | None = None,
    resume: str | Path | None = None,
    stop_event: threading.Event | None = None,
    progress: Progress | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    progress_bar: bool = False,
    on_start: Callable[[Run, Prepared], None] | None = None,
) -> Run | None:
    """Train to completion, stop, time budget or failure; returns the run (its status says which).

    ``resume``: a run directory to continue from its last.ckpt (``config`` is then read from it;
    ``overrides`` may change e.g. ``epochs`` or ``max_minutes``). User errors raise
    ConfigError/DatasetError before any directory is created; errors during training mark the run
    failed (traceback in train.log) and are re-raised. On DDP ranks other than 0 nothing is written and
    the result is the run named by ``$SIMCLR_RUN_DIR`` (Lightning's launcher) or None (torchrun, SLURM).
    """
    config, resumed, ckpt = _resolve(config, resume, overrides)
    prepared = prepare(config, stop_while_loading(stop_event))
    if stop_event is not None and stop_event.is_set():
        raise StoppedBeforeStart("stopped before the run started; nothing was written")
    run, lock = _open_run(prepared, runs_root, name, resumed, ckpt)
    try:
        if run is not None and on_start is not None:
            on_start(run, prepared)
        _fit(prepared, run, ckpt, stop_event, progress, progress_bar)
    finally:
        if lock is not None:
            lock.release()
    if run is not None:
        return run
    return Run(os.environ[RUN_DIR_ENV]) if os.environ.get(RUN_DIR_ENV) else None


def _fit(
    prepared: Prepared,
    run: Run | None,
    ckpt_path: Path | None,
    stop_event: threading.Event | None,
    progress: Progress | None,
    progress_bar: bool,
) -> None:
    cfg = prepared.config
    previous = run.raw_status().get("best") if run is not None else None
    # A resumed run must not overwrite best.ckpt with a worse one.
    best = previous.get("value") if isinstance(previous, dict) and previous.get("metric") == cfg.monitor else None
    set_env = False
    callbacks: RunCallbacks | None = None
    try:
        pl.seed_everything(cfg.seed, workers=False, verbose=False)
        module = SimCLRModule(
            cfg,
            steps_per_epoch=max(1, len(prepared.train_images) // cfg.batch_size),
            global_batch=cfg.batch_size,
            knn_query_mask=prepared.knn_mask,
        )
        callbacks = run_callbacks(
            run,
            epochs=cfg.epochs,
            views_per_step=cfg.batch_size * cfg.n_views,
            monitor=cfg.monitor,
            clock=module.clock,
            stop_event=stop_event,
            progress=progress,
            best=best,
            snapshot_count=cfg.snapshots,
        )
        trainer = build_trainer(prepared, callbacks.all, run, progress_bar)
        keep_our_handlers(trainer)  # a signal is a stop request (StopPolicy), never Lightning's SIGTERMException
        if run is not None:
            run.log(
                f"start: {cfg.data} ({len(prepared.train_images)} images), val {prepared.val_spec}, "
                f"{prepared.accelerator} x{prepared.world}, precision {prepared.precision}, "
                f"batch {cfg.batch_size} global = {prepared.per_device_batch} per device"
            )
            if prepared.world > 1 and RUN_DIR_ENV not in os.environ:
                os.environ[RUN_DIR_ENV] = str(run.path)
                set_env = True
        train_loader, val_loader = _loaders(prepared)
        progress_ = trainer.fit_loop.epoch_loop.batch_progress
        # After Lightning restores a mid-epoch checkpoint, ``completed`` counts the batches already done.
        train_loader.sampler.skip_fn = lambda: progress_.current.completed  # type: ignore[attr-defined]
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except BaseException as err:
        if run is not None:
            run.log("training failed:\n" + traceback.format_exc())
            message = clean_message(f"{type(err).__name__}: {err}")[:500]
            run.write_status(state="failed", message=message, finished_at=time.time())
        raise
    finally:
        if callbacks is not None:
            callbacks.close()
        if set_env:
            os.environ.pop(RUN_DIR_ENV, None)
    if run is not None and trainer.is_global_zero:
        _final_status(run, cfg, callbacks, trainer)


def _final_status(run: Run, cfg: TrainConfig, callbacks: RunCallbacks, trainer: pl.Trainer) -> None:
    reason = callbacks.stop.reason
    epochs_done = callbacks.metrics.last_epoch
    best = callbacks.checkpoints.best
    if reason == "nan":
        state, message = "failed", callbacks.stop.message
    elif reason == "user":
        state, message = (
            "stopped",
            f"stopped by request at epoch {epochs_done}, step {trainer.global_step}; resume to continue",
        )
    elif reason == "time":
        state, message = (
            "finished",
            f"time budget of {cfg.max_minutes:g} min reached at epoch {epochs_done}, step {trainer.global_step}",
        )
    else:
        state, message = "finished", f"completed {cfg.epochs} epochs ({trainer.global_step} steps)"
    if best is not None:
        message += f"; best {cfg.monitor} {best:.4f}"
    run.log(f"{state}: {message}")
    run.write_status(
        state=state,
        message=message,
        step=trainer.global_step,
        finished_at=time.time(),
        eta_s=0.0,
        progress=1.0 if state == "finished" and reason is None else run.raw_status().get("progress"),
    )


# -- background job -------------------------------------------------------------------------------
class TrainingJob(Job[Run]):
    """A training in a background thread, for the dashboard.

    ``start()`` validates and loads the data in the caller's thread (so bad settings raise at once,
    before any run directory exists), creates the run, then trains in a daemon thread. ``stop()``
    lets the current step finish, saves last.ckpt and marks the run stopped. Exceptions end up in
    status.json (failed, with the message) and train.log (traceback); ``error`` keeps the exception.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        runs_root: str | Path = "runs",
        name: str | None = None,
        resume: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.config, self.runs_root, self.name, self.resume, self.overrides = config, runs_root, name, resume, overrides
        self.run: Run | None = None

    def start(self) -> TrainingJob:
        config, resumed, ckpt = _resolve(self.config, self.resume, self.overrides)
        prepared = prepare(config)
        if prepared.world > 1:
            # Lightning's DDP launcher re-executes sys.argv (here the dashboard itself) for every extra rank.
            raise ConfigError(
                f"{prepared.world} DDP processes cannot start inside the dashboard; start them from a shell with "
                f"`python -m simclr_core train ... --devices {config.devices} --num-nodes {config.num_nodes} "
                "--strategy ddp` (or torchrun / srun) and watch the run here through its runs folder"
            )
        run, lock = _open_run(prepared, self.runs_root, self.name, resumed, ckpt)
        assert run is not None and lock is not None
        self.run = run

        def work() -> Run:
            try:
                _fit(prepared, run, ckpt, self.stop_event, None, False)  # failures: status.json and train.log
            finally:
                lock.release()
            return run

        self._launch(work, name=f"train-{run.id}")
        return self
