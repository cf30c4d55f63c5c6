"""The colour ops of a view, in place on float views in [0, 1]: colour jitter, grayscale, normalisation.

Semantics follow torchvision's ``ColorJitter`` and ``RandomGrayscale`` (the tests compare them).
Colour jitter applies its four ops in each view's own random order (``ColorJitter`` draws
``randperm(4)``): views are sorted by their order code so each of the 24 orders is one contiguous
slice, changed in place. Everything is float32: bf16 elementwise ops measured 2-3x slower on CPU.
"""

from __future__ import annotations

import torch

from simclr_core.augment_params import AugParams
from simclr_core.config import AugmentationConfig

LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) -> (n, 1, H, W) luma."""
    return x[:, 0:1].mul(LUMA[0]).add_(x[:, 1:2], alpha=LUMA[1]).add_(x[:, 2:3], alpha=LUMA[2])


def _blend_(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> None:
    """In place: x <- clamp(factor * x + (1 - factor) * other, 0, 1) (torchvision's _blend); factor (n,).

    ``other`` is scratch: it is overwritten.
    """
    f = factor.view(-1, 1, 1, 1)
    x.mul_(f).add_(other.mul_(1 - f)).clamp_(0, 1)


def _is_max_(out: torch.Tensor, channel: torch.Tensor, maxc: torch.Tensor) -> torch.Tensor:
    """out <- 1.0 where channel == maxc else 0.0 (channel <= maxc), by float arithmetic.

    Bool masks (``==``, ``torch.where``) run several times slower than float ops on CPU;
    any difference above 1e-30 maps to 0 after the clamp.
    """
    return torch.sub(channel, maxc, out=out).mul_(1e30).add_(1).clamp_(0, 1)


def _adjust_hue_(x: torch.Tensor, shift: torch.Tensor) -> None:
    """In place: rotate hue by ``shift`` turns (n,) through HSV, as torchvision's adjust_hue.

    RGB -> hue h in sixths of a turn (sector by the maximal channel; red wins ties, then
    green), then each channel is v - (v - min) * clamp(2 - |k - 2|, 0, 1), k = (o + h) mod 6
    with o = 5, 3, 1 for r, g, b: the HSV -> RGB formula without a per-sector lookup. Written
    with few temporaries: on CPU every fresh buffer costs page faults.
    """
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    maxc = torch.maximum(r, g)
    torch.maximum(maxc, b, out=maxc)
    delta = torch.minimum(r, g)
    torch.minimum(delta, b, out=delta)
    torch.sub(maxc, delta, out=delta)
    inv = delta.clamp(min=1e-12).reciprocal_()  # flat pixels: every difference below is 0, so hue 0
    h = torch.sub(r, g).mul_(inv).add_(4)  # maximum in blue
    tmp = torch.sub(b, r).mul_(inv).add_(2)  # maximum in green
    mask = _is_max_(torch.empty_like(h), g, maxc)
    h.lerp_(tmp, mask)
    torch.sub(g, b, out=tmp).mul_(inv)  # maximum in red
    h.lerp_(tmp, _is_max_(mask, r, maxc))
    h.add_(6.0 * shift.view(-1, 1, 1, 1))
    h.sub_(torch.mul(h, 1 / 6, out=tmp).floor_().mul_(6))  # h in [0, 6)
    for c, offset in enumerate((5.0, 3.0, 1.0)):
        k = torch.add(h, offset, out=tmp)  # in [1, 11)
        k.sub_(torch.mul(k, 1 / 6, out=mask).floor_().mul_(6))
        k.sub_(2).abs_().sub_(2).neg_().clamp_(0, 1).mul_(delta)
        torch.sub(maxc, k, out=x[:, c : c + 1])


def _jitter_op_(op: int, x: torch.Tensor, factor: torch.Tensor) -> None:
    if op == 0:
        x.mul_(factor.view(-1, 1, 1, 1)).clamp_(0, 1)
    elif op == 1:
        _blend_(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), factor)
    elif op == 2:
        _blend_(x, _gray(x), factor)
    else:
        _adjust_hue_(x, factor)


def jitter_code(params: AugParams) -> torch.Tensor:
    """(n,) int64: the view's jitter op order as a base-4 number, -1 where jitter was not drawn."""
    weights = torch.tensor([64, 16, 4, 1], device=params.jitter_order.device)
    return torch.where(params.jitter, (params.jitter_order * weights).sum(dim=1), -1)


def jitter_strengths(cfg: AugmentationConfig) -> tuple[float, float, float, float]:
    return (cfg.jitter_brightness, cfg.jitter_contrast, cfg.jitter_saturation, cfg.jitter_hue)


def colour_jitter_(x: torch.Tensor, params: AugParams, cfg: AugmentationConfig) -> None:
    """In place: ColorJitter in each view's own random op order, on the views where RandomApply fired.

    Views sharing an op order are transformed together: each run of equal order codes is a
    contiguous slice changed in place (``augment.apply`` sorts views by code so runs are long).
    """
    active = [float(s) > 0 for s in jitter_strengths(cfg)]  # torchvision skips ops of strength 0
    if not any(active) or cfg.jitter_p <= 0:
        return
    codes, counts = torch.unique_consecutive(jitter_code(params), return_counts=True)
    start = 0
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        lo, start = start, start + count
        if code < 0:
            continue
        part, factors = x[lo:start], params.jitter_factors[lo:start]
        for op in (code >> 6, (code >> 4) & 3, (code >> 2) & 3, code & 3):
            if active[op]:
                _jitter_op_(op, part, factors[:, op])


def grayscale_(x: torch.Tensor, params: AugParams) -> None:
    sel = torch.nonzero(params.gray).squeeze(1)
    if sel.numel():
        x[sel] = _gray(x[sel]).expand(-1, 3, -1, -1)


def normalise_(x: torch.Tensor, cfg: AugmentationConfig) -> torch.Tensor:
    mean = torch.tensor(cfg.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    inv_std = 1 / torch.tensor(cfg.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).mul_(inv_std)
