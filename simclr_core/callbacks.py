"""The Lightning callbacks that write a run directory from inside ``trainer.fit``, one job each.

* ``MetricsWriter``: per-step metrics buffered on the device, copied to the host in one sync every
  ~2 s (the first step at once) into ``metrics.jsonl`` and TensorBoard; a validation row per epoch;
  the random-init kNN level at step 0; a NaN/inf loss reported to the stop policy.
* ``StopPolicy``: stop on the user's request, the time budget (the module's ``TrainingClock``) or a
  NaN; the same decision on every rank through ``distributed.broadcast_from_zero``.
* ``CheckpointSaver``: ``last.ckpt`` (atomic: tmp + rename) every epoch, on stop and at the end;
  ``best.ckpt`` (weights only) when the monitored metric improves.
* ``Heartbeat``: ``status.json`` with progress and ETA every ~3 s.
* ``SnapshotSaver``: a few backbone-only snapshots spread over training (``snapshots.py``), for the
  Embeddings page's replay of the map.

``run_callbacks`` builds them in the order Lightning must call them. Only global rank 0 writes;
every rank runs the same hooks because saving and the shared decisions are collectives.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from simclr_core import snapshots
from simclr_core.distributed import DDP_CONTROL_EVERY, broadcast_from_zero
from simclr_core.metrics import (
    EPOCH_METRICS,
    KNN_ACC_RANDOM_INIT,
    LR,
    ROW_KEYS,
    TRAIN_METRICS,
    VIEWS_PER_S,
    tensorboard_tag,
)
from simclr_core.schedule import TrainingClock
from simclr_core.store import Run

FLUSH_EVERY_S = 2.0
STATUS_EVERY_S = 3.0

Progress = Callable[[dict[str, Any]], None]


def _writes(run: Run | None, trainer: pl.Trainer) -> bool:
    return run is not None and trainer.is_global_zero


class StopPolicy(pl.Callback):
    """Decides when training stops: ``reason`` is None, "user", "time" or "nan" (with ``message``)."""

    def __init__(self, stop_event: threading.Event | None = None, clock: TrainingClock | None = None) -> None:
        self.stop_event = stop_event or threading.Event()
        self.clock = clock
        self.reason: str | None = None
        self.message = ""
        self.stopped_at_step: int | None = None  # the step a stop was decided after (last.ckpt is due)

    def fail(self, message: str) -> None:
        """Stop for a non-finite loss (reported on rank 0; ``share`` tells the other ranks)."""
        if self.reason != "nan":
            self.reason, self.message = "nan", message

    def share(self, trainer: pl.Trainer) -> str | None:
        """Rank 0's reason on every rank; call at the same hook on all ranks."""
        self.reason = broadcast_from_zero(trainer, self.reason)
        return self.reason

    def _stop(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.should_stop = True
        if self.reason in ("user", "nan") and hasattr(pl_module, "skip_validation"):
            pl_module.skip_validation = True  # Lightning validates on should_stop; not worth waiting for here

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        reason = self.reason
        if reason is None and self.stop_event.is_set():
            reason = "user"
        if reason is None and self.clock is not None and self.clock.expired():
            reason = "time"
        if trainer.world_size > 1:
            if trainer.global_step % DDP_CONTROL_EVERY:
                return
            reason = broadcast_from_zero(trainer, reason)
        if reason is None:
            return
        self.reason = reason
        self.stopped_at_step = trainer.global_step
        self._stop(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A NaN between two flushes must not reach validation (NaN features rank as perfect) or best.ckpt.
        if self.share(trainer) == "nan":
            self._stop(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.share(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.share(trainer)


def validation_row(trainer: pl.Trainer, pl_module: pl.LightningModule, stop: StopPolicy) -> dict[str, Any] | None:
    """This epoch's validation metrics as a metrics.jsonl row, or None when there are none to record.

    None: a sanity check, no validation this epoch (stopping, or paced out to keep the monitor's time
    share), a NaN stop (NaN features rank as perfect), or nothing logged.
    """
    skipped = getattr(pl_module, "skip_validation", False) or getattr(pl_module, "paced_out", False)
    if trainer.sanity_checking or skipped or stop.reason == "nan":
        return None
    cm = trainer.callback_metrics
    values = {name: float(cm[name]) for name in EPOCH_METRICS if name in cm}
    if not values:
        return None
    return {"step": trainer.global_step, "epoch": trainer.current_epoch, "time": time.time(), **values}


class MetricsWriter(pl.Callback):
    """metrics.jsonl and TensorBoard: step rows batched every FLUSH_EVERY_S, one validation row per epoch."""

    def __init__(self, run: Run | None, views_per_step: int, stop: StopPolicy) -> None:
        self.run = run
        self.views_per_step = views_per_step
        self.stop = stop
        self.pending: list[tuple[int, int, float, torch.Tensor, float]] = []
        self.names = TRAIN_METRICS  # the columns of the module's last_train_metrics (its train_metric_names)
        self.last_flush = 0.0
        self.window_start: tuple[int, float] | None = None
        self.last_epoch = 0  # epoch of the last recorded training step
        self.tensorboard: Any = None  # SummaryWriter once opened; False without tensorboardX

    def write(self, trainer: pl.Trainer, rows: list[dict[str, Any]]) -> None:
        if not _writes(self.run, trainer) or not rows:
            return
        self.run.append_metrics(rows)
        self._tensorboard(rows)

    def flush(self, trainer: pl.Trainer) -> None:
        """Rank 0: host-copy pending step metrics (one sync), check for NaN, append rows, feed TensorBoard."""
        if not trainer.is_global_zero:
            return
        self.last_flush = time.time()
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        values = torch.stack([p[3] for p in pending]).float().cpu().tolist()
        start_step, start_time = self.window_start or (pending[0][0] - 1, pending[0][2])
        end_step, end_time = pending[-1][0], pending[-1][2]
        speed = self.views_per_step * (end_step - start_step) / max(1e-9, end_time - start_time)
        self.window_start = (end_step, end_time)
        rows = []
        for (step, epoch, t, _, lr), vals in zip(pending, values, strict=True):
            metrics = dict(zip(self.names, vals, strict=True))
            rows.append({"step": step, "epoch": epoch, "time": t, **metrics, LR: lr, VIEWS_PER_S: speed})
            if not math.isfinite(vals[0]):
                self.stop.fail(
                    f"the loss became {'NaN' if math.isnan(vals[0]) else 'infinite'} at step {step} "
                    f"(lr {lr:.3g}), so training stopped; lower --lr (or use --precision 32 instead of "
                    "16-mixed). last.ckpt keeps the last state saved before it"
                )
        self.write(trainer, rows)

    def _tensorboard(self, rows: list[dict[str, Any]]) -> None:
        if self.tensorboard is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                self.tensorboard = False
                return
            self.tensorboard = SummaryWriter(str(self.run.tensorboard_dir), flush_secs=10)
        if self.tensorboard is False:
            return
        for row in rows:
            for key, value in row.items():
                if key not in ROW_KEYS and value is not None and math.isfinite(value):
                    self.tensorboard.add_scalar(tensorboard_tag(key), value, row["step"], walltime=row["time"])

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        random_init_knn = getattr(pl_module, "random_init_knn", None)
        if trainer.global_step == 0 and _writes(self.run, trainer) and random_init_knn is not None:
            # Before the first step (and the budget's clock): the level a random encoder reaches, as the
            # kNN chart's reference line.
            level = random_init_knn(trainer.val_dataloaders)
            if level is not None:
                self.write(trainer, [{"step": 0, "epoch": 0, "time": time.time(), KNN_ACC_RANDOM_INIT: level}])
        self.window_start = (trainer.global_step, time.time())
        self.names = getattr(pl_module, "train_metric_names", TRAIN_METRICS)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        metrics = getattr(pl_module, "last_train_metrics", None)
        if metrics is not None and trainer.is_global_zero:  # only rank 0 flushes; elsewhere this would only grow
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.pending.append((trainer.global_step, trainer.current_epoch, time.time(), metrics, lr))
            self.last_epoch = trainer.current_epoch
        if self.last_flush == 0.0 or time.time() - self.last_flush >= FLUSH_EVERY_S:
            self.flush(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)  # before the stop policy looks for a NaN

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = validation_row(trainer, pl_module, self.stop)
        if row is None:
            return
        self.flush(trainer)
        self.write(trainer, [row])
        if _writes(self.run, trainer):
            summary = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ROW_KEYS)
            self.run.log(f"epoch {trainer.current_epoch} step {trainer.global_step}: {summary}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        with contextlib.suppress(Exception):  # the original exception matters more than a failed flush
            self.flush(trainer)


class Heartbeat(pl.Callback):
    """status.json every STATUS_EVERY_S: epoch, step, progress (steps or the time budget, whichever is further), ETA."""

    def __init__(
        self, run: Run | None, epochs: int, clock: TrainingClock | None = None, progress: Progress | None = None
    ) -> None:
        self.run = run
        self.epochs = epochs
        self.clock = clock
        self.progress = progress
        self.last_status = 0.0
        self.session_start: tuple[int, float] | None = None

    def beat(self, trainer: pl.Trainer, force: bool = False, **fields: Any) -> None:
        now = time.time()
        if not _writes(self.run, trainer) or (not force and now - self.last_status < STATUS_EVERY_S):
            return
        self.last_status = now
        step, total = trainer.global_step, max(1, trainer.estimated_stepping_batches)
        eta = None
        if self.session_start and step > self.session_start[0]:
            rate = (now - self.session_start[1]) / (step - self.session_start[0])
            eta = rate * max(0, total - step)
            if self.clock is not None and self.clock.remaining() is not None:
                eta = min(eta, self.clock.remaining())
        fraction = self.clock.fraction() if self.clock is not None else 0.0
        status = self.run.write_status(
            epoch=trainer.current_epoch,
            epochs=self.epochs,
            step=step,
            total_steps=total,
            progress=min(1.0, max(step / total, fraction)),
            eta_s=eta,
            **fields,
        )
        if self.progress:
            self.progress(status)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.session_start = (trainer.global_step, time.time())
        if _writes(self.run, trainer):
            self.beat(
                trainer,
                force=True,
                state="running",
                message="training",
                pid=os.getpid(),
                host=socket.gethostname(),
                started_at=self.run.raw_status().get("started_at") or time.time(),
                finished_at=None,
            )

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.beat(trainer)

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self.beat(trainer, message="validating")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.beat(trainer, force=True, message="training")


class CheckpointSaver(pl.Callback):
    """last.ckpt (full state, to resume) and best.ckpt (weights, on ``monitor``), each replaced atomically."""

    def __init__(
        self,
        run: Run | None,
        monitor: str,
        stop: StopPolicy,
        metrics: MetricsWriter,
        heartbeat: Heartbeat,
        best: float | None = None,
    ) -> None:
        self.run = run
        self.monitor = monitor
        self.stop = stop
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.best = best  # a resumed run's best so far: never overwritten by a worse one
        self.saved_step = -1

    def save(self, trainer: pl.Trainer, which: str) -> None:
        """All ranks call (Lightning barriers inside); only rank 0 writes. Nothing after a NaN."""
        if self.stop.reason == "nan":
            return
        path = self.run.checkpoint_dir / f"{which}.ckpt" if self.run is not None else Path(os.devnull)
        tmp = path.with_name(f".{which}.ckpt.tmp") if self.run is not None else path
        # last: full state to resume from; best: weights only (evaluation reads it, a third of the size).
        trainer.save_checkpoint(tmp, weights_only=which == "best")
        if _writes(self.run, trainer):
            os.replace(tmp, path)
        if which == "last":
            self.saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.stop.stopped_at_step == trainer.global_step and self.saved_step != trainer.global_step:
            self.metrics.flush(trainer)
            # Saved here, mid-epoch, so that a resume continues with the next batch of this epoch.
            self.save(trainer, "last")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = validation_row(trainer, pl_module, self.stop)
        if row is None:
            return
        value = row.get(self.monitor)
        better = value is not None and math.isfinite(value) and (self.best is None or value > self.best)
        if broadcast_from_zero(trainer, better):
            self.best = value
            self.save(trainer, "best")
            self.heartbeat.beat(
                trainer,
                force=True,
                best={
                    "metric": self.monitor,
                    "value": value,
                    "epoch": trainer.current_epoch,
                    "step": trainer.global_step,
                },
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step != self.saved_step:  # not when a stop just saved mid-epoch at this step
            self.save(trainer, "last")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step != self.saved_step:
            self.save(trainer, "last")


def run_progress(trainer: pl.Trainer, clock: TrainingClock | None) -> float:
    """Share of the run done, in [0, 1]: steps or the time budget, whichever is further (as status.json says)."""
    fraction = clock.fraction() if clock is not None else 0.0
    return min(1.0, max(trainer.global_step / max(1, trainer.estimated_stepping_batches), fraction))


class SnapshotSaver(pl.Callback):
    """``count`` backbone-only snapshots at evenly spaced progress points, the first at step 0 (random init).

    A resumed run carries on with the points still ahead of it; the end of a session (finished, stopped
    or out of time) always leaves one, so the replay ends where the run did. Rank 0 only, no collectives.
    """

    def __init__(self, run: Run | None, count: int, stop: StopPolicy, clock: TrainingClock | None = None) -> None:
        self.run = run
        self.points = snapshots.points(count)
        self.stop = stop
        self.clock = clock
        self.next = 0  # index of the next point to save at
        self.saved_step = -1

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, progress: float) -> None:
        backbone = getattr(getattr(pl_module, "net", None), "backbone", None)
        if self.stop.reason == "nan" or backbone is None:  # NaN weights would only draw an empty frame
            return
        cfg = pl_module.config
        arch = {
            "backbone": cfg.backbone,
            "small_input": cfg.small_input,
            "hidden_dim": cfg.hidden_dim,
            "image_size": cfg.image_size,
            "mean": list(cfg.aug.mean),
            "std": list(cfg.aug.std),
        }
        elapsed = self.clock.elapsed() if self.clock is not None else 0.0
        snapshots.save(
            self.run.snapshot_dir,
            backbone,
            step=trainer.global_step,
            epoch=trainer.current_epoch,
            progress=progress,
            elapsed_s=elapsed,
            arch=arch,
        )
        self.saved_step = trainer.global_step

    def _advance(self, progress: float) -> None:
        while self.next < len(self.points) and self.points[self.next] <= progress + 1e-9:
            self.next += 1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not _writes(self.run, trainer) or not self.points:
            return
        progress = run_progress(trainer, self.clock)
        if trainer.global_step == 0:
            self.save(trainer, pl_module, progress)
        self._advance(progress)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if not _writes(self.run, trainer) or self.next >= len(self.points):
            return
        progress = run_progress(trainer, self.clock)
        if progress + 1e-9 >= self.points[self.next]:
            self.save(trainer, pl_module, progress)
            self._advance(progress)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if _writes(self.run, trainer) and self.points and self.saved_step != trainer.global_step:
            self.save(trainer, pl_module, run_progress(trainer, self.clock))


@dataclass
class RunCallbacks:
    """The four callbacks of one run, and what the final status reads from them."""

    stop: StopPolicy
    metrics: MetricsWriter
    checkpoints: CheckpointSaver
    heartbeat: Heartbeat
    snapshots: SnapshotSaver

    @property
    def all(self) -> list[pl.Callback]:
        # Lightning calls them in this order at every hook: rows are flushed before the stop policy looks
        # for a NaN, the stop is decided before last.ckpt is saved, the heartbeat reports what happened.
        return [self.metrics, self.stop, self.checkpoints, self.heartbeat, self.snapshots]

    def close(self) -> None:
        self.metrics.close()


def run_callbacks(
    run: Run | None,
    *,
    epochs: int,
    views_per_step: int,
    monitor: str,
    clock: TrainingClock | None = None,
    stop_event: threading.Event | None = None,
    progress: Progress | None = None,
    best: float | None = None,
    snapshot_count: int = 0,
) -> RunCallbacks:
    """The callbacks that write ``run`` (None on ranks other than 0: they only take part in the collectives)."""
    stop = StopPolicy(stop_event, clock)
    metrics = MetricsWriter(run, views_per_step, stop)
    heartbeat = Heartbeat(run, epochs, clock, progress)
    checkpoints = CheckpointSaver(run, monitor, stop, metrics, heartbeat, best)
    return RunCallbacks(stop, metrics, checkpoints, heartbeat, SnapshotSaver(run, snapshot_count, stop, clock))
