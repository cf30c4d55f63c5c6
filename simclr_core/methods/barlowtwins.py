"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of two views' embeddings the identity.

"The invariance term of the objective, by trying to equate the diagonal elements of the
cross-correlation matrix to 1, makes the embedding invariant to the distortions applied. The
redundancy reduction term, by trying to equate the off-diagonal elements [...] to 0, decorrelates
the different vector components of the embedding":

    L = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2,
    C_ij = sum_b za_bi * zb_bj / N   with za, zb standardised per dimension over the batch

(Algorithm 1; the official code standardises with BatchNorm1d(affine=False), i.e. the biased variance
plus eps 1e-5, which is what this does, so two identical views give C_ii = 1 exactly). With n_views > 2
the loss is the mean over the unordered pairs of views.

Under DDP the means, variances and C are statistics of the GLOBAL batch: every rank gathers all
projections (``distributed.gather_views``, whose backward sums over ranks) and computes the same L, so
the gradient of each rank's projections is W * dL/dz and DDP's averaging gives the single-device
gradient (the argument in ``distributed``'s docstring, with every rank owning the whole loss).
"""

from __future__ import annotations

import itertools

import torch

from simclr_core.distributed import gather_views
from simclr_core.methods.base import Method, rank_metrics

LAMBDA = 5e-3  # the paper's weight of the redundancy term ("trades off the importance of the first and second terms")
EPS = 1e-5  # BatchNorm1d's, added to the variance


def _standardise(z: torch.Tensor) -> torch.Tensor:
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + EPS)


def cross_correlation(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """C: (D, D) float32 between two (N, D) embeddings, each standardised over the batch."""
    return _standardise(za.float()).T @ _standardise(zb.float()) / za.shape[0]


def barlow_twins_loss(
    z: torch.Tensor, n_views: int = 2, lambd: float = LAMBDA
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L of view-major embeddings z: (n_views * N, D) on this process (no gather: see ``global_barlow_twins``).

    Returns (loss: 0-dim float32, {"on_diagonal": sum (1 - C_ii)^2, "off_diagonal": sum_{i != j} C_ij^2},
    both unweighted, detached, means over the pairs of views).
    """
    if z.dim() != 2 or z.shape[0] % n_views or n_views < 2 or z.shape[0] // n_views < 2:
        raise ValueError(f"z must be (n_views * N, D) with N >= 2 and n_views={n_views}, got {tuple(z.shape)}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        views = z.float().view(n_views, -1, z.shape[1])
        on, off = [], []
        eye = torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
        for a, b in itertools.combinations(range(n_views), 2):
            c = cross_correlation(views[a], views[b])
            on.append((1 - c.diagonal()).pow(2).sum())
            off.append(c.masked_fill(eye, 0).pow(2).sum())
        on_t, off_t = torch.stack(on).mean(), torch.stack(off).mean()
        loss = on_t + lambd * off_t
    return loss, {"on_diagonal": on_t.detach(), "off_diagonal": off_t.detach()}


def global_barlow_twins(
    z: torch.Tensor, n_views: int = 2, lambd: float = LAMBDA
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``barlow_twins_loss`` of every rank's projections together: the same value on each rank."""
    return barlow_twins_loss(gather_views(z, n_views), n_views, lambd)


class BarlowTwins(Method):
    name = "barlowtwins"
    terms = ("on_diagonal", "off_diagonal")

    def forward(
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, terms = global_barlow_twins(z, n_views)
        return loss, {**rank_metrics(z, n_views), **terms}
