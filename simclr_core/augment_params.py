"""The random half of the augmentation: every choice of the tutorial's pipeline, drawn for a batch of views.

``sample_params`` draws flip, RandomResizedCrop box, colour jitter with its random op order,
grayscale and blur sigma as tensors with a leading batch dimension (``AugParams``); the pixel ops
(``augment_spatial``, ``augment_colour``) only read them. Parameters can thus be logged, drawn in
the dashboard and fixed in tests, and one seed gives the same views on CPU and CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch

from simclr_core.config import AugmentationConfig

JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


@dataclass
class AugParams:
    """Every random choice for ``n`` views; all tensors have leading dim ``n``.

    flip (n,) bool; crop (n, 4) int64 boxes (top, left, height, width) in input pixels;
    jitter (n,) bool (RandomApply drawn); jitter_factors (n, 4) float32 (brightness,
    contrast, saturation, hue shift); jitter_order (n, 4) int64 permutation of op indices
    into ``JITTER_OPS``; gray (n,) bool; blur (n,) bool; sigma (n,) float32.
    """

    flip: torch.Tensor
    crop: torch.Tensor
    jitter: torch.Tensor
    jitter_factors: torch.Tensor
    jitter_order: torch.Tensor
    gray: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor

    def __len__(self) -> int:
        return int(self.flip.shape[0])

    def to(self, device: torch.device | str) -> AugParams:
        return AugParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, index: torch.Tensor | slice | int) -> AugParams:
        """The parameters of some views (an int keeps a leading dim of 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return AugParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def describe(self, i: int = 0) -> dict[str, Any]:
        """Plain-Python description of view ``i`` (for logs and the dashboard's step-through)."""
        top, left, h, w = (int(v) for v in self.crop[i])
        factors = [float(v) for v in self.jitter_factors[i]]
        return {
            "flip": bool(self.flip[i]),
            "crop": {"top": top, "left": left, "height": h, "width": w},
            "jitter": bool(self.jitter[i]),
            "jitter_factors": dict(zip(JITTER_OPS, factors, strict=True)),
            "jitter_order": [JITTER_OPS[int(k)] for k in self.jitter_order[i]],
            "grayscale": bool(self.gray[i]),
            "blur": bool(self.blur[i]),
            "sigma": float(self.sigma[i]),
        }


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (hi - lo) + lo


def _crop_boxes(
    n: int, cfg: AugmentationConfig, in_size: tuple[int, int], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """RandomResizedCrop.get_params for n images at once: (n, 4) int64 (top, left, h, w).

    Ten attempts per image (area fraction uniform in scale, log-uniform aspect ratio); the
    first attempt that fits wins; images with none fall back to the ratio-clamped centre crop.
    """
    height, width = in_size
    area = float(height * width)
    attempts = 10
    target = area * _uniform(n * attempts, *cfg.crop_scale, generator, device).view(n, attempts).double()
    log_lo, log_hi = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
    ratio = torch.exp(_uniform(n * attempts, log_lo, log_hi, generator, device).view(n, attempts)).double()
    w = torch.round(torch.sqrt(target * ratio)).long()
    h = torch.round(torch.sqrt(target / ratio)).long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.long().argmax(dim=1, keepdim=True)  # index of the first fitting attempt (0 when none fits)
    found = ok.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)

    in_ratio = width / height
    lo_r, hi_r = cfg.crop_ratio
    if in_ratio < lo_r:
        fb_w, fb_h = width, int(round(width / lo_r))
    elif in_ratio > hi_r:
        fb_w, fb_h = int(round(height * hi_r)), height
    else:
        fb_w, fb_h = width, height
    w = torch.where(found, w, torch.full_like(w, fb_w))
    h = torch.where(found, h, torch.full_like(h, fb_h))
    u_top = torch.rand(n, generator=generator, device=device).double()
    u_left = torch.rand(n, generator=generator, device=device).double()
    top = torch.where(found, (u_top * (height - h + 1)).floor().long(), (height - h) // 2)
    left = torch.where(found, (u_left * (width - w + 1)).floor().long(), (width - w) // 2)
    top = torch.minimum(top, height - h)  # guards the (measure-zero) u == 1 rounding case
    left = torch.minimum(left, width - w)
    return torch.stack([top, left, h, w], dim=1)


def sample_params(
    n: int,
    cfg: AugmentationConfig,
    in_size: tuple[int, int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> AugParams:
    """Draw the random choices for ``n`` views of images of size ``in_size`` = (H, W).

    Drawn on the generator's device (CPU when none) and moved to ``device``, so one seed gives
    the same parameters on CPU and CUDA.
    """
    draw_device = generator.device if generator is not None else torch.device("cpu")
    target = torch.device(device) if device is not None else draw_device

    def rand() -> torch.Tensor:
        return torch.rand(n, generator=generator, device=draw_device)

    flip = rand() < cfg.flip_p
    crop = _crop_boxes(n, cfg, (int(in_size[0]), int(in_size[1])), generator, draw_device)
    jitter = rand() < cfg.jitter_p
    b, c, s, hue = (
        float(cfg.jitter_brightness),
        float(cfg.jitter_contrast),
        float(cfg.jitter_saturation),
        float(cfg.jitter_hue),
    )
    factors = torch.stack(
        [
            _uniform(n, max(0.0, 1 - b), 1 + b, generator, draw_device),
            _uniform(n, max(0.0, 1 - c), 1 + c, generator, draw_device),
            _uniform(n, max(0.0, 1 - s), 1 + s, generator, draw_device),
            _uniform(n, -hue, hue, generator, draw_device),
        ],
        dim=1,
    )
    order = torch.rand(n, 4, generator=generator, device=draw_device).argsort(dim=1)  # uniform permutations
    gray = rand() < cfg.grayscale_p
    blur = rand() < cfg.blur_p
    sigma = _uniform(n, *cfg.blur_sigma, generator, draw_device)
    params = AugParams(flip, crop, jitter, factors, order, gray, blur, sigma)
    return params.to(target) if target != draw_device else params
