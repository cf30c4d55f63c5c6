"""All-gather with gradient, so the InfoNCE negatives come from every device under DDP.

Why our own autograd function: the backward of a gather must SUM the incoming gradient over
ranks before keeping the local slice. Public SimCLR code has shipped a backward that returns
only the local slice (lightly-ai/lightly#1531) and ``torch.distributed.nn.all_gather`` once dropped
non-contiguous gradients (pytorch/pytorch#120386); all_reduce + slice is simple to check.

Exactness under DDP, with W ranks of B images each, and the single-device loss
``L`` on the concatenated batch of W * B images (the mean over all (anchor, positive) pairs):

* ``global_info_nce`` lets rank r compute ``L_r``, the mean over the pairs whose anchor is one of
  its own images, against every gathered key; ``L = (1 / W) * sum_r L_r`` and ``L_r`` is exactly
  what the single device computes for those rows.
* The backward of ``gather_views`` delivers ``sum_r' dL_r'/dz_r = W * dL/dz_r`` to rank r's
  local projections, and DDP then averages the parameter gradients over the W ranks:
  ``(1 / W) * sum_r W * dL/dz_r * dz_r/dtheta = dL/dtheta``, the single-device gradient.
* The loss each rank logs is its own ``L_r``; their mean over ranks (Lightning's ``sync_dist``)
  is ``L``; the rank metrics average the same way.

All ranks must pass the same number of images per step (equal shards, drop_last): collectives
need equal shapes, and the equal-weight mean over ranks assumes it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from simclr_core.loss import info_nce


def is_distributed() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def env_global_rank() -> int:
    """This process's global rank as launchers announce it before any process group exists."""
    for key in ("RANK", "SLURM_PROCID"):
        if (
            os.environ.get(key, "").isdigit()
            and int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))) > 1
        ):
            return int(os.environ[key])
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


DDP_CONTROL_EVERY = 10  # steps between rank 0's stop and schedule decisions shared with the other ranks


def broadcast_from_zero(trainer: Any, value: Any) -> Any:
    """Rank 0's ``value`` on every rank of ``trainer`` (a Lightning Trainer); ``value`` itself on one process.

    The one place the training callbacks and the module share a decision across ranks: every rank
    must call it at the same point, or the collective hangs.
    """
    if trainer.world_size > 1:
        return trainer.strategy.broadcast(value, src=0)
    return value


class _GatherViews(torch.autograd.Function):
    """(n_views * B, D) per rank -> (n_views * W * B, D), global view-major; backward sums over ranks."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, n_views: int) -> torch.Tensor:  # type: ignore[override]
        rank, world = dist.get_rank(), dist.get_world_size()
        z = z.contiguous()
        parts = [torch.empty_like(z) for _ in range(world)]
        dist.all_gather(parts, z)
        ctx.rank, ctx.world, ctx.n_views = rank, world, n_views
        # (W, V, B, D) -> (V, W, B, D): all first views of every rank first, as on one device.
        stacked = torch.stack(parts).view(world, n_views, -1, z.shape[1])
        return stacked.transpose(0, 1).reshape(-1, z.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        # Sum in float32: under bf16 autocast W low-precision partial gradients would round at every add.
        total = grad.float().contiguous()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        per_rank = total.view(ctx.n_views, ctx.world, -1, grad.shape[1])
        return per_rank[:, ctx.rank].reshape(-1, grad.shape[1]).to(grad.dtype), None


def gather_views(z: torch.Tensor, n_views: int) -> torch.Tensor:
    """Every rank's view-major projections, concatenated in global view-major order.

    z: (n_views * B, D) on this rank, row v * B + b = view v of local image b.
    Returns (n_views * W * B, D), row v * W * B + r * B + b = view v of image b of rank r, so image
    indices are rank-major (rank r owns images [r * B, (r + 1) * B)) and positives stay N apart as
    ``info_nce`` expects. Identity without a process group of more than one rank. The backward sums
    the gradient over ranks (see the module docstring for why that makes DDP exact).
    """
    if z.dim() != 2 or z.shape[0] % n_views:
        raise ValueError(f"z must be (n_views * B, D) with n_views={n_views}, got shape {tuple(z.shape)}")
    if not is_distributed():
        return z
    return _GatherViews.apply(z, n_views)


def global_info_nce(
    z: torch.Tensor, temperature: float, n_views: int = 2
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """InfoNCE of this rank's anchors against the negatives of all ranks.

    z: (n_views * B, D) local projections, view-major. Returns ``info_nce``'s (loss, metrics) for
    the local anchors; on one process it is exactly ``info_nce(z, temperature, n_views)``. Under DDP
    the mean over ranks of the loss and of each metric is the single-device value at batch W * B,
    and DDP-averaged parameter gradients equal the single-device ones.
    """
    if not is_distributed():
        return info_nce(z, temperature, n_views)
    rank, _ = rank_and_world()
    b = z.shape[0] // n_views
    keys = gather_views(z, n_views)
    return info_nce(keys, temperature, n_views, anchors=(rank * b, (rank + 1) * b))
