"""SimCLR (Chen et al. 2020): NT-Xent over the views of the batch, the loss this engine started with.

"We randomly sample a minibatch of N examples and define the contrastive prediction task on pairs
of augmented examples derived from the minibatch, resulting in 2N data points":

    l(i, j) = -log( exp(sim(z_i, z_j) / T) / sum_{k != i} exp(sim(z_i, z_k) / T) )

averaged over all positive pairs. The formula, its n_views > 2 form and the ranking metrics live in
``simclr_core.loss``; the global batch under DDP in ``simclr_core.distributed.global_info_nce``.
"""

from __future__ import annotations

import torch

from simclr_core.distributed import global_info_nce
from simclr_core.methods.base import Method


def simclr_loss(z: torch.Tensor, temperature: float, n_views: int = 2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """NT-Xent of view-major projections z: (n_views * B, D) against the negatives of every rank.

    Returns (loss: 0-dim float32, {"acc_top1", "acc_top5", "acc_mean_pos"}: 0-dim float32, detached).
    """
    return global_info_nce(z, temperature, n_views)


class SimCLR(Method):
    name = "simclr"

    def forward(
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return simclr_loss(z, temperature, n_views)
