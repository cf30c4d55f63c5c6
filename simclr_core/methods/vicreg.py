"""VICReg (Bardes et al. 2022): invariance, variance and covariance terms on the embeddings of two views.

"the variance term [...] keeps the standard deviation of each variable of the embedding above a given
threshold [...] the covariance term decorrelates the variables of each embedding [...] the invariance
term [is] the mean-squared distance between the embedding vectors":

    s(Z, Z') = (1 / N) sum_b || z_b - z'_b ||^2 / D                  (F.mse_loss)
    v(Z)     = (1 / D) sum_j max(0, 1 - sqrt(Var(Z_j) + eps))         (gamma = 1, eps = 1e-4)
    c(Z)     = (1 / D) sum_{i != j} Cov(Z)_ij^2,  Cov(Z) = (Z - mean)^T (Z - mean) / (N - 1)
    L = lambda * s(Z, Z') + mu * (v(Z) + v(Z')) + nu * (c(Z) + c(Z'))   (25, 25, 1)

as in the paper's Algorithm 1. With n_views > 2 the loss is the mean over the unordered pairs of views.

Under DDP, means, variances and covariances are statistics of the GLOBAL batch: every rank gathers all
projections (``distributed.gather_views``, backward summed over ranks) and computes the same L; see
``barlowtwins`` for why DDP's averaged gradient is then the single-device one.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from simclr_core.distributed import gather_views
from simclr_core.methods.base import Method, rank_metrics

SIM_COEFF, STD_COEFF, COV_COEFF = 25.0, 25.0, 1.0  # lambda, mu, nu: the paper's
EPS = 1e-4


def variance_term(z: torch.Tensor) -> torch.Tensor:
    """v(Z): mean hinge of each dimension's std below 1. z: (N, D) float32."""
    return F.relu(1 - torch.sqrt(z.var(0) + EPS)).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """c(Z): squared off-diagonal covariances, summed, over D. z: (N, D) float32."""
    n, d = z.shape
    centred = z - z.mean(0)
    cov = centred.T @ centred / (n - 1)
    return cov.masked_fill(torch.eye(d, dtype=torch.bool, device=z.device), 0).pow(2).sum() / d


def vicreg_loss(z: torch.Tensor, n_views: int = 2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L of view-major embeddings z: (n_views * N, D) on this process (no gather: see ``global_vicreg``).

    Returns (loss: 0-dim float32, {"invariance": s, "variance": v(Z) + v(Z'), "covariance": c(Z) + c(Z')},
    unweighted, detached, means over the pairs of views).
    """
    if z.dim() != 2 or z.shape[0] % n_views or n_views < 2 or z.shape[0] // n_views < 2:
        raise ValueError(f"z must be (n_views * N, D) with N >= 2 and n_views={n_views}, got {tuple(z.shape)}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        views = z.float().view(n_views, -1, z.shape[1])
        var = [variance_term(v) for v in views]
        cov = [covariance_term(v) for v in views]
        pairs = list(itertools.combinations(range(n_views), 2))
        s = torch.stack([F.mse_loss(views[a], views[b]) for a, b in pairs]).mean()
        v = torch.stack([var[a] + var[b] for a, b in pairs]).mean()
        c = torch.stack([cov[a] + cov[b] for a, b in pairs]).mean()
        loss = SIM_COEFF * s + STD_COEFF * v + COV_COEFF * c
    return loss, {"invariance": s.detach(), "variance": v.detach(), "covariance": c.detach()}


def global_vicreg(z: torch.Tensor, n_views: int = 2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``vicreg_loss`` of every rank's projections together: the same value on each rank."""
    return vicreg_loss(gather_views(z, n_views), n_views)


class VICReg(Method):
    name = "vicreg"
    terms = ("invariance", "variance", "covariance")

    def forward(
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, terms = global_vicreg(z, n_views)
        return loss, {**rank_metrics(z, n_views), **terms}
