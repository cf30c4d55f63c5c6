"""Run a SimCLR training into a run directory: blocking (`train`) or in a background thread (`TrainingJob`).

Order of events, so that no work is lost and nothing starts on bad settings:

1. ``prepare``: validate the config, load the data, check data-dependent limits (batch vs images,
   labelled validation images). Any problem raises ConfigError/DatasetError before a run exists.
2. ``create_run`` (or reopen one to resume: metrics past the checkpoint's step are dropped).
3. ``trainer.fit`` with ``RunRecorder``: step metrics in batches every ~2 s (first step at once),
   status heartbeat with progress/ETA every ~3 s, validation row per epoch, ``last.ckpt`` every
   epoch and on stop, ``best.ckpt`` on the monitored metric, NaN/inf -> failed, stop request ->
   stopped, ``max_minutes`` -> finished with the reason.

Batch size is global: each of W processes takes ``batch_size // W`` images per step.
Only global rank 0 writes the run directory; under Lightning's DDP launcher the other ranks
re-run the same command and learn the directory from ``$SIMCLR_RUN_DIR``.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset, Sampler

from simclr_core.config import ConfigError, TrainConfig
from simclr_core.data import DatasetError, ImageSet, load_dataset
from simclr_core.data.spec import sibling_spec
from simclr_core.devices import cpu_has_fast_bf16
from simclr_core.distributed import rank_and_world
from simclr_core.jobs import Job
from simclr_core.module import TRAIN_METRICS, VAL_METRICS, SimCLRModule, stream_seed
from simclr_core.store import Run, create_run, write_json_atomic

RUN_DIR_ENV = "SIMCLR_RUN_DIR"
FLUSH_EVERY_S = 2.0
STATUS_EVERY_S = 3.0
DDP_CONTROL_EVERY = 10  # steps between stop decisions shared across ranks
KNN_QUERIES = 5000  # kNN monitor queries (and images of the augmented val_*) per epoch

Progress = Callable[[dict[str, Any]], None]


# -- devices --------------------------------------------------------------------------------------
def resolve_device(device: str) -> tuple[str, Any]:
    """TrainConfig.device -> (Lightning accelerator, devices-or-None to use the count from config)."""
    if device == "auto":
        return ("gpu" if torch.cuda.is_available() else "cpu"), None
    if device == "cpu":
        return "cpu", None
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA GPU is visible here; use --device cpu or auto")
        if ":" in device:
            index = int(device.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
            return "gpu", [index]
        return "gpu", None
    raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' -> bf16-mixed where the device has fast bf16 (CUDA with bf16, AVX512-BF16/AMX CPUs), else 32 (fp16 on old GPUs)."""
    if precision != "auto":
        if precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("precision 16-mixed needs a CUDA GPU; on CPU use bf16-mixed or 32")
        return precision
    if accelerator == "gpu":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32"


def env_global_rank() -> int:
    """This process's global rank as launchers announce it before any process group exists."""
    for key in ("RANK", "SLURM_PROCID"):
        if (
            os.environ.get(key, "").isdigit()
            and int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))) > 1
        ):
            return int(os.environ[key])
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


