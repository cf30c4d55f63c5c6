"""Supervised contrastive learning (Khosla et al. 2020): every view of the same CLASS is a positive.

It needs labels: it trains on a labelled split (``cifar10:train``, ``shapes:train``, a class-folder
dataset), so it is not self-supervised and its kNN/probe numbers are not comparable with the label-free
methods' as "learning without labels". It is here as the upper reference of the same engine.

"L^sup_out" (their Eq. 2, the variant they recommend), over the 2N (here n_views * N) views, with
A(i) every view but i, P(i) the views in A(i) with i's label and z normalised:

    L = sum_i (-1 / |P(i)|) sum_{p in P(i)} log( exp(z_i . z_p / T) / sum_{a in A(i)} exp(z_i . z_a / T) )

averaged over the anchors i. With all labels distinct and two views, P(i) is i's other view and A(i)
every other row: exactly SimCLR's NT-Xent (``loss.info_nce``).

Under DDP each rank's anchors meet the keys and labels of every rank, like ``distributed.global_info_nce``:
the mean over ranks of the local losses is the global batch's, and DDP's averaged gradients the
single-device ones (same argument as there).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from simclr_core.config import ConfigError
from simclr_core.distributed import gather_views, is_distributed, rank_and_world
from simclr_core.methods.base import Method, rank_metrics


def supcon_loss(
    feats: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    n_views: int = 2,
    anchors: tuple[int, int] | None = None,
) -> torch.Tensor:
    """L^sup_out of view-major projections feats: (n_views * N, D) with image labels (N,) int64.

    anchors: (start, stop) image range whose views are anchors (None: all), every view a key.
    Returns a 0-dim float32 tensor.
    """
    if feats.dim() != 2 or feats.shape[0] % n_views or n_views < 2:
        raise ValueError(f"feats must be (n_views * N, D) with n_views={n_views}, got {tuple(feats.shape)}")
    n = feats.shape[0] // n_views
    if labels.shape != (n,):
        raise ValueError(f"labels must be ({n},), one per image, got {tuple(labels.shape)}")
    start, stop = anchors if anchors is not None else (0, n)
    device = feats.device
    with torch.autocast(device_type=device.type, enabled=False):
        z = F.normalize(feats.float(), dim=1)
        row_label = labels.repeat(n_views)  # (n_views * N,)
        images = torch.arange(start, stop, device=device)
        rows = (torch.arange(n_views, device=device)[:, None] * n + images[None, :]).flatten()  # (R,) anchor rows
        logits = z[rows] @ z.T / temperature  # (R, n_views * N)
        is_self = torch.arange(z.shape[0], device=device)[None, :] == rows[:, None]
        log_prob = logits - torch.logsumexp(logits.masked_fill(is_self, float("-inf")), dim=1, keepdim=True)
        positive = (row_label[rows][:, None] == row_label[None, :]) & ~is_self
        per_anchor = -(log_prob.masked_fill(~positive, 0).sum(1)) / positive.sum(1)
        return per_anchor.mean()


def global_supcon(feats: torch.Tensor, labels: torch.Tensor, temperature: float, n_views: int = 2) -> torch.Tensor:
    """``supcon_loss`` of this rank's anchors against every rank's views and labels."""
    if not is_distributed():
        return supcon_loss(feats, labels, temperature, n_views)
    rank, world = rank_and_world()
    parts = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(parts, labels.contiguous())
    b = labels.shape[0]
    keys = gather_views(feats, n_views)  # image indices rank-major, as the labels
    return supcon_loss(keys, torch.cat(parts), temperature, n_views, anchors=(rank * b, (rank + 1) * b))


class SupCon(Method):
    name = "supcon"
    needs_labels = True

    def forward(
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if labels is None or bool((labels < 0).any()):
            raise ConfigError("method supcon trains on labels, but this batch has unlabelled images")
        loss = global_supcon(z, labels, temperature, n_views)
        return loss, rank_metrics(z, n_views)
