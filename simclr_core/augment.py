"""Batched, on-device SimCLR augmentation: one engine for the dashboard preview and for training.

Randomness and pixels are kept apart: ``sample_params`` draws every random choice of the
tutorial's pipeline (flip, RandomResizedCrop box, colour jitter with its random op order,
grayscale, blur sigma) as tensors with a leading batch dimension, and ``apply`` turns uint8
images plus those parameters into normalised float views. Parameters can thus be logged,
drawn in the dashboard and fixed in tests, and one code path serves every caller.

Semantics follow torchvision's per-image transforms in the tutorial's order
(flip -> crop -> jitter -> grayscale -> blur -> normalise); tests compare each op with
torchvision's functional ops. How each op is batched:

* Flip + crop + resize is one separable resampling with per-view taps and weights: the
  bilinear *antialiased* filter (a triangle widened by the shrink factor) that PIL and
  ``F.resized_crop(antialias=True)`` use, restricted to the crop window. Each tap is an
  ``index_select`` of whole rows plus a multiply-add, so the cost follows the taps needed (2
  when enlarging), not the image size. The flip mirrors the column indices; uint8 is read
  once and later ops run on the small output. Antialiasing matters when a crop larger than
  the output is shrunk (96 px data, 32 px views): grid_sample / roi_align would alias there.
* Colour jitter applies its four ops in each view's own random order (``ColorJitter`` draws
  ``randperm(4)``): views are sorted by their order code so each of the 24 orders is one
  contiguous slice, changed in place.
* Blur is a separable shift-and-add with one Gaussian kernel per view and reflect padding,
  as ``F.gaussian_blur`` (a grouped conv2d with one group per view was ~10x slower on CPU).

On CPU, views are processed in chunks of 32 on single-threaded worker threads (cache-sized
tensors; intra-op OpenMP threads only add hand-offs on such small ops). Everything is float32
in [0, 1]: bf16 elementwise ops measured 2-3x slower on this CPU, so there is no bf16 path.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from simclr_core import augment_cpu
from simclr_core.config import AugmentationConfig

STAGES = ("original", "flip", "crop", "colour jitter", "grayscale", "blur")
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale


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


def _crop_resize(images_u8: torch.Tensor, params: AugParams, out_hw: tuple[int, int]) -> torch.Tensor:
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


def _jitter_code(params: AugParams) -> torch.Tensor:
    """(n,) int64: the view's jitter op order as a base-4 number, -1 where jitter was not drawn."""
    weights = torch.tensor([64, 16, 4, 1], device=params.jitter_order.device)
    return torch.where(params.jitter, (params.jitter_order * weights).sum(dim=1), -1)


def _jitter_strengths(cfg: AugmentationConfig) -> tuple[float, float, float, float]:
    return (cfg.jitter_brightness, cfg.jitter_contrast, cfg.jitter_saturation, cfg.jitter_hue)


def _colour_jitter_(x: torch.Tensor, params: AugParams, cfg: AugmentationConfig) -> None:
    """In place: ColorJitter in each view's own random op order, on the views where RandomApply fired.

    Views sharing an op order are transformed together: each run of equal order codes is a
    contiguous slice changed in place (``apply`` sorts views by code so runs are long).
    """
    active = [float(s) > 0 for s in _jitter_strengths(cfg)]  # torchvision skips ops of strength 0
    if not any(active) or cfg.jitter_p <= 0:
        return
    codes, counts = torch.unique_consecutive(_jitter_code(params), return_counts=True)
    start = 0
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        lo, start = start, start + count
        if code < 0:
            continue
        part, factors = x[lo:start], params.jitter_factors[lo:start]
        for op in (code >> 6, (code >> 4) & 3, (code >> 2) & 3, code & 3):
            if active[op]:
                _jitter_op_(op, part, factors[:, op])


def _grayscale_(x: torch.Tensor, params: AugParams) -> None:
    sel = torch.nonzero(params.gray).squeeze(1)
    if sel.numel():
        x[sel] = _gray(x[sel]).expand(-1, 3, -1, -1)


def _blur(x: torch.Tensor, params: AugParams, cfg: AugmentationConfig) -> torch.Tensor:
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