# -- data -----------------------------------------------------------------------------------------
class UInt8Images(Dataset):
    """Batch lookup into an in-memory (or memory-mapped) uint8 image tensor: ``ds[idx] -> (images, idx[, labels])``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        images = self.images[index].contiguous()
        if self.labels is None:
            return images, index
        return images, self.labels[index], index


class EpochBatches(Sampler[torch.Tensor]):
    """Index batches for one rank. Training: a fresh permutation per epoch from (seed, epoch), cut into
    global batches of ``batch * world`` (drop_last), of which this rank takes its slice; the same on
    every rank without communication. Evaluation (``shuffle=False``): indices padded to a multiple of
    ``world`` (wrapping), dealt round-robin, split into balanced batches of at most ``batch``.
    """

    def __init__(
        self, n: int, batch: int, *, shuffle: bool, seed: int = 0, world: int = 1, rank: int | None = None
    ) -> None:
        self.n, self.batch, self.shuffle, self.seed, self.world = n, batch, shuffle, seed, world
        self._rank = rank
        self.epoch = 0
        # Batches of this epoch already trained (a mid-epoch resume); read when iteration starts.
        self.skip_fn: Callable[[], int] = lambda: 0

    @property
    def rank(self) -> int:
        """Given, or read from the process group at iteration time (Lightning launches ranks after we build this)."""
        return self._rank if self._rank is not None else rank_and_world()[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _eval_shard(self) -> torch.Tensor:
        total = math.ceil(self.n / self.world) * self.world
        return (torch.arange(total) % self.n)[self.rank :: self.world]

    def __len__(self) -> int:
        if self.shuffle:
            return self.n // (self.batch * self.world)
        return math.ceil(len(self._eval_shard()) / self.batch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            g = torch.Generator().manual_seed(stream_seed(self.seed, "epoch", self.epoch))
            perm = torch.randperm(self.n, generator=g)
            step = self.batch * self.world
            for i in range(self.skip_fn(), len(self)):
                start = i * step + self.rank * self.batch
                yield perm[start : start + self.batch].sort().values
        else:
            shard = self._eval_shard()
            yield from torch.tensor_split(shard, len(self))


def _loader(dataset: UInt8Images, sampler: EpochBatches, pin: bool) -> DataLoader:
    # batch_size=None: the sampler yields whole index batches, the dataset slices the uint8 tensor once.
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0, pin_memory=pin)


def balanced_subset(labels: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``limit`` images drawn round-robin over classes (deterministic)."""
    g = torch.Generator().manual_seed(stream_seed(seed, "val_subset"))
    perm = torch.randperm(len(labels), generator=g)
    lab = labels[perm]
    # Rank of each image within its class in the permuted order; take low ranks first.
    order = torch.argsort(lab, stable=True)
    counts = torch.bincount(lab - lab.min())
    starts = torch.cumsum(counts, 0) - counts
    within = torch.empty_like(order)
    within[order] = torch.arange(len(order)) - starts[(lab - lab.min())[order]]
    chosen = perm[torch.argsort(within, stable=True)[:limit]]
    return chosen.sort().values


def knn_query_mask(labels: torch.Tensor, seed: int, limit: int = KNN_QUERIES) -> torch.Tensor:
    """(N,) bool: a deterministic class-balanced subset of at most ``limit`` labelled images as kNN queries.

    Each query votes leave-one-out against all labelled images, so the monitor reads like a full kNN
    evaluation; 5,000 queries put its standard error under one point.
    """
    mask = torch.zeros(len(labels), dtype=torch.bool)
    mask[balanced_subset(labels, min(limit, len(labels)), seed)] = True
    return mask


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


def default_val_spec(data: str) -> str | None:
    """The labelled train split of the training source (the seed's validation set), if it has one."""
    try:
        return sibling_spec(data, "train")
    except (DatasetError, ValueError):
        return None


def prepare(config: TrainConfig, data_progress: Callable[..., None] | None = None) -> Prepared:
    """Validate settings and load data; raise ConfigError/DatasetError on anything that cannot work."""
    config.validate()
    if config.aug.crop_size != config.image_size:  # views are image_size; keep config.json saying so
        config = replace(config, aug=replace(config.aug, crop_size=config.image_size))
    accelerator, device_list = resolve_device(config.device)
    precision = resolve_precision(config.precision, accelerator)
    devices = device_list or config.devices
    world = (len(devices) if isinstance(devices, list) else int(devices)) * config.num_nodes
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} is global and must divide evenly over {world} processes")
    per_device = config.batch_size // world
    if per_device < 2:
        raise ConfigError(f"batch_size {config.batch_size} over {world} processes leaves fewer than 2 images each")
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
    )


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


def _clock_remaining(trainer: pl.Trainer) -> float | None:
    """Seconds left of the module's time budget (None without one)."""
    clock = getattr(trainer.lightning_module, "clock", None)
    return clock.remaining() if clock is not None else None


def _clock_fraction(trainer: pl.Trainer) -> float:
    """Share of the module's time budget used (0 without one): the progress of a budget run."""
    clock = getattr(trainer.lightning_module, "clock", None)
    return clock.fraction() if clock is not None else 0.0


