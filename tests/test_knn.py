"""Weighted cosine kNN: a hand-checked example, a brute-force reference, chunking, separable data."""

from __future__ import annotations

import math

import pytest
import torch

from simclr_core.knn import knn_accuracy, knn_predict


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# One neighbour of class 0 at similarity 1, two of class 1 at similarity cos(53.13 deg) = 0.6, one far away.
BANK = torch.tensor([_unit(0), _unit(53.13), _unit(-53.13), _unit(180)])
BANK_LABELS = torch.tensor([0, 1, 1, 0])
QUERY = torch.tensor([[2.0, 0.0]])  # not normalised on purpose


def test_hand_checked_weighted_vote() -> None:
    # T = 0.1: class 0 gets e^10 ~ 22026, class 1 gets 2 e^6 ~ 807 -> 0, although class 1 has the majority.
    assert knn_predict(BANK, BANK_LABELS, QUERY, k=3, temperature=0.1).tolist() == [0]
    # T = 10: e^0.1 ~ 1.105 against 2 e^0.06 ~ 2.124 -> the majority class 1 wins.
    assert knn_predict(BANK, BANK_LABELS, QUERY, k=3, temperature=10.0).tolist() == [1]
    # k = 1: only the nearest neighbour.
    assert knn_predict(BANK, BANK_LABELS, QUERY, k=1, temperature=10.0).tolist() == [0]
    # k above the bank size is capped; with all four the far class-0 point adds e^-0.1: 1.105 + 0.905 < 2.124.
    assert knn_predict(BANK, BANK_LABELS, QUERY, k=50, temperature=10.0).tolist() == [1]


def _brute_force(
    bank: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, k: int, t: float, c: int
) -> list[int]:
    out = []
    for q in queries:
        sims = [
            (torch.nn.functional.cosine_similarity(q, b, dim=0).item(), int(y))
            for b, y in zip(bank, labels, strict=True)
        ]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * c
        for s, y in sims[:k]:
            votes[y] += math.exp(s / t)
        out.append(max(range(c), key=lambda j: (votes[j], -j)))
    return out


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_matches_brute_force_reference_in_any_chunking(chunk_size: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(60, 5, generator=g), torch.randn(23, 5, generator=g)
    labels = torch.randint(0, 4, (60,), generator=g)
    got = knn_predict(bank, labels, queries, k=7, temperature=0.5, num_classes=4, chunk_size=chunk_size)
    assert got.dtype == torch.long and got.shape == (23,)
    assert got.tolist() == _brute_force(bank, labels, queries, 7, 0.5, 4)


def _clusters(n_per_class: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, 16, generator=torch.Generator().manual_seed(99)) * 3
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    return centres[labels] + torch.randn(len(labels), 16, generator=g), labels


def test_separable_problem_is_solved_and_shuffled_labels_are_not() -> None:
    bank, bank_labels = _clusters(100, 5, seed=1)
    queries, query_labels = _clusters(40, 5, seed=2)
    assert knn_accuracy(bank, bank_labels, queries, query_labels, k=20) > 0.95
    shuffled = bank_labels[torch.randperm(len(bank_labels), generator=torch.Generator().manual_seed(3))]
    assert knn_accuracy(bank, shuffled, queries, query_labels, k=20) < 0.5  # chance is 0.2


def test_refuses_unusable_input() -> None:
    with pytest.raises(ValueError, match="unlabelled"):
        knn_predict(BANK, torch.tensor([0, 1, -1, 0]), QUERY)
    with pytest.raises(ValueError, match="must be"):
        knn_predict(BANK, BANK_LABELS, torch.randn(3, 5))
    with pytest.raises(ValueError, match="num_classes"):
        knn_predict(BANK, BANK_LABELS, QUERY, num_classes=1)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(BANK, BANK_LABELS, QUERY, temperature=0)
