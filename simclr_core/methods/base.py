"""What every method shares: the interface ``SimCLRModule`` calls, and the label-free positive-pair ranking metrics.

A method sees the online projections z = g(f(views)) of one step and returns its loss and metrics;
the encoder f and head g (``model.SimCLRNet``) are the module's, so features, probes and embeddings
read every method's backbone the same way. A method may own more parts (BYOL: predictor, target).
"""

from __future__ import annotations

import torch
from torch import nn

from simclr_core.distributed import global_info_nce

RANK_METRICS = ("acc_top1", "acc_top5", "acc_mean_pos")


@torch.no_grad()
def rank_metrics(z: torch.Tensor, n_views: int) -> dict[str, torch.Tensor]:
    """Where each positive ranks among the batch's other images (``loss.info_nce``'s metrics), for any method.

    Rankings do not depend on the temperature, so this is the same retrieval score for every method:
    a method that learns invariant, spread-out projections finds its positives. z: (n_views * B, D).
    """
    _, metrics = global_info_nce(z.detach(), 1.0, n_views)
    return metrics


class Method(nn.Module):
    """One self-supervised objective over the projections of a view-major batch.

    ``terms``: the method's own metrics beyond loss and ``RANK_METRICS`` (logged as ``train_<term>``).
    ``needs_labels``: the loss reads the image labels (then training data must be labelled).
    """

    name = ""
    terms: tuple[str, ...] = ()
    needs_labels = False

    def forward(  # type: ignore[override]
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """z: (n_views * B, D) projections of ``views`` (n_views * B, 3, S, S); labels: (B,) int64 or None.

        Returns (loss: 0-dim float32, {RANK_METRICS..., *terms}: 0-dim float32, detached).
        """
        raise NotImplementedError

    def after_step(self, net: nn.Module, fraction: float) -> None:
        """Once per optimiser step, with the share of the budget done (BYOL moves its target); ``SimCLRModule``
        calls it at the start of the next step."""
