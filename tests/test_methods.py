"""Each method's loss against a transcription of its paper's pseudo-code, plus closed-form cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simclr_core.loss import info_nce
from simclr_core.methods import METHODS, make_method
from simclr_core.methods.barlowtwins import LAMBDA, barlow_twins_loss
from simclr_core.methods.byol import BYOL, byol_loss, target_momentum, update_target
from simclr_core.methods.supcon import supcon_loss
from simclr_core.methods.vicreg import vicreg_loss
from simclr_core.model import SimCLRNet


def _views(n: int = 16, d: int = 8, n_views: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n, d, generator=g)
    return torch.cat([centres + 0.5 * torch.randn(n, d, generator=g) for _ in range(n_views)])


# -- BYOL ----------------------------------------------------------------------------------------
def paper_byol(q1: torch.Tensor, q2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Grill et al., Algorithm 1 / the official loss_fn: 2 - 2 cos, symmetrised, mean over the batch."""

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=-1, p=2)
        y = F.normalize(y, dim=-1, p=2)
        return 2 - 2 * (x * y).sum(dim=-1)

    return (loss_fn(q1, z2) + loss_fn(q2, z1)).mean()


def test_byol_loss_is_the_papers_symmetrised_normalised_mse() -> None:
    p, t = _views(seed=1), _views(seed=2)
    n = p.shape[0] // 2
    torch.testing.assert_close(byol_loss(p, t), paper_byol(p[:n], p[n:], t[:n], t[n:]))


