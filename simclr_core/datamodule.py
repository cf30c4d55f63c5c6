"""The LightningDataModule of a SimCLR run: ``data.training_data`` behind Lightning's loader hooks.

``SimCLRDataModule(config)`` with ``module.SimCLRModule(config)`` trains in any ``pl.Trainer``; the
run orchestration (``train._fit``) passes the data it already loaded and checked, so both read the
same images the same way. Batches are whole index batches over the in-memory uint8 tensor
(``data.batches``): per process ``batch_size // world`` training images, validation dealt round-robin.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from simclr_core.config import TrainConfig
from simclr_core.data.batches import EpochBatches, UInt8Images, batch_loader
from simclr_core.data.training_data import TrainingData, load_training_data, per_device_batch


class SimCLRDataModule(pl.LightningDataModule):
    """The training images and, when the config has one, the labelled monitoring split (``val_dataloader``).

    ``data``: images already loaded by ``load_training_data`` (else loaded at ``setup``, on every rank);
    ``progress``: the data-progress callback of that load.
    """

    def __init__(
        self,
        config: TrainConfig,
        data: TrainingData | None = None,
        progress: Callable[..., None] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.data = data
        self.progress = progress

    def setup(self, stage: str) -> None:
        if self.data is None:
            self.data = load_training_data(self.config, self.progress)

    @property
    def knn_query_mask(self) -> torch.Tensor | None:
        """Which validation images are kNN queries (None before ``setup`` or without labelled validation data)."""
        return self.data.knn_mask if self.data is not None else None

    def _world(self) -> tuple[int, bool]:
        """(processes, pin memory): read from the Trainer, which knows its devices and nodes."""
        trainer = self.trainer
        if trainer is None:
            return 1, False
        return trainer.world_size, trainer.strategy.root_device.type == "cuda"

    def _loaded(self) -> TrainingData:
        if self.data is None:
            self.setup("fit")
        assert self.data is not None
        return self.data

    def train_dataloader(self) -> DataLoader:
        data, cfg = self._loaded(), self.config
        world, pin = self._world()
        sampler = EpochBatches(
            len(data.train_images), per_device_batch(cfg.batch_size, world), shuffle=True, seed=cfg.seed, world=world
        )
        trainer = self.trainer
        if trainer is not None:
            progress = trainer.fit_loop.epoch_loop.batch_progress
            # After Lightning restores a mid-epoch checkpoint, ``completed`` counts the batches already done.
            sampler.skip_fn = lambda: progress.current.completed
        return batch_loader(UInt8Images(data.train_images, data.train_labels), sampler, pin)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The monitoring split; an empty list (Lightning's "no validation") without labelled data."""
        data, cfg = self._loaded(), self.config
        if data.val_images is None:
            return []
        world, pin = self._world()
        sampler = EpochBatches(
            len(data.val_images), per_device_batch(cfg.batch_size, world), shuffle=False, world=world
        )
        return batch_loader(UInt8Images(data.val_images, data.val_labels), sampler, pin)
