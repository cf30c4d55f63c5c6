"""InfoNCE against the seed's formula, a slow loop reference for n_views > 2, and autocast."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from simclr_core.loss import info_nce


def seed_info_nce(feats: torch.Tensor, temperature: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Direct transcription of the seed tutorial's ``info_nce_loss`` (n_views = 2 only)."""
    cos_sim = F.cosine_similarity(feats[:, None, :], feats[None, :, :], dim=-1)
    self_mask = torch.eye(cos_sim.shape[0], dtype=torch.bool, device=cos_sim.device)
    cos_sim.masked_fill_(self_mask, -9e15)
    pos_mask = self_mask.roll(shifts=cos_sim.shape[0] // 2, dims=0)
    cos_sim = cos_sim / temperature
    nll = -cos_sim[pos_mask] + torch.logsumexp(cos_sim, dim=-1)
    nll = nll.mean()
    comb_sim = torch.cat([cos_sim[pos_mask][:, None], cos_sim.masked_fill(pos_mask, -9e15)], dim=-1)
    sim_argsort = comb_sim.argsort(dim=-1, descending=True).argmin(dim=-1)
    return nll, {
        "acc_top1": (sim_argsort == 0).float().mean(),
        "acc_top5": (sim_argsort < 5).float().mean(),
        "acc_mean_pos": 1 + sim_argsort.float().mean(),
    }


def loop_info_nce(feats: torch.Tensor, temperature: float, n_views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Obviously-correct reference: each (anchor, positive) pair against the other images' views only.

    Returns (loss, ranks) where ranks[k] is the number of negatives beating the k-th pair's positive.
    """
    n = feats.shape[0] // n_views
    image = [i % n for i in range(feats.shape[0])]
    terms, ranks = [], []
    for i in range(feats.shape[0]):
        for p in range(feats.shape[0]):
            if p == i or image[p] != image[i]:
                continue
            s_ip = F.cosine_similarity(feats[i], feats[p], dim=0) / temperature
            denom = torch.exp(s_ip)
            beaten = 0
            for j in range(feats.shape[0]):
                if image[j] == image[i]:
                    continue
                s_ij = F.cosine_similarity(feats[i], feats[j], dim=0) / temperature
                denom = denom + torch.exp(s_ij)
                beaten += int(s_ij > s_ip)
            terms.append(-(s_ip - torch.log(denom)))
            ranks.append(beaten)
    return torch.stack(terms).mean(), torch.tensor(ranks, dtype=torch.float32)


def _metrics_from_ranks(ranks: torch.Tensor) -> dict[str, float]:
    return {
        "acc_top1": (ranks == 0).float().mean().item(),
        "acc_top5": (ranks < 5).float().mean().item(),
        "acc_mean_pos": 1 + ranks.mean().item(),
    }


def _clustered(n: int, n_views: int, dim: int, noise: float, seed: int) -> torch.Tensor:
    """Views of the same image near each other, so ranks spread over 0..many (not all top or all bottom)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return torch.cat([centres + noise * torch.randn(n, dim, generator=g, dtype=torch.float64) for _ in range(n_views)])


@pytest.mark.parametrize("n", [4, 32, 256])
@pytest.mark.parametrize("noise", [0.3, 3.0])
def test_matches_seed_formula(n: int, noise: float) -> None:
    feats = _clustered(n, 2, 32, noise, seed=n).float()
    loss, metrics = info_nce(feats, 0.07)
    ref_loss, ref_metrics = seed_info_nce(feats.clone(), 0.07)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    # Matmul and cosine_similarity round differently: a float32 near-tie may flip in one or two of the
    # 2N * (2N - 2) comparisons, moving a mean by 1 / 2N each; a rank off by one everywhere moves it by 1.
    for name, value in ref_metrics.items():
        assert metrics[name].dim() == 0
        torch.testing.assert_close(metrics[name], value, rtol=0, atol=2.0 / (2 * n) + 1e-6, msg=name)


def test_gradients_match_seed_formula() -> None:
    feats = _clustered(16, 2, 24, 1.0, seed=3)
    a = feats.clone().requires_grad_(True)
    b = feats.clone().requires_grad_(True)
    info_nce(a, 0.1)[0].backward()
    seed_info_nce(b, 0.1)[0].backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n_views", [2, 3, 4])
def test_multi_view_matches_loop_reference(n_views: int) -> None:
    feats = _clustered(6, n_views, 8, 1.0, seed=n_views)
    a = feats.clone().requires_grad_(True)
    b = feats.clone().requires_grad_(True)
    loss, metrics = info_nce(a, 0.5, n_views=n_views)
    ref_loss, ranks = loop_info_nce(b, 0.5, n_views)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    for name, value in _metrics_from_ranks(ranks).items():
        assert metrics[name].item() == pytest.approx(value, abs=1e-6), name
    loss.backward()
    ref_loss.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    assert 0 < metrics["acc_top1"].item() < 1  # the data exercises both ranked-first and beaten positives


def test_other_views_are_never_negatives() -> None:
    """Three identical views of each image, images far apart: a perfect embedding must cost ~0 and rank 1.

    An implementation that counts other views of the same image as negatives would pay log(2) here.
    """
    centres = torch.eye(5)
    feats = torch.cat([centres, centres, centres])
    loss, metrics = info_nce(feats, 0.05, n_views=3)
    assert loss.item() < 1e-6
    assert metrics["acc_top1"].item() == 1.0 and metrics["acc_mean_pos"].item() == 1.0


def test_identical_features_closed_form() -> None:
    """All similarities equal: every term is log(1 + negatives) = log(2N - 1) for two views."""
    n = 10
    feats = torch.ones(2 * n, 7)
    loss, _ = info_nce(feats, 0.07)
    assert loss.item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)
    loss3, _ = info_nce(torch.ones(3 * n, 7), 0.07, n_views=3)
    assert loss3.item() == pytest.approx(math.log(1 + 3 * (n - 1)), rel=1e-6)


def test_ranks_match_argsort_position() -> None:
    """Counting 'negatives with a larger similarity' equals the argsort position of the positive."""
    feats = _clustered(40, 2, 16, 1.5, seed=11).float()
    z = F.normalize(feats, dim=1)
    sim = z @ z.T
    n2 = feats.shape[0]
    positives = (torch.arange(n2) + n2 // 2) % n2
    expected = []
    for i in range(n2):
        order = sim[i].argsort(descending=True).tolist()
        order = [j for j in order if j != i]  # self is no candidate
        expected.append(order.index(int(positives[i])))
    ranks = torch.tensor(expected, dtype=torch.float32)
    _, metrics = info_nce(feats, 0.07)
    assert metrics["acc_mean_pos"].item() == pytest.approx(1 + ranks.mean().item())
    assert metrics["acc_top5"].item() == pytest.approx((ranks < 5).float().mean().item())
    assert 0 < (ranks < 5).float().mean().item() < 1


def test_anchor_subset_averages_to_full_loss() -> None:
    """Rows split into two anchor ranges: the mean of their losses is the full loss (what DDP relies on)."""
    feats = _clustered(8, 3, 16, 1.0, seed=5).float()
    full, full_m = info_nce(feats, 0.2, n_views=3)
    first, m1 = info_nce(feats, 0.2, n_views=3, anchors=(0, 4))
    second, m2 = info_nce(feats, 0.2, n_views=3, anchors=(4, 8))
    torch.testing.assert_close((first + second) / 2, full)
    for name in full_m:
        torch.testing.assert_close((m1[name] + m2[name]) / 2, full_m[name])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_is_finite_and_close(dtype: torch.dtype) -> None:
    """Low-precision projections (what autocast hands over) still give a finite, float32 loss and gradient."""
    proj = torch.nn.Linear(32, 16)
    x = _clustered(64, 2, 32, 1.0, seed=7).float()
    ref, _ = info_nce(proj(x), 0.07)
    with torch.autocast(device_type="cpu", dtype=dtype):
        z = proj(x)
        loss, metrics = info_nce(z.to(dtype), 0.07)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(v) for v in metrics.values())
    loss.backward()
    assert torch.isfinite(proj.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=0.02)


def test_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(8, 4), 0.0)
    with pytest.raises(ValueError, match="views"):
        info_nce(torch.randn(9, 4), 0.1, n_views=2)
    with pytest.raises(ValueError, match="at least 2 images"):
        info_nce(torch.randn(2, 4), 0.1)