def test_byol_loss_closed_forms() -> None:
    z = _views()
    assert byol_loss(z, 3.0 * z.roll(16, 0)).item() == pytest.approx(0.0, abs=1e-5)  # each predicts the other view
    assert byol_loss(z, -z.roll(16, 0)).item() == pytest.approx(8.0, abs=1e-5)  # opposite: 2 * (2 - 2 * -1)
    # three views: every ordered pair of distinct views, doubled.
    z3, t3 = _views(n_views=3, seed=3), _views(n_views=3, seed=4)
    q, t = z3.view(3, 16, -1), t3.view(3, 16, -1)
    pairs = [paper_byol(q[a], q[b], t[a], t[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    torch.testing.assert_close(byol_loss(z3, t3, 3), torch.stack(pairs).mean())


def test_target_momentum_follows_the_cosine_from_base_to_one() -> None:
    assert target_momentum(0.0, 0.99) == pytest.approx(0.99)
    assert target_momentum(0.5, 0.99) == pytest.approx(0.995)
    assert target_momentum(1.0, 0.99) == pytest.approx(1.0)
    assert target_momentum(2.0, 0.99) == pytest.approx(1.0)


def test_target_update_is_the_exponential_moving_average() -> None:
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    update_target(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)


def test_byol_target_starts_as_a_frozen_copy_and_gets_no_gradient() -> None:
    net = SimCLRNet("resnet10", 16, small_input=True, head_batch_norm=True)
    byol = BYOL(net, 16)
    views = torch.randn(8, 3, 32, 32)
    _, z = net(views)
    loss, metrics = byol(z, views, None, 2, 0.1)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in byol.target.parameters())
    assert all(p.grad is not None for p in byol.predictor.parameters())
    assert set(metrics) == {"acc_top1", "acc_top5", "acc_mean_pos", "momentum"}
    byol.after_step(net, 1.0)  # tau = 1: the target stays where it is
    assert byol.tau.item() == pytest.approx(1.0)


def test_byols_starting_momentum_comes_from_the_config() -> None:
    from simclr_core.config import ConfigError, TrainConfig

    net = SimCLRNet("resnet10", 16, small_input=True, head_batch_norm=True)
    byol = make_method("byol", net, 16, target_momentum=0.9)
    byol.after_step(net, 0.0)
    assert byol.tau.item() == pytest.approx(0.9)
    byol.after_step(net, 0.5)
    assert byol.tau.item() == pytest.approx(0.95)
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match="target_momentum"):
            TrainConfig(method="byol", target_momentum=bad).validate()


# -- Barlow Twins --------------------------------------------------------------------------------
def official_barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> torch.Tensor:
    """facebookresearch/barlowtwins main.py BarlowTwins.forward: bn(affine=False), c / batch_size, on + lambd * off."""
    bn = nn.BatchNorm1d(z1.shape[1], affine=False)
    c = bn(z1).T @ bn(z2)
    c.div_(z1.shape[0])
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    n = c.shape[0]
    off_diag = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten().pow_(2).sum()
    return on_diag + lambd * off_diag


def test_barlow_twins_is_the_official_code() -> None:
    z = _views(seed=5)
    loss, terms = barlow_twins_loss(z)
    torch.testing.assert_close(loss, official_barlow_twins(z[:16], z[16:], LAMBDA), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, terms["on_diagonal"] + LAMBDA * terms["off_diagonal"])


def test_barlow_twins_closed_forms() -> None:
    # Identical views with uncorrelated (orthogonal, centred) dimensions: C is the identity, L = 0.
    h = torch.linalg.qr(torch.randn(32, 4))[0]
    basis = torch.cat([h, -h])  # 64 x 4, columns centred and orthogonal
    loss, terms = barlow_twins_loss(torch.cat([basis, basis]))
    assert loss.item() == pytest.approx(0.0, abs=1e-4)
    # Opposite views: C = -I, each diagonal (1 - (-1))^2 = 4.
    loss, terms = barlow_twins_loss(torch.cat([basis, -basis]))
    assert terms["on_diagonal"].item() == pytest.approx(4 * 4, rel=1e-3)  # eps 1e-5 on a variance of 1/32
    assert terms["off_diagonal"].item() == pytest.approx(0.0, abs=1e-4)


# -- VICReg --------------------------------------------------------------------------------------
def paper_vicreg(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Bardes et al., Algorithm 1, line by line (lambda = mu = 25, nu = 1)."""
    lambda_, mu, nu = 25, 25, 1
    N, D = z_a.shape
    sim_loss = F.mse_loss(z_a, z_b)
    std_z_a = torch.sqrt(z_a.var(dim=0) + 1e-04)
    std_z_b = torch.sqrt(z_b.var(dim=0) + 1e-04)
    std_loss = torch.mean(F.relu(1 - std_z_a)) + torch.mean(F.relu(1 - std_z_b))
    z_a = z_a - z_a.mean(dim=0)
    z_b = z_b - z_b.mean(dim=0)
    cov_z_a = (z_a.T @ z_a) / (N - 1)
    cov_z_b = (z_b.T @ z_b) / (N - 1)
    off = ~torch.eye(D, dtype=torch.bool)
    cov_loss = cov_z_a[off].pow_(2).sum() / D + cov_z_b[off].pow_(2).sum() / D
    return lambda_ * sim_loss + mu * std_loss + nu * cov_loss


def test_vicreg_is_the_papers_algorithm() -> None:
    z = _views(seed=6)
    loss, terms = vicreg_loss(z)
    torch.testing.assert_close(loss, paper_vicreg(z[:16], z[16:]))
    torch.testing.assert_close(loss, 25 * terms["invariance"] + 25 * terms["variance"] + terms["covariance"])


def test_vicreg_closed_forms() -> None:
    # Identical collapsed views: s = 0, each std sqrt(1e-4) = 0.01 -> v = 2 * 0.99, c = 0.
    z = torch.ones(20, 5)
    loss, terms = vicreg_loss(z)
    assert terms["invariance"].item() == 0.0
    assert terms["variance"].item() == pytest.approx(2 * (1 - math.sqrt(1e-4)))
    assert terms["covariance"].item() == 0.0
    # Spread, decorrelated, identical views: every term 0 (std 2 > 1: no hinge).
    h = math.sqrt(126) * torch.linalg.qr(torch.randn(32, 4))[0]
    basis = torch.cat([h, -h])  # 64 x 4: centred, orthogonal columns of variance 126 * 2 / 63 = 4
    loss, terms = vicreg_loss(torch.cat([basis, basis]))
    assert loss.item() == pytest.approx(0.0, abs=1e-4)


def test_more_than_two_views_average_the_pairs() -> None:
    z = _views(n_views=3, seed=7)
    a, b, c = z.view(3, 16, -1)
    pairs = [paper_vicreg(x, y) for x, y in ((a, b), (a, c), (b, c))]
    torch.testing.assert_close(vicreg_loss(z, 3)[0], torch.stack(pairs).mean())
    pairs = [official_barlow_twins(x, y, LAMBDA) for x, y in ((a, b), (a, c), (b, c))]
    torch.testing.assert_close(barlow_twins_loss(z, 3)[0], torch.stack(pairs).mean(), rtol=1e-5, atol=1e-5)


# -- SupCon --------------------------------------------------------------------------------------
def official_supcon(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """HobbitLong/SupContrast losses.py SupConLoss, contrast_mode 'all', base_temperature = temperature.

    features: (bsz, n_views, D) normalised, labels: (bsz,).
    """
    batch_size = features.shape[0]
    labels = labels.contiguous().view(-1, 1)
    mask = torch.eq(labels, labels.T).float()
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    anchor_feature, anchor_count = contrast_feature, contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    loss = -1 * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


@pytest.mark.parametrize("n_views", [2, 3])
def test_supcon_is_the_official_code(n_views: int) -> None:
    z = _views(n_views=n_views, seed=8)
    labels = torch.arange(16) % 4
    feats = F.normalize(z, dim=1).view(n_views, 16, -1).transpose(0, 1)
    torch.testing.assert_close(supcon_loss(z, labels, 0.1, n_views), official_supcon(feats, labels, 0.1))


def test_supcon_with_distinct_labels_and_two_views_is_nt_xent() -> None:
    z = _views(seed=9)
    torch.testing.assert_close(supcon_loss(z, torch.arange(16), 0.2), info_nce(z, 0.2)[0])


def test_supcon_anchor_ranges_average_to_the_whole_batch() -> None:
    z, labels = _views(seed=10), torch.arange(16) % 3
    halves = [supcon_loss(z, labels, 0.3, anchors=r) for r in ((0, 8), (8, 16))]
    torch.testing.assert_close(torch.stack(halves).mean(), supcon_loss(z, labels, 0.3))


def test_supcon_closed_form_one_class() -> None:
    # One class, all projections equal: each anchor's 2N - 1 keys tie, log_prob = -log(2N - 1) for each.
    z = torch.ones(8, 3)
    assert supcon_loss(z, torch.zeros(4, dtype=torch.long), 0.5).item() == pytest.approx(math.log(7), rel=1e-5)


def test_supcon_refuses_batches_without_labels() -> None:
    method = make_method("supcon", nn.Identity(), 8)
    z = _views()
    with pytest.raises(ValueError, match="supcon trains on labels"):
        method(z, z, None, 2, 0.1)
    with pytest.raises(ValueError, match="supcon trains on labels"):
        method(z, z, torch.full((16,), -1), 2, 0.1)


# -- every method through the common interface -----------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_every_method_returns_a_differentiable_loss_and_its_terms(name: str) -> None:
    net = SimCLRNet("resnet10", 16, small_input=True, head_batch_norm=name != "simclr")
    method = make_method(name, net, 16)
    views = torch.randn(12, 3, 32, 32)
    _, z = net(views)
    loss, metrics = method(z, views, torch.arange(6) % 2, 2, 0.2)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert set(metrics) == {"acc_top1", "acc_top5", "acc_mean_pos", *method.terms}
    assert next(net.backbone.parameters()).grad is not None


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown method 'moco'"):
        make_method("moco", nn.Identity(), 8)
