"""InfoNCE / NT-Xent over a view-major batch, with the seed's ranking metrics.

Layout: ``feats`` holds ``n_views * N`` rows stacked view-major, row ``v * N + b`` being view
``v`` of image ``b`` (the seed's ``torch.cat(imgs)``). With ``s_ij = cos(z_i, z_j) / T``, the set
``P(i)`` of the other views of row i's image and ``Neg(i)`` all rows of other images:

    loss = mean over pairs (i, p), i in rows, p in P(i), of
           -log( exp(s_ip) / (exp(s_ip) + sum_{n in Neg(i)} exp(s_in)) )

Every other view of the same image is a positive and is never in a denominator as a negative
("each positive against the negatives only"). For ``n_views == 2``, ``P(i)`` is the single row
``i +- N`` and the denominator is every row but i itself, which is exactly the seed's formula.
SupCon's multi-positive variant would instead keep the other positives in each denominator, so
they would be pushed apart like negatives; the loss here has no such term and reaches 0 when every
positive dominates its negatives.

Rank of a positive = number of negatives of its anchor with a strictly larger similarity
(0 = the positive beats every negative), which equals the seed's argsort position whenever
there are no exact ties. ``acc_top1 = P(rank == 0)``, ``acc_top5 = P(rank < 5)``,
``acc_mean_pos = 1 + mean(rank)``, averaged over the same pairs as the loss.

The similarity matrix is a normalised matmul in float32 with autocast disabled: bf16 logits at
T = 0.07 would lose the small differences the ranking metrics compare, and -inf masking stays exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

METRIC_NAMES = ("acc_top1", "acc_top5", "acc_mean_pos")


def _check(feats: torch.Tensor, temperature: float, n_views: int) -> int:
    if feats.dim() != 2:
        raise ValueError(f"feats must be (n_views * N, D), got shape {tuple(feats.shape)}")
    if n_views < 2:
        raise ValueError(f"n_views must be at least 2, got {n_views}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    total = feats.shape[0]
    if total % n_views:
        raise ValueError(f"{total} rows cannot be split into {n_views} views of equal size")
    n = total // n_views
    if n < 2:
        raise ValueError("InfoNCE needs at least 2 images per batch: negatives come from the other images")
    return n


def info_nce(
    feats: torch.Tensor,
    temperature: float,
    n_views: int = 2,
    anchors: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """InfoNCE loss and ranking metrics of view-major projections (formula in the module docstring).

    feats: (n_views * N, D) float of any dtype (autocast outputs welcome); need not be normalised.
    anchors: (start, stop) image range whose views act as anchors (rows of the similarity matrix);
        all N images serve as keys either way. None means every image. Under DDP each rank passes its
        own images of the gathered batch (see ``distributed.global_info_nce``), so no rank builds the
        full (n_views * N)^2 matrix.
    Returns (loss: 0-dim float32 tensor, {"acc_top1", "acc_top5", "acc_mean_pos"}: 0-dim float32
    tensors, detached). Nothing is copied to the host.
    """
    n = _check(feats, temperature, n_views)
    start, stop = anchors if anchors is not None else (0, n)
    if not 0 <= start < stop <= n:
        raise ValueError(f"anchors must be a non-empty image range within [0, {n}], got ({start}, {stop})")
    device = feats.device
    n_anchor = stop - start
    with torch.autocast(device_type=device.type, enabled=False):
        z = F.normalize(feats.float(), dim=1)
        views = torch.arange(n_views, device=device)
        anchor_img = torch.arange(start, stop, device=device).repeat(n_views)  # (R,) image of each row
        anchor_view = views.repeat_interleave(n_anchor)  # (R,) view of each row
        rows = z if anchors is None else z[anchor_view * n + anchor_img]
        logits = (rows @ z.T / temperature).view(-1, n_views, n)  # (R, n_views, N)
        r = torch.arange(logits.shape[0], device=device)
        own = logits[r, :, anchor_img]  # (R, n_views): the row against every view of its own image
        pos_cols = (anchor_view[:, None] + views[None, 1:]) % n_views  # (R, n_views - 1), self excluded
        pos = own.gather(1, pos_cols)
        same_img = torch.arange(n, device=device)[None, None, :] == anchor_img[:, None, None]
        negs = logits.masked_fill(same_img, float("-inf")).flatten(1)  # (R, n_views * N)
        neg_lse = torch.logsumexp(negs, dim=1, keepdim=True)
        loss = (torch.logaddexp(pos, neg_lse) - pos).mean()
        with torch.no_grad():
            negs_d, pos_d = negs.detach(), pos.detach()
            ranks = torch.stack([(negs_d > pos_d[:, k : k + 1]).sum(dim=1) for k in range(n_views - 1)], dim=1)
            metrics = {
                "acc_top1": (ranks == 0).float().mean(),
                "acc_top5": (ranks < 5).float().mean(),
                "acc_mean_pos": 1.0 + ranks.float().mean(),
            }
    return loss, metrics