def _normalise_(x: torch.Tensor, cfg: AugmentationConfig) -> torch.Tensor:
    mean = torch.tensor(cfg.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    inv_std = 1 / torch.tensor(cfg.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).mul_(inv_std)


def _check_images(images_u8: torch.Tensor) -> None:
    if images_u8.dtype != torch.uint8 or images_u8.dim() != 4 or images_u8.shape[1] != 3:
        raise ValueError(f"expected uint8 images (B, 3, H, W), got {tuple(images_u8.shape)} {images_u8.dtype}")


# Keyed by process too: a forked child (a DataLoader worker) inherits the dict but none of the threads.
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _cpu_pool(workers: int) -> ThreadPoolExecutor:
    """Threads that each run torch single-threaded (the setting is per thread).

    On CPU the chunks are independent and their tensors small, so running whole chunks in
    parallel scales across cores, while intra-op OpenMP threads on such small ops mostly
    synchronise (and stall badly when cores are shared).
    """
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(workers, "augment", initializer=torch.set_num_threads, initargs=(1,))
        return _POOLS[key]


def _augment_chunk(
    images_u8: torch.Tensor, params: AugParams, ids: torch.Tensor, cfg: AugmentationConfig, size: int, out: torch.Tensor
) -> None:
    """Views ``ids`` (made from images ids % B) into ``out`` rows ``ids``."""
    part = params.select(ids)
    x = _crop_resize(images_u8[ids % images_u8.shape[0]], part, (size, size))
    _colour_jitter_(x, part, cfg)
    _grayscale_(x, part)
    x = _blur(x, part, cfg)
    out.index_copy_(0, ids, _normalise_(x, cfg))


def apply(
    images_u8: torch.Tensor,
    params: AugParams,
    cfg: AugmentationConfig,
    out_size: int | None = None,
    chunk: int | None = None,
    threads: int | None = None,
    fused: bool = True,
) -> torch.Tensor:
    """Augment (B, 3, H, W) uint8 images with ``params`` of n = k*B views -> (n, 3, S, S) float32, normalised.

    View r is made from image r % B (view-major, as ``make_views`` stacks them). Runs on the
    images' device; S is ``out_size`` or ``cfg.crop_size``. On CPU the views go ``chunk`` at
    a time to ``threads`` workers (default torch.get_num_threads()); with ``fused`` (the
    default) each chunk is one GIL-free call of ``augment_cpu``'s per-view kernel, otherwise
    the batched torch ops below run on chunks of 32 (the CUDA path, and the reference the
    kernel is tested against). Elsewhere the torch ops run on all views at once.
    """
    _check_images(images_u8)
    b = images_u8.shape[0]
    n = len(params)
    if n % b:
        raise ValueError(f"{n} parameter rows do not divide evenly over {b} images")
    size = int(out_size or cfg.crop_size)
    device = images_u8.device
    params = params.to(device)
    out = torch.empty(n, 3, size, size, device=device)
    if device.type != "cpu":
        _augment_chunk(images_u8, params, torch.argsort(_jitter_code(params), stable=True), cfg, size, out)
        return out
    workers = max(1, int(threads or torch.get_num_threads()))
    pool = _cpu_pool(workers)
    if fused:
        jitter = params.jitter & (cfg.jitter_p > 0)
        active = tuple(float(s) > 0 for s in _jitter_strengths(cfg))
        arrays = {f.name: getattr(params, f.name) for f in fields(params)} | {"jitter": jitter}
        kernel = int(cfg.blur_kernel) if cfg.blur_p > 0 else 0
        step = int(chunk or max(8, math.ceil(n / (4 * workers))))
        parts = [np.arange(lo, min(lo + step, n)) for lo in range(0, n, step)]
        jobs = [
            pool.submit(augment_cpu.views_into, images_u8, arrays, ids, active, kernel, cfg.mean, cfg.std, out)
            for ids in parts
        ]
    else:  # even one chunk goes to a worker: its ops then run without OpenMP hand-offs
        order = torch.argsort(_jitter_code(params), stable=True)
        step = int(chunk or 32)
        jobs = [
            pool.submit(_augment_chunk, images_u8, params, order[lo : lo + step], cfg, size, out)
            for lo in range(0, n, step)
        ]
    for job in jobs:
        job.result()
    return out


def make_views(
    images_u8: torch.Tensor,
    cfg: AugmentationConfig,
    n_views: int = 2,
    generator: torch.Generator | None = None,
    out_size: int | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (n_views * B, 3, S, S) float32: all first views, then all second views, ...

    Matches the order of the tutorial's ``torch.cat(imgs)``, so view v of image b is row v * B + b.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1, got {n_views}")
    _check_images(images_u8)
    b, _, h, w = images_u8.shape
    params = sample_params(n_views * b, cfg, (h, w), generator, images_u8.device)
    return apply(images_u8, params, cfg, out_size)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def augment_stages(
    image_u8: torch.Tensor,
    cfg: AugmentationConfig,
    generator: torch.Generator | None = None,
    params: AugParams | None = None,
    out_size: int | None = None,
) -> list[tuple[str, torch.Tensor]]:
    """One image after each operation, in order: ``STAGES`` names with uint8 (3, h, w) tensors.

    "original" and "flip" keep the input size (H, W); "crop" onwards are (3, S, S). Uses the
    same ops as ``apply`` (pass ``params`` of one view to fix the random choices; their
    ``describe()`` says what was drawn). Pixels are before normalisation.
    """
    images = image_u8.unsqueeze(0)
    _check_images(images)
    _, _, h, w = images.shape
    if params is None:
        params = sample_params(1, cfg, (h, w), generator, image_u8.device)
    params = params.to(image_u8.device)
    size = int(out_size or cfg.crop_size)
    whole = params.select(0)
    whole.crop = torch.tensor([[0, 0, h, w]], device=image_u8.device)
    flipped = _crop_resize(images, whole, (h, w))
    x = _crop_resize(images, params, (size, size))
    stages = [("original", image_u8), ("flip", _to_u8(flipped[0]))]
    stages.append(("crop", _to_u8(x[0])))
    _colour_jitter_(x, params, cfg)
    stages.append(("colour jitter", _to_u8(x[0])))
    _grayscale_(x, params)
    stages.append(("grayscale", _to_u8(x[0])))
    x = _blur(x, params, cfg)
    stages.append(("blur", _to_u8(x[0])))
    return stages


def denormalise(views: torch.Tensor, cfg: AugmentationConfig) -> torch.Tensor:
    """(n, 3, S, S) normalised float -> uint8 for display."""
    mean = torch.tensor(cfg.mean, device=views.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=views.device).view(1, 3, 1, 1)
    return _to_u8(views.float() * std + mean)


def preview_grid(
    images_u8: torch.Tensor,
    cfg: AugmentationConfig,
    n_views: int = 2,
    seed: int = 0,
    per_row: int = 3,
    gap: int = 2,
    group_gap: int = 10,
    out_size: int | None = None,
) -> np.ndarray:
    """The tutorial's grid of augmented examples: uint8 (H', W', 3) numpy.

    The ``n_views`` views of each image sit side by side (``gap`` pixels apart) as one group;
    ``per_row`` groups per row, ``group_gap`` pixels between groups, on the tutorial's light
    grey (0.9) background.
    """
    _check_images(images_u8)
    gen = torch.Generator().manual_seed(int(seed))
    views = make_views(images_u8, cfg, n_views, gen, out_size)
    tiles = denormalise(views, cfg).permute(0, 2, 3, 1).cpu().numpy()  # (V*B, S, S, 3)
    b = images_u8.shape[0]
    size = tiles.shape[1]
    per_row = max(1, min(per_row, b))
    rows = math.ceil(b / per_row)
    group_w = n_views * size + (n_views - 1) * gap
    width = per_row * group_w + (per_row + 1) * group_gap
    height = rows * size + (rows + 1) * group_gap
    grid = np.full((height, width, 3), round(0.9 * 255), dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, per_row)
        y = group_gap + r * (size + group_gap)
        x0 = group_gap + c * (group_w + group_gap)
        for v in range(n_views):
            x = x0 + v * (size + gap)
            grid[y : y + size, x : x + size] = tiles[v * b + i]
    return grid
