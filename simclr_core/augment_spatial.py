"""The spatial ops of a view: flip + crop + antialiased resize, and Gaussian blur, batched over views.

Semantics follow torchvision's per-image ``F.resized_crop(antialias=True)`` and ``F.gaussian_blur``
(the tests compare them):

* Flip + crop + resize is one separable resampling with per-view taps and weights: the
  bilinear *antialiased* filter (a triangle widened by the shrink factor) that PIL and
  ``F.resized_crop(antialias=True)`` use, restricted to the crop window. Each tap is an
  ``index_select`` of whole rows plus a multiply-add, so the cost follows the taps needed (2
  when enlarging), not the image size. The flip mirrors the column indices; uint8 is read
  once and later ops run on the small output. Antialiasing matters when a crop larger than
  the output is shrunk (96 px data, 32 px views): grid_sample / roi_align would alias there.
* Blur is a separable shift-and-add with one Gaussian kernel per view and reflect padding,
  as ``F.gaussian_blur`` (a grouped conv2d with one group per view was ~10x slower on CPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simclr_core.augment_params import AugParams
from simclr_core.config import AugmentationConfig


def _taps(
    start: torch.Tensor, length: torch.Tensor, in_len: int, out_len: int, flip: torch.Tensor | None, n_taps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices and weights (each (n, out_len, n_taps)) resampling crops [start, start+length) to out_len.

    Output pixel i samples the crop at centre (i + 0.5) * length / out_len with a triangle
    filter of half-width max(1, length / out_len) pixels (bilinear, widened when shrinking:
    antialiasing); taps outside the crop get no weight and each row is renormalised, which is
    what PIL and torch's antialiased interpolation compute after cropping. Flipped views read
    mirrored columns (the flip precedes the crop, as in the tutorial).
    """
    dtype = torch.float32
    length_f = length.to(dtype)[:, None, None]
    ratio = length_f / out_len
    support = ratio.clamp(min=1.0)
    centre = (torch.arange(out_len, device=start.device, dtype=dtype)[None, :, None] + 0.5) * ratio
    first = torch.floor(centre - support - 0.5) + 1
    rel = first + torch.arange(n_taps, device=start.device, dtype=dtype)
    w = (1 - ((rel + 0.5 - centre) / support).abs()).clamp(min=0)
    w = w * ((rel >= 0) & (rel < length_f))
    w = w / w.sum(dim=2, keepdim=True)
    idx = torch.minimum(rel.clamp(min=0), length_f - 1).long() + start[:, None, None]
    if flip is not None:
        idx = torch.where(flip[:, None, None], in_len - 1 - idx, idx)
    return idx, w


def _n_taps(length: torch.Tensor, out_len: int) -> int:
    """Taps per output pixel: the filter's support (2 * max(1, crop / out)) covers at most this many pixels."""
    return max(2, math.ceil(2 * int(length.max()) / out_len))


def _resample_rows(x: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted sum of picked rows: (n, c, R, L) float, idx/w (n, S, T) -> (n, c, S, L).

    Each tap is one ``index_select`` of whole contiguous rows (a fast memcpy) plus one
    in-place multiply-add, so the cost is T passes over the output.
    """
    n, ch, rows, length = x.shape
    flat = x.reshape(n * ch * rows, length)
    base = (torch.arange(n * ch, device=x.device) * rows).view(n, ch, 1)
    out = None
    for t in range(idx.shape[2]):
        picked = flat.index_select(0, (base + idx[:, None, :, t]).reshape(-1)).view(n, ch, -1, length)
        weight = w[:, None, :, t, None]
        out = picked.mul_(weight) if out is None else out.addcmul_(picked, weight)
    return out


def crop_resize(images_u8: torch.Tensor, params: AugParams, out_hw: tuple[int, int]) -> torch.Tensor:
    """Flip + crop + antialiased resize of (n, 3, H, W) uint8, one image per view -> (n, 3, oh, ow) in [0, 1].

    Separable: the uint8 input is transposed while converted to float, columns are resampled
    as rows, transposed back and rows resampled. The cost grows with the taps needed (2 when
    enlarging), not with the image size as a dense matrix product would.
    """
    n, ch, height, width = images_u8.shape
    oh, ow = out_hw
    ry, wy = _taps(params.crop[:, 0], params.crop[:, 2], height, oh, None, _n_taps(params.crop[:, 2], oh))
    rx, wx = _taps(params.crop[:, 1], params.crop[:, 3], width, ow, params.flip, _n_taps(params.crop[:, 3], ow))
    xt = torch.empty(n, ch, width, height, device=images_u8.device).copy_(images_u8.transpose(2, 3))
    cols = _resample_rows(xt, rx, wx / 255)  # (n, ch, ow, H)
    cols = cols.transpose(2, 3).contiguous()  # (n, ch, H, ow)
    return _resample_rows(cols, ry, wy)


def blur(x: torch.Tensor, params: AugParams, cfg: AugmentationConfig) -> torch.Tensor:
    """Per-view Gaussian blur (torchvision's kernel, reflect padding) on the views where blur was drawn.

    Separable shift-and-add with per-view weights: on CPU this is far faster than a grouped
    conv2d with one group per view and channel.
    """
    if cfg.blur_p <= 0:
        return x
    sel = torch.nonzero(params.blur).squeeze(1)
    if sel.numel() == 0:
        return x
    every = sel.numel() == x.shape[0]
    k = int(cfg.blur_kernel)
    half = (k - 1) / 2
    taps = torch.linspace(-half, half, k, device=x.device, dtype=x.dtype)
    pdf = torch.exp(-0.5 * (taps[None, :] / params.sigma[sel].to(x.dtype)[:, None]) ** 2)
    kern = (pdf / pdf.sum(dim=1, keepdim=True))[:, :, None, None, None]  # (m, k, 1, 1, 1)
    pad = k // 2
    y = x if every else x[sel]
    m, _, h, w = y.shape
    y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    horiz = y[:, :, :, 0:w] * kern[:, 0]
    for t in range(1, k):
        horiz.addcmul_(y[:, :, :, t : t + w], kern[:, t])
    out = horiz[:, :, 0:h] * kern[:, 0]
    for t in range(1, k):
        out.addcmul_(horiz[:, :, t : t + h], kern[:, t])
    if every:
        return out
    x[sel] = out
    return x
