"""RankMe (Garrido et al. 2023): the effective rank of a batch of embeddings, a label-free collapse signal.

"RankMe(Z) = exp( -sum_k p_k log p_k ),  p_k = sigma_k(Z) / ||sigma(Z)||_1 + eps", the entropy of the
normalised singular values. It lies in [1, min(N, D)]: 1 when every embedding lies on one line (complete
collapse), D when the features use all their dimensions evenly. The paper found it tracks downstream
accuracy across self-supervised methods without any label, so it is drawn for every method here.
"""

from __future__ import annotations

import torch

EPS = 1e-7  # the paper's
MIN_ROWS = 2048  # rows kept at least (evenly spaced), and at least twice the dimension: RankMe needs N > D


@torch.no_grad()
def rankme(h: torch.Tensor, eps: float = EPS, max_rows: int | None = None) -> float:
    """Effective rank of h: (N, D) float embeddings (N >= 2).

    Uses at most ``max_rows`` evenly spaced rows (default max(MIN_ROWS, 2 * D)): for 512-d features about
    0.1 s on a CPU, small beside the kNN monitor it runs with.
    """
    if h.dim() != 2 or h.shape[0] < 2:
        raise ValueError(f"h must be (N, D) with N >= 2, got {tuple(h.shape)}")
    max_rows = max_rows or max(MIN_ROWS, 2 * h.shape[1])
    if h.shape[0] > max_rows:
        h = h[torch.linspace(0, h.shape[0] - 1, max_rows, device=h.device).long()]
    sigma = torch.linalg.svdvals(h.double())
    p = sigma / sigma.sum().clamp_min(torch.finfo(torch.float64).tiny) + eps
    return float(torch.exp(-(p * p.log()).sum()))
