"""BYOL (Grill et al. 2020): an online network predicts a momentum target network's projection of another view.

"we use an online network [...] to predict the target network representation of the same image
under a different augmented view", with the normalised mean squared error

    L(q, z') = || q / ||q|| - z' / ||z'|| ||^2 = 2 - 2 * <q, z'> / (||q|| * ||z'||)

symmetrised over the two views (``loss = L(q1, z2') + L(q2, z1')``, mean over the batch), the target
a stop-gradient, and the target's weights an exponential moving average of the online ones:

    xi <- tau * xi + (1 - tau) * theta,    tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2

so tau rises from tau_base to 1 over training. K here is the run's budget (time or steps: the same
fraction the lr schedule follows), so a 5-minute run ends with a frozen target as a 300-epoch one does.
With n_views > 2 every view predicts every other view; the mean over the ordered pairs is doubled, so
two views give exactly the paper's symmetrised sum.

BYOL's loss is a mean of per-image terms: under DDP each rank's mean over its own images, averaged by
DDP's gradient averaging, is the global batch's, with no gather. The target update reads only the
online weights (identical on every rank after DDP's averaged step) and the schedule fraction (rank 0's
clock, shared by ``SimCLRModule``), so it is identical on every rank.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from simclr_core.config import BYOL_BASE_MOMENTUM
from simclr_core.methods.base import Method, rank_metrics


def byol_loss(p: torch.Tensor, z_target: torch.Tensor, n_views: int = 2) -> torch.Tensor:
    """Normalised MSE between online predictions and target projections of the other views.

    p, z_target: (n_views * B, D), view-major (row v * B + b is view v of image b); z_target is used as
    given (detach it: the target is a stop-gradient). Returns a 0-dim float32 tensor in [0, 8].
    """
    if p.shape != z_target.shape or p.dim() != 2 or p.shape[0] % n_views or n_views < 2:
        raise ValueError(
            f"p and z_target must both be (n_views * B, D), got {tuple(p.shape)} and {tuple(z_target.shape)}"
        )
    with torch.autocast(device_type=p.device.type, enabled=False):
        q = F.normalize(p.float(), dim=1).view(n_views, -1, p.shape[1])
        t = F.normalize(z_target.float(), dim=1).view(n_views, -1, p.shape[1])
        cos = torch.einsum("vbd,wbd->vwb", q, t)  # (V, V, B): view v's prediction against view w's target
        off = ~torch.eye(n_views, dtype=torch.bool, device=p.device)
        return 2 * (2 - 2 * cos[off]).mean()


def target_momentum(fraction: float, base: float = BYOL_BASE_MOMENTUM) -> float:
    """tau at ``fraction`` in [0, 1] of the training budget: base at the start, 1 at the end (cosine)."""
    fraction = min(1.0, max(0.0, fraction))
    return 1 - (1 - base) * (math.cos(math.pi * fraction) + 1) / 2


@torch.no_grad()
def update_target(target: nn.Module, online: nn.Module, tau: float) -> None:
    """xi <- tau * xi + (1 - tau) * theta for every parameter; buffers (BN running stats) stay the target's own."""
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("target and online networks must have the same parameters")
    torch._foreach_lerp_(t_params, o_params, 1 - tau)


def make_predictor(dim: int) -> nn.Sequential:
    """q: "a multi-layer perceptron with the same architecture as the projector" (Linear-BN-ReLU-Linear)."""
    return nn.Sequential(
        nn.Linear(dim, 4 * dim), nn.BatchNorm1d(4 * dim), nn.ReLU(inplace=True), nn.Linear(4 * dim, dim)
    )


class BYOL(Method):
    """The predictor q and the target network (a frozen copy of f and g, moved by ``after_step``)."""

    name = "byol"
    terms = ("momentum",)

    def __init__(self, net: nn.Module, dim: int, base_momentum: float = BYOL_BASE_MOMENTUM) -> None:
        super().__init__()
        self.predictor = make_predictor(dim)
        self.target = copy.deepcopy(net)
        self.target.requires_grad_(False)
        self.base_momentum = base_momentum
        self.register_buffer("tau", torch.tensor(base_momentum), persistent=False)

    def forward(
        self, z: torch.Tensor, views: torch.Tensor, labels: torch.Tensor | None, n_views: int, temperature: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            _, z_target = self.target(views)
        loss = byol_loss(self.predictor(z), z_target.detach(), n_views)
        return loss, {**rank_metrics(z, n_views), "momentum": self.tau.detach().clone()}

    def after_step(self, net: nn.Module, fraction: float) -> None:
        tau = target_momentum(fraction, self.base_momentum)
        update_target(self.target, net, tau)
        self.tau.fill_(tau)
