"""RankMe: closed forms (one direction, D equal directions) and a transcription of the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from simclr_core.rankme import rankme


def paper_rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    s = torch.linalg.svd(z.double(), full_matrices=False).S
    p = s / torch.linalg.norm(s, ord=1) + eps
    return float(torch.exp(-torch.sum(p * torch.log(p))))


def test_collapsed_embeddings_have_rank_one() -> None:
    line = torch.randn(100, 1) * torch.randn(1, 16)
    assert rankme(line) == pytest.approx(1.0, abs=1e-3)


def test_evenly_spread_embeddings_have_full_rank() -> None:
    q = torch.linalg.qr(torch.randn(200, 16))[0]  # 16 orthonormal columns: equal singular values
    assert rankme(q) == pytest.approx(16.0, rel=1e-4)


def test_matches_the_papers_formula_and_grows_with_spread() -> None:
    z = torch.randn(300, 32) * torch.logspace(0, -3, 32)
    assert rankme(z) == pytest.approx(paper_rankme(z), rel=1e-9)
    assert 1 < rankme(z) < rankme(torch.randn(300, 32)) <= 32


def test_subsampling_keeps_the_value_of_isotropic_features() -> None:
    z = torch.randn(20000, 8)
    assert rankme(z, max_rows=4000) == pytest.approx(rankme(z, max_rows=20000), rel=0.01)
    with pytest.raises(ValueError, match="N >= 2"):
        rankme(torch.randn(1, 4))
    assert math.isfinite(rankme(torch.zeros(10, 4)))  # all zero: no NaN (the eps keeps the logs finite)
