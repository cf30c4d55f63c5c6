"""What a training checks before its run directory exists: settings, devices, memory, then the data.

``prepare`` raises ConfigError/DatasetError on anything that cannot work (an unknown strategy, a
batch that does not divide over the processes, too little memory, too few images or labels), so a
mistake costs seconds and leaves nothing behind. ``stop_while_loading`` lets a stop request end a
long decode early.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from simclr_core import metrics
from simclr_core.config import ConfigError, TrainConfig
from simclr_core.data.training_data import TrainingData, load_training_data, per_device_batch
from simclr_core.devices import resolve_device, resolve_precision
from simclr_core.memory import check as check_memory


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
    data: TrainingData
    accelerator: str
    devices: Any
    precision: str
    world: int
    per_device_batch: int

    @property
    def train_images(self) -> torch.Tensor:
        return self.data.train_images

    @property
    def val_spec(self) -> str | None:
        return self.data.val_spec


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
    per_device = per_device_batch(config.batch_size, world)
    here = world // config.num_nodes  # processes on this host
    check_memory(config, precision, accelerator, per_device, processes_here=here)  # before any data is decoded

    def check_copy(data_bytes: int) -> None:
        check_memory(config, precision, accelerator, per_device, data_bytes=data_bytes, processes_here=here)

    data = load_training_data(config, data_progress, check_copy)
    if data.knn_mask is None and config.monitor == metrics.KNN_ACC:
        raise ConfigError("monitor knn_acc needs labelled validation data (--val-data); use --monitor val_acc_top5")
    return Prepared(config, data, accelerator, devices, precision, world, per_device)


def check_strategy(name: str) -> None:
    """Lightning's strategy names, refused here rather than by the Trainer once a run directory exists."""
    from pytorch_lightning.strategies import StrategyRegistry

    known = ("auto", *StrategyRegistry.available_strategies())
    if name not in known:
        common = ", ".join(n for n in known if "_" not in n or n == "ddp_spawn")
        raise ConfigError(f"unknown strategy {name!r}; choose one of {common} (or another Lightning strategy name)")