class RunRecorder(pl.Callback):
    """Writes the run directory from inside the Trainer; decides when to stop (same decision on all ranks)."""

    def __init__(
        self,
        run: Run | None,
        config: TrainConfig,
        stop_event: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.run = run
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.progress = progress
        self.pending: list[tuple[int, int, float, torch.Tensor, float]] = []
        self.writer: Any = None
        self.last_flush = self.last_status = 0.0
        self.window_start: tuple[int, float] | None = None
        self.session_start: tuple[int, float] | None = None
        self.stop_reason: str | None = None  # "user" | "time" | "nan"
        self.message = ""
        self.saved_step = -1
        self.best: float | None = None
        self.last_epoch = 0
        self.views_per_step = config.batch_size * config.n_views

    # -- helpers
    def _is_writer(self, trainer: pl.Trainer) -> bool:
        return self.run is not None and trainer.is_global_zero

    def _status(self, trainer: pl.Trainer, force: bool = False, **fields: Any) -> None:
        now = time.time()
        if not self._is_writer(trainer) or (not force and now - self.last_status < STATUS_EVERY_S):
            return
        self.last_status = now
        step, total = trainer.global_step, max(1, trainer.estimated_stepping_batches)
        eta = None
        if self.session_start and step > self.session_start[0]:
            rate = (now - self.session_start[1]) / (step - self.session_start[0])
            eta = rate * max(0, total - step)
            remaining = _clock_remaining(trainer)
            if remaining is not None:
                eta = min(eta, remaining)
        status = self.run.write_status(
            epoch=trainer.current_epoch,
            epochs=self.config.epochs,
            step=step,
            total_steps=total,
            progress=min(1.0, max(step / total, _clock_fraction(trainer))),
            eta_s=eta,
            **fields,
        )
        if self.progress:
            self.progress(status)

    def _flush(self, trainer: pl.Trainer) -> None:
        """Host-copy pending step metrics (one sync), check for NaN, append rows, feed TensorBoard."""
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
            row = {
                "step": step,
                "epoch": epoch,
                "time": t,
                **dict(zip(TRAIN_METRICS, vals, strict=True)),
                "lr": lr,
                "views_per_s": speed,
            }
            rows.append(row)
            if not math.isfinite(vals[0]) and self.stop_reason != "nan":
                self.stop_reason = "nan"
                self.message = (
                    f"the loss became {'NaN' if math.isnan(vals[0]) else 'infinite'} at step {step} "
                    f"(lr {lr:.3g}), so training stopped; lower --lr (or use --precision 32 instead of "
                    "16-mixed). last.ckpt keeps the last state saved before it"
                )
        if self._is_writer(trainer):
            self.run.append_metrics(rows)
            self._tensorboard(rows)

    def _tensorboard(self, rows: list[dict[str, Any]]) -> None:
        if self.writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                self.writer = False
                return
            self.writer = SummaryWriter(str(self.run.tensorboard_dir), flush_secs=10)
        if self.writer is False:
            return
        for row in rows:
            for key, value in row.items():
                if key not in ("step", "epoch", "time") and value is not None and math.isfinite(value):
                    self.writer.add_scalar(key, value, row["step"], walltime=row["time"])

    def _decide_stop(self, trainer: pl.Trainer) -> None:
        reason = self.stop_reason
        if reason is None and self.stop_event.is_set():
            reason = "user"
        clock = getattr(trainer.lightning_module, "clock", None)
        if reason is None and clock is not None and clock.expired():
            reason = "time"
        if trainer.world_size > 1:
            if trainer.global_step % DDP_CONTROL_EVERY:
                return
            reason = trainer.strategy.broadcast(reason, src=0)
        if reason is None:
            return
        self.stop_reason = reason
        trainer.should_stop = True
        module = trainer.lightning_module
        if isinstance(module, SimCLRModule) and reason in ("user", "nan"):
            module.skip_validation = True  # Lightning validates on should_stop; not worth waiting for here
        if trainer.is_global_zero:
            self._flush(trainer)
        # Saved here, mid-epoch, so that a resume continues with the next batch of this epoch.
        self.save(trainer, "last")

    def save(self, trainer: pl.Trainer, which: str) -> None:
        """All ranks call (Lightning barriers inside); only rank 0 writes."""
        if self.stop_reason == "nan":
            return
        path = self.run.checkpoint_dir / f"{which}.ckpt" if self.run is not None else Path(os.devnull)
        tmp = path.with_name(f".{which}.ckpt.tmp") if self.run is not None else path
        # last: full state to resume from; best: weights only (evaluation reads it, a third of the size).
        trainer.save_checkpoint(tmp, weights_only=which == "best")
        if self._is_writer(trainer):
            os.replace(tmp, path)
        if which == "last":
            self.saved_step = trainer.global_step

    # -- hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0 and self._is_writer(trainer) and isinstance(pl_module, SimCLRModule):
            # Before the first step (and the budget's clock): the level a random encoder reaches, as the
            # kNN chart's reference line.
            level = pl_module.random_init_knn(trainer.val_dataloaders)
            if level is not None:
                self.run.append_metrics([{"step": 0, "epoch": 0, "time": time.time(), "knn_acc_random_init": level}])
        self.session_start = (trainer.global_step, time.time())
        self.window_start = self.session_start
        if self._is_writer(trainer):
            raw = self.run.raw_status()
            self._status(
                trainer,
                force=True,
                state="running",
                message="training",
                pid=os.getpid(),
                host=socket.gethostname(),
                started_at=raw.get("started_at") or time.time(),
                finished_at=None,
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        metrics = getattr(pl_module, "last_train_metrics", None)
        if metrics is not None and trainer.is_global_zero:  # only rank 0 flushes; elsewhere this would only grow
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.pending.append((trainer.global_step, trainer.current_epoch, time.time(), metrics, lr))
            self.last_epoch = trainer.current_epoch
        if trainer.is_global_zero and (self.last_flush == 0.0 or time.time() - self.last_flush >= FLUSH_EVERY_S):
            self._flush(trainer)
        self._status(trainer)
        self._decide_stop(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A NaN between two flushes must not reach validation (NaN features rank as perfect) or best.ckpt.
        if trainer.is_global_zero:
            self._flush(trainer)
        if trainer.world_size > 1:
            self.stop_reason = trainer.strategy.broadcast(self.stop_reason, src=0)
        if self.stop_reason == "nan" and isinstance(pl_module, SimCLRModule):
            pl_module.skip_validation = True
            trainer.should_stop = True

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if not trainer.sanity_checking:
            self._status(trainer, message="validating")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        skipped = getattr(pl_module, "skip_validation", False) or getattr(pl_module, "paced_out", False)
        if trainer.sanity_checking or skipped or self.stop_reason == "nan":
            return
        cm = trainer.callback_metrics
        row: dict[str, Any] = {"step": trainer.global_step, "epoch": trainer.current_epoch, "time": time.time()}
        for name in (*VAL_METRICS, "knn_acc"):
            if name in cm:
                row[name] = float(cm[name])
        if len(row) == 3:
            return
        if trainer.is_global_zero:
            self._flush(trainer)
        if self._is_writer(trainer):
            self.run.append_metrics([row])
            self._tensorboard([row])
            summary = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "epoch", "time"))
            self.run.log(f"epoch {trainer.current_epoch} step {trainer.global_step}: {summary}")
        value = row.get(self.config.monitor)
        better = value is not None and math.isfinite(value) and (self.best is None or value > self.best)
        if trainer.world_size > 1:
            better = trainer.strategy.broadcast(better, src=0)
        if better:
            self.best = value
            self.save(trainer, "best")
            if self._is_writer(trainer):
                self._status(
                    trainer,
                    force=True,
                    best={
                        "metric": self.config.monitor,
                        "value": value,
                        "epoch": trainer.current_epoch,
                        "step": trainer.global_step,
                    },
                )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._flush(trainer)
        if trainer.world_size > 1:
            self.stop_reason = trainer.strategy.broadcast(self.stop_reason, src=0)
        if trainer.global_step != self.saved_step:  # not when a stop just saved mid-epoch at this step
            self.save(trainer, "last")
        self._status(trainer, force=True, message="training")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._flush(trainer)
        if trainer.world_size > 1:
            self.stop_reason = trainer.strategy.broadcast(self.stop_reason, src=0)
        if trainer.global_step != self.saved_step:
            self.save(trainer, "last")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero:
            with contextlib.suppress(Exception):  # the original exception matters more than a failed flush
                self._flush(trainer)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


# -- the run --------------------------------------------------------------------------------------
def build_trainer(prepared: Prepared, recorder: RunRecorder, run: Run | None, progress_bar: bool = False) -> pl.Trainer:
    """A Lightning Trainer that writes nothing itself: the recorder owns the run directory."""
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
        callbacks=[recorder],
    )


