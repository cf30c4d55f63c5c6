"""Index batches over an in-memory uint8 image tensor: the training and validation loaders.

No worker processes and no per-image ``__getitem__``: a sampler yields a whole batch of indices, the
dataset slices the (possibly memory-mapped) tensor once, and the augmentation runs on the training
device inside the module. Also the deterministic class-balanced subsets used for validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from simclr_core.distributed import rank_and_world
from simclr_core.seeding import stream_seed

KNN_QUERIES = 5000  # kNN monitor queries (and images of the augmented val_*) per epoch


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


def batch_loader(dataset: UInt8Images, sampler: EpochBatches, pin: bool) -> DataLoader:
    """A DataLoader of whole index batches (``batch_size=None``): the dataset slices the uint8 tensor once."""
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
