"""Weighted cosine k-nearest-neighbour classifier: the online monitor and a cheap evaluation.

Each query takes its k most cosine-similar bank features; neighbour j votes for its label with
weight exp(sim_j / T) (InstDisc, Wu et al. 2018, and the kNN monitor common in SSL code), and the
class with the largest summed weight wins. Queries are processed in chunks so a 50k x 50k problem
never materialises the full similarity matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Similarity entries per chunk (float32): 2^25 is 128 MiB, e.g. 671 queries against a 50k bank.
_CHUNK_ELEMENTS = 1 << 25


def _check(
    bank_feats: torch.Tensor, bank_labels: torch.Tensor, query_feats: torch.Tensor, k: int, temperature: float
) -> None:
    if bank_feats.dim() != 2 or query_feats.dim() != 2 or bank_feats.shape[1] != query_feats.shape[1]:
        raise ValueError(
            f"bank and query features must be (M, D) and (Q, D), got {tuple(bank_feats.shape)} and {tuple(query_feats.shape)}"
        )
    if bank_labels.shape != (bank_feats.shape[0],):
        raise ValueError(f"bank_labels must be ({bank_feats.shape[0]},), got {tuple(bank_labels.shape)}")
    if bank_feats.shape[0] == 0:
        raise ValueError("the kNN bank is empty: it needs labelled features to vote")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


@torch.no_grad()
def knn_predict(
    bank_feats: torch.Tensor,
    bank_labels: torch.Tensor,
    query_feats: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int | None = None,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predicted class of each query by a similarity-weighted vote of its k nearest bank features.

    bank_feats: (M, D) float, bank_labels: (M,) int with values in [0, num_classes), query_feats: (Q, D)
    float; features need not be normalised. k is capped at M. num_classes defaults to max label + 1.
    chunk_size: queries per chunk (default: about 128 MiB of similarities). Computed on the queries'
    device. exclude: (Q,) bank row of each query itself (leave-one-out when queries are in the bank),
    or -1 for none. Returns (Q,) int64 predictions on that device.
    """
    _check(bank_feats, bank_labels, query_feats, k, temperature)
    device = query_feats.device
    labels = bank_labels.to(device=device, dtype=torch.long)
    if bool((labels < 0).any()):
        raise ValueError("bank_labels contains negative (unlabelled) entries; the kNN bank must be labelled")
    n_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if int(labels.max()) >= n_classes:
        raise ValueError(f"bank_labels go up to {int(labels.max())} but num_classes is {n_classes}")
    bank = F.normalize(bank_feats.to(device=device, dtype=torch.float32), dim=1)
    queries = F.normalize(query_feats.to(dtype=torch.float32), dim=1)
    k = min(k, bank.shape[0] - (1 if exclude is not None else 0))
    if k < 1:
        raise ValueError("leave-one-out kNN needs a bank of at least 2 features")
    step = chunk_size or max(1, _CHUNK_ELEMENTS // bank.shape[0])
    preds = []
    for start in range(0, queries.shape[0], step):
        sim = queries[start : start + step] @ bank.T  # (c, M)
        if exclude is not None:
            own = exclude[start : start + step].to(device)
            rows = (own >= 0).nonzero().flatten()
            sim[rows, own[rows]] = -float("inf")
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], n_classes, device=device)
        votes.scatter_add_(1, labels[top_idx], (top_sim / temperature).exp())
        preds.append(votes.argmax(dim=1))
    if not preds:
        return torch.empty(0, dtype=torch.long, device=device)
    return torch.cat(preds)


def knn_accuracy(
    bank_feats: torch.Tensor,
    bank_labels: torch.Tensor,
    query_feats: torch.Tensor,
    query_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int | None = None,
    exclude: torch.Tensor | None = None,
) -> float:
    """Fraction of queries (Q,) whose ``knn_predict`` equals query_labels (Q,); a Python float in [0, 1]."""
    if query_labels.shape != (query_feats.shape[0],):
        raise ValueError(f"query_labels must be ({query_feats.shape[0]},), got {tuple(query_labels.shape)}")
    if query_feats.shape[0] == 0:
        raise ValueError("no query features: kNN accuracy needs at least one labelled query")
    if num_classes is None:
        num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    preds = knn_predict(bank_feats, bank_labels, query_feats, k, temperature, num_classes, chunk_size, exclude)
    return (preds == query_labels.to(preds.device)).float().mean().item()