def _loaders(prepared: Prepared) -> tuple[DataLoader, DataLoader | None]:
    cfg = prepared.config
    pin = prepared.accelerator == "gpu"
    train_sampler = EpochBatches(
        len(prepared.train_images), prepared.per_device_batch, shuffle=True, seed=cfg.seed, world=prepared.world
    )
    train = _loader(UInt8Images(prepared.train_images), train_sampler, pin)
    val = None
    if prepared.val_images is not None:
        val_sampler = EpochBatches(
            len(prepared.val_images), prepared.per_device_batch, shuffle=False, world=prepared.world
        )
        val = _loader(UInt8Images(prepared.val_images, prepared.val_labels), val_sampler, pin)
    return train, val


def _checkpoint_step(path: Path) -> int:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return int(ckpt.get("global_step", 0))


def open_for_resume(run_dir: str | Path) -> tuple[Run, TrainConfig, Path]:
    """A stopped/interrupted/failed run, its config and last.ckpt; refuses runs that are alive or done."""
    run = Run(run_dir)
    if not run.config_path.is_file():
        raise ConfigError(f"--resume {run_dir}: not a run directory (no config.json)")
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
) -> Run | None:
    """The run this process writes: a new one, the resumed one (metrics cut at the checkpoint), or None."""
    if env_global_rank() > 0:
        return None  # rank 0 writes (torchrun/SLURM ranks never learn its directory); this one only computes
    if resumed is None:
        return create_run(runs_root, prepared.config.to_dict(), name=name, kind="simclr", extra=_run_extra(prepared))
    assert ckpt is not None
    step = _checkpoint_step(ckpt)
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
    return resumed


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
    prepared = prepare(config)
    run = _open_run(prepared, runs_root, name, resumed, ckpt)
    if run is not None and on_start is not None:
        on_start(run, prepared)
    _fit(prepared, run, ckpt, stop_event, progress, progress_bar)
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
    recorder = RunRecorder(run, cfg, stop_event, progress)
    previous_best = run.raw_status().get("best") if run is not None else None
    if isinstance(previous_best, dict) and previous_best.get("metric") == cfg.monitor:
        recorder.best = previous_best.get("value")  # a resumed run must not overwrite best.ckpt with a worse one
    set_env = False
    try:
        pl.seed_everything(cfg.seed, workers=False, verbose=False)
        module = SimCLRModule(cfg)
        trainer = build_trainer(prepared, recorder, run, progress_bar)
        module.steps_per_epoch = max(1, len(prepared.train_images) // cfg.batch_size)
        module.global_batch = cfg.batch_size
        module.knn_query_mask = prepared.knn_mask
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
            run.write_status(state="failed", message=f"{type(err).__name__}: {err}"[:500], finished_at=time.time())
        raise
    finally:
        recorder.close()
        if set_env:
            os.environ.pop(RUN_DIR_ENV, None)
    if run is not None and trainer.is_global_zero:
        _final_status(run, recorder, trainer)


def _final_status(run: Run, recorder: RunRecorder, trainer: pl.Trainer) -> None:
    cfg = recorder.config
    reason = recorder.stop_reason
    epochs_done = recorder.last_epoch
    if reason == "nan":
        state, message = "failed", recorder.message
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
    if recorder.best is not None:
        message += f"; best {cfg.monitor} {recorder.best:.4f}"
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
        run = _open_run(prepared, self.runs_root, self.name, resumed, ckpt)
        assert run is not None
        self.run = run

        def work() -> Run:
            _fit(prepared, run, ckpt, self.stop_event, None, False)  # failures: status.json and train.log
            return run

        self._launch(work, name=f"train-{run.id}")
        return self


def install_stop_signals(stop_event: threading.Event) -> None:
    """First Ctrl-C / SIGTERM: stop gracefully (last.ckpt saved); a second Ctrl-C aborts."""

    def handler(signum: int, frame: Any) -> None:
        if stop_event.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stop_event.set()
        print("\nstopping after the current step (Ctrl-C again to abort) ...", flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
