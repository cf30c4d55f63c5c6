"""How hard an augmentation makes SimCLR's pretext task for one encoder, and what the encoder sees.

The pretext task is to find, among all views of a batch, the other view of one's own image. How
hard the current augmentations make it for a given encoder is the InfoNCE loss and the ranking
metrics of ``loss.info_nce`` measured on a *fixed* batch: the same images and the same random draws
(one augmentation seed), so moving a slider changes the views smoothly and the numbers follow the
setting, not the sampling noise. Stronger augmentations raise the loss of a trained encoder; a
random encoder still finds identical views (top-1 = 1) but little else.

``measure`` runs the whole batch once (two views per image, eval mode, no gradients) and keeps the
normalised projections, so ``lineup`` can then show the task for one image without recomputing: its
positive, the most similar other views and where the positive ranks among them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simclr_core.augment import make_views
from simclr_core.config import AugmentationConfig, ConfigError
from simclr_core.features import RandomInit
from simclr_core.loss import info_nce
from simclr_core.model import SimCLRNet, load_checkpoint

BATCH = 256  # images of the fixed batch (512 views): the batch size of the seed's training
DEFAULT_TEMPERATURE = 0.07  # the seed's; a checkpoint's own temperature is used when it has one


@dataclass
class Encoder:
    """An encoder ready for the meter: the network in eval mode and what its training fixed."""

    net: SimCLRNet
    image_size: int  # side of its training views: the meter's views are made at this size
    temperature: float  # the InfoNCE temperature it was trained with
    label: str


def load_encoder(source: str | Path | RandomInit, temperature: float | None = None) -> Encoder:
    """A checkpoint file (this project's or the tutorial's) or a random-init encoder, in eval mode, channels-last.

    ``temperature`` overrides the checkpoint's (a random init has none: the seed's 0.07 unless given).
    """
    if isinstance(source, RandomInit):
        net, size, temp, label = source.build(), source.image_size, DEFAULT_TEMPERATURE, "random init"
    else:
        loaded = load_checkpoint(source)
        hp = loaded.hparams
        net, size = loaded.net, int(hp.get("image_size") or 96)
        temp, label = float(hp.get("temperature") or DEFAULT_TEMPERATURE), Path(source).name
    net = net.eval().to(memory_format=torch.channels_last)
    return Encoder(net, size, float(temperature or temp), label)


def batch_indices(n: int, first: list[int] | np.ndarray, size: int = BATCH, seed: int = 0) -> np.ndarray:
    """Indices of a fixed batch of ``min(size, n)`` images of a set of ``n``: ``first`` (in order), then a seeded draw.

    The Augment page puts its preview images first, so the lineup can show any of them.
    """
    first = [int(i) for i in dict.fromkeys(int(i) for i in first) if 0 <= int(i) < n][:size]
    rest = np.random.default_rng(seed).permutation(n)
    rest = rest[~np.isin(rest, first)][: max(0, min(size, n) - len(first))]
    return np.concatenate([np.asarray(first, dtype=np.int64), rest.astype(np.int64)])


@dataclass
class Difficulty:
    """The meter's reading on one batch of N images (2N views, view-major: row v * N + b is view v of image b)."""

    loss: float  # InfoNCE, averaged over both directions of every pair
    top1: float  # share of anchors whose positive is the most similar other view
    top5: float  # ... among the 5 most similar
    mean_pos: float  # 1 + mean number of negatives more similar than the positive
    temperature: float
    views: torch.Tensor  # (2N, 3, S, S) float32, normalised as the encoder saw them
    z: torch.Tensor  # (2N, D) float32, L2-normalised projections g(f(x))
    seconds: float  # augment + encode + loss, wall clock

    @property
    def n_images(self) -> int:
        return self.z.shape[0] // 2


@torch.no_grad()  # not inference_mode: tiny_maps caches index tensors that a later training step must use
def measure(encoder: Encoder, images_u8: torch.Tensor, cfg: AugmentationConfig, seed: int = 0) -> Difficulty:
    """Two views of each of ``images_u8: (N, 3, H, W) uint8`` (N >= 2) drawn with ``seed``, through the encoder.

    The views are made at the encoder's training size whatever ``cfg.crop_size`` says: the difficulty
    of a task is that of the views the encoder would be trained on.
    """
    if images_u8.shape[0] < 2:
        raise ConfigError("the difficulty meter needs at least 2 images: negatives come from the other images")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    views = make_views(images_u8, cfg, 2, gen, encoder.image_size)
    _, z = encoder.net(views.contiguous(memory_format=torch.channels_last))
    loss, metrics = info_nce(z, encoder.temperature, 2)
    return Difficulty(
        loss=float(loss),
        top1=float(metrics["acc_top1"]),
        top5=float(metrics["acc_top5"]),
        mean_pos=float(metrics["acc_mean_pos"]),
        temperature=encoder.temperature,
        views=views,
        z=F.normalize(z.float(), dim=1),
        seconds=time.perf_counter() - start,
    )


@dataclass
class Match:
    """One view of the batch as a candidate for an anchor."""

    row: int  # row of the view in ``Difficulty.views``
    image: int  # position of its image in the batch
    view: int  # 0 or 1
    similarity: float  # cosine similarity to the anchor's projection
    positive: bool  # the anchor's other view


@dataclass
class Lineup:
    """The pretext task for one anchor: its positive and the most similar other views."""

    anchor: int  # row of the anchor view
    positive: Match
    rank: int  # 1-based place of the positive among all other views, by similarity (1: task solved)
    candidates: int  # other views it competes with (2N - 1)
    nearest: list[Match]  # the k most similar other views, most similar first


def lineup(reading: Difficulty, image: int, k: int = 8, view: int = 0) -> Lineup:
    """The task as the encoder sees it for view ``view`` of batch image ``image``."""
    n = reading.n_images
    if not 0 <= image < n:
        raise ConfigError(f"image {image} is outside the batch of {n} images")
    anchor, pos_row = view * n + image, (1 - view) * n + image
    sims = reading.z @ reading.z[anchor]
    sims[anchor] = float("-inf")
    order = torch.argsort(sims, descending=True, stable=True)[: min(k, 2 * n - 1)]

    def match(row: int) -> Match:
        return Match(row, row % n, row // n, float(sims[row]), row == pos_row)

    rank = 1 + int((sims > sims[pos_row]).sum())
    return Lineup(anchor, match(pos_row), rank, 2 * n - 1, [match(int(r)) for r in order])
