"""Run a SimCLR training into a run directory: blocking (`train`) or in a background thread (`TrainingJob`).

Order of events, so that no work is lost and nothing starts on bad settings:

1. ``preflight.prepare``: validate the config, load the data (``data.training_data``), check
   data-dependent limits (batch vs images, labelled validation images, memory). Any problem raises
   ConfigError/DatasetError before a run exists.
2. ``run_open.open_run``: ``create_run``, or reopen one to resume (metrics past the checkpoint's
   step are dropped), under the run's writer lock.
3. ``trainer.fit(SimCLRModule, SimCLRDataModule)`` with the callbacks of ``callbacks.run_callbacks``:
   step metrics in batches every ~2 s (first step at once), status heartbeat with progress/ETA every
   ~3 s, validation row per epoch, ``last.ckpt`` every epoch and on stop, ``best.ckpt`` on the
   monitored metric. The module and datamodule need none of this; they train in any ``pl.Trainer``.
4. ``_final_status`` from the stop policy's reason: NaN/inf -> failed, stop request -> stopped,
   ``max_minutes`` -> finished with the reason, else finished.

Batch size is global: each of W processes takes ``batch_size // W`` images per step.
Only global rank 0 writes the run directory; under Lightning's DDP launcher the other ranks
re-run the same command and learn the directory from ``$SIMCLR_RUN_DIR``.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from simclr_core.callbacks import Progress, RunCallbacks, run_callbacks
from simclr_core.config import ConfigError, TrainConfig
from simclr_core.datamodule import SimCLRDataModule
from simclr_core.jobs import Job
from simclr_core.module import SimCLRModule
from simclr_core.preflight import Prepared, StoppedBeforeStart, prepare, stop_while_loading
from simclr_core.run_open import open_run, resolve
from simclr_core.safe_load import clean_message
from simclr_core.signals import keep_our_handlers
from simclr_core.store import Run

# prepare, Prepared and StoppedBeforeStart are part of this module's API (the CLI and the tests import them here).
__all__ = ["RUN_DIR_ENV", "Prepared", "StoppedBeforeStart", "TrainingJob", "build_trainer", "prepare", "train"]

RUN_DIR_ENV = "SIMCLR_RUN_DIR"


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
    data_progress: Callable[[str, float], None] | None = None,
) -> Run | None:
    """Train to completion, stop, time budget or failure; returns the run (its status says which).

    ``resume``: a run directory to continue from its last.ckpt (``config`` is then read from it;
    ``overrides`` may change e.g. ``epochs`` or ``max_minutes``). User errors raise
    ConfigError/DatasetError before any directory is created; errors during training mark the run
    failed (traceback in train.log) and are re-raised. On DDP ranks other than 0 nothing is written and
    the result is the run named by ``$SIMCLR_RUN_DIR`` (Lightning's launcher) or None (torchrun, SLURM).
    ``data_progress(message, fraction)``: the training data's download and decoding (the CLI's bars).
    """
    config, resumed, ckpt = resolve(config, resume, overrides)
    stop_check = stop_while_loading(stop_event)

    def loading(message: str, fraction: float) -> None:
        if stop_check is not None:
            stop_check(message, fraction)
        if data_progress is not None:
            data_progress(message, fraction)

    prepared = prepare(config, loading if stop_check is not None or data_progress is not None else None)
    if stop_event is not None and stop_event.is_set():
        raise StoppedBeforeStart("stopped before the run started; nothing was written")
    run, lock = open_run(prepared, runs_root, name, resumed, ckpt)
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
            knn_query_mask=prepared.data.knn_mask,
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
        datamodule = SimCLRDataModule(cfg, prepared.data)
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
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
        config, resumed, ckpt = resolve(self.config, self.resume, self.overrides)
        prepared = prepare(config)
        if prepared.world > 1:
            # Lightning's DDP launcher re-executes sys.argv (here the dashboard itself) for every extra rank.
            raise ConfigError(
                f"{prepared.world} DDP processes cannot start inside the dashboard; start them from a shell with "
                f"`python -m simclr_core train ... --devices {config.devices} --num-nodes {config.num_nodes} "
                "--strategy ddp` (or torchrun / srun) and watch the run here through its runs folder"
            )
        run, lock = open_run(prepared, self.runs_root, self.name, resumed, ckpt)
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
