"""The images one training run reads: its training images and the labelled monitoring split.

``load_training_data(config)`` is the one place that turns a ``TrainConfig`` into them, for the
run orchestration (``train.prepare``) and for ``datamodule.SimCLRDataModule`` alike: the training
source cut to ``limit_images``, the labels a label-trained method needs, and the validation split
(``val_data``, else the source's labelled train split) reduced to ``val_limit`` images with its
kNN queries first. Problems a user can fix raise ConfigError/DatasetError before any run exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from simclr_core.config import ConfigError, TrainConfig
from simclr_core.data.batches import balanced_subset, knn_query_mask
from simclr_core.data.load import load_dataset
from simclr_core.data.spec import DatasetError, sibling_spec


@dataclass
class TrainingData:
    """Training images (and labels for supcon), and the labelled validation split with its kNN query mask."""

    train_images: torch.Tensor  # (N, 3, S, S) uint8
    train_labels: torch.Tensor | None = None  # (N,) int64, only for a method that trains on labels (supcon)
    val_images: torch.Tensor | None = None  # (V, 3, S, S) uint8, the kNN queries first
    val_labels: torch.Tensor | None = None  # (V,) int64
    knn_mask: torch.Tensor | None = None  # (V,) bool: which validation images are kNN queries
    val_spec: str | None = None  # the spec the validation split came from (None: no monitoring split)


def default_val_spec(data: str) -> str | None:
    """The labelled train split of the training source (the seed's validation set), if it has one."""
    try:
        return sibling_spec(data, "train")
    except (DatasetError, ValueError):
        return None


def per_device_batch(batch_size: int, world: int) -> int:
    """The images each of ``world`` processes takes per step: ``batch_size`` is global."""
    if batch_size % world:
        raise ConfigError(f"batch_size {batch_size} is global and must divide evenly over {world} processes")
    per_device = batch_size // world
    if per_device < 2:
        raise ConfigError(f"batch_size {batch_size} over {world} processes leaves fewer than 2 images each")
    return per_device


def load_training_data(
    config: TrainConfig,
    progress: Callable[..., None] | None = None,
    before_copy: Callable[[int], None] | None = None,
) -> TrainingData:
    """Load and check the run's images; ``before_copy(bytes)`` may refuse the validation copy (a memory check)."""
    kwargs = {"progress": progress} if progress else {}
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
    data = TrainingData(images)
    if config.method == "supcon":
        data.train_labels = _train_labels(config, train_set.labels[:n])
    val_spec = config.val_data or default_val_spec(config.data)
    if not val_spec:
        return data
    data.val_spec = val_spec
    val_set = train_set if val_spec == train_set.spec else load_dataset(val_spec, config.image_size, **kwargs)
    labelled = (val_set.labels >= 0).nonzero().flatten()
    if len(labelled) < 2:
        if config.val_data:
            raise ConfigError(f"validation data {val_spec!r} has fewer than 2 labelled images; give a labelled split")
        return data
    keep = labelled
    if config.val_limit is not None and config.val_limit < len(keep):
        keep = keep[balanced_subset(val_set.labels[keep], config.val_limit, config.seed)]
    query = knn_query_mask(val_set.labels[keep], config.seed)
    keep = torch.cat([keep[query], keep[~query]])  # queries first: whole batches of them for val_*
    if before_copy is not None:
        before_copy(len(keep) * 3 * config.image_size**2)  # the validation images about to be copied into RAM
    data.val_images, data.val_labels = val_set.images[keep], val_set.labels[keep].clone()
    data.knn_mask = torch.arange(len(keep)) < int(query.sum())
    return data


def _train_labels(config: TrainConfig, labels: torch.Tensor) -> torch.Tensor:
    """The training images' labels for supcon, refused in one line when some image has none."""
    missing = int((labels < 0).sum())
    if missing:
        raise ConfigError(
            f"method supcon trains on labels, but {missing} of the {len(labels)} training images of {config.data!r} "
            "have none; train on a labelled split (e.g. cifar10:train, shapes:train) or use a self-supervised method"
        )
    return labels.clone()
