"""RankMe (Garrido et al. 2023): the effective rank of a batch of embeddings, a label-free collapse signal.

"RankMe(Z) = exp( -sum_k p_k log p_k ),  p_k = sigma_k(Z) / ||sigma(Z)||_1 + eps", the entropy of the
normalised singular values. It lies in [1, min(N, D)]: 1 when every embedding lies on one line (complete
collapse), D when the features use all their dimensions evenly. The paper found it tracks downstream
accuracy across self-supervised methods without any label, so it is drawn for every method here.
"""

from __future__ import annotations

import torch

EPS = 1e-7  # the paper's
MAX_ROWS = 8192  # evenly spaced rows: enough for D <= 2048 features (RankMe needs N > D), ~0.1 s on a CPU


@torch.no_grad()
def rankme(h: torch.Tensor, eps: float = EPS, max_rows: int = MAX_ROWS) -> float:
    """Effective rank of h: (N, D) float embeddings (N >= 2); uses at most ``max_rows`` evenly spaced rows."""
    if h.dim() != 2 or h.shape[0] < 2:
        raise ValueError(f"h must be (N, D) with N >= 2, got {tuple(h.shape)}")
    if h.shape[0] > max_rows:
        h = h[torch.linspace(0, h.shape[0] - 1, max_rows, device=h.device).long()]
    sigma = torch.linalg.svdvals(h.double())
    p = sigma / sigma.sum().clamp_min(torch.finfo(torch.float64).tiny) + eps
    return float(torch.exp(-(p * p.log()).sum()))
