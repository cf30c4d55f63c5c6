"""The CPU fast path of ``augment.apply``: every op of one view fused into one numba loop nest.

The batched torch ops (``augment_spatial``, ``augment_colour``) make ~60 passes over each chunk
of views; on a CPU each pass streams the chunk through memory and each op call holds the GIL for
its Python glue, so two threads scaled only ~1.4x. Here a view is finished while it sits in the L2
cache (one (3, S, S) float32 scratch image, ~110 KB at 96 px), and the whole chunk runs with the
GIL released (``nogil``), so worker threads scale with cores. Semantics are those of the torch ops
(the tests compare the two on the same parameters); numba is already installed as a dependency of
umap-learn, and compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

_PARAM_NAMES = ("flip", "crop", "jitter", "jitter_factors", "jitter_order", "gray", "blur", "sigma")
LUMA_R, LUMA_G, LUMA_B = np.float32(0.2989), np.float32(0.587), np.float32(0.114)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _taps(start: int, length: int, in_len: int, out_len: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, each (n_taps, out_len): ``augment_spatial._taps`` for one view, taps first."""
    ratio = np.float32(length) / np.float32(out_len)
    support = max(ratio, np.float32(1.0))
    n_taps = max(2, math.ceil(2 * length / out_len))
    idx = np.empty((n_taps, out_len), np.int64)
    w = np.empty((n_taps, out_len), np.float32)
    for i in range(out_len):
        centre = (np.float32(i) + np.float32(0.5)) * ratio
        first = math.floor(centre - support - np.float32(0.5)) + 1
        total = np.float32(0.0)
        for t in range(n_taps):
            rel = first + t
            wt = max(np.float32(0.0), np.float32(1.0) - abs((np.float32(rel) + np.float32(0.5) - centre) / support))
            if rel < 0 or rel >= length:
                wt = np.float32(0.0)
            w[t, i] = wt
            total += wt
            src = min(max(rel, 0), length - 1) + start
            idx[t, i] = in_len - 1 - src if flip else src
        for t in range(n_taps):
            w[t, i] /= total
    return idx, w


@numba.njit(cache=True, nogil=True, fastmath=True)
def _crop_resize(src: np.ndarray, crop: np.ndarray, flip: bool, out: np.ndarray) -> None:
    """Flip + crop + antialiased resize of one uint8 (3, H, W) image into float (3, S, S) in [0, 1].

    Rows first (each tap adds a whole source row: contiguous, vectorised), then columns, each
    tap a gather from that small buffer; the 1/255 scaling rides on the row weights.
    """
    _, height, width = src.shape
    size = out.shape[1]
    top, left, h, w = crop[0], crop[1], crop[2], crop[3]
    iy, wy = _taps(top, h, height, size, False)
    ix, wx = _taps(left, w, width, size, flip)
    lo = ix.min()
    span = ix.max() - lo + 1
    ix -= lo
    rows = np.empty((3, size, span), np.float32)
    for c in range(3):
        for i in range(size):
            dst = rows[c, i]
            dst[:] = 0
            for t in range(iy.shape[0]):
                weight = wy[t, i] * np.float32(1.0 / 255.0)
                row = src[c, iy[t, i], lo : lo + span]
                for x in range(span):
                    dst[x] += weight * np.float32(row[x])
    for c in range(3):
        for i in range(size):
            row, dst = rows[c, i], out[c, i]
            for j in range(size):
                dst[j] = row[ix[0, j]] * wx[0, j]
            for t in range(1, ix.shape[0]):
                for j in range(size):
                    dst[j] += row[ix[t, j]] * wx[t, j]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _clamp01(v: np.float32) -> np.float32:
    return min(max(v, np.float32(0.0)), np.float32(1.0))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _brightness(x: np.ndarray, f: np.float32) -> None:
    flat = x.reshape(-1)
    for p in range(flat.size):
        flat[p] = _clamp01(flat[p] * f)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _contrast(x: np.ndarray, f: np.float32) -> None:
    r, g, b = x[0].reshape(-1), x[1].reshape(-1), x[2].reshape(-1)
    total = np.float32(0.0)
    for p in range(r.size):
        total += LUMA_R * r[p] + LUMA_G * g[p] + LUMA_B * b[p]
    other = (np.float32(1.0) - f) * (total / np.float32(r.size))
    flat = x.reshape(-1)
    for p in range(flat.size):
        flat[p] = _clamp01(f * flat[p] + other)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _saturation(x: np.ndarray, f: np.float32) -> None:
    r, g, b = x[0].reshape(-1), x[1].reshape(-1), x[2].reshape(-1)
    keep = np.float32(1.0) - f
    for p in range(r.size):
        gray = keep * (LUMA_R * r[p] + LUMA_G * g[p] + LUMA_B * b[p])
        r[p] = _clamp01(f * r[p] + gray)
        g[p] = _clamp01(f * g[p] + gray)
        b[p] = _clamp01(f * b[p] + gray)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _hue_channel(h: np.float32, offset: np.float32, v: np.float32, delta: np.float32) -> np.float32:
    k = h + offset
    k -= np.float32(6.0) * math.floor(k * np.float32(1.0 / 6.0))
    return v - delta * _clamp01(np.float32(2.0) - abs(k - np.float32(2.0)))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _hue(x: np.ndarray, shift: np.float32) -> None:
    """Hue rotation through HSV in sixths of a turn (the formula of ``augment_colour._adjust_hue_``), per pixel."""
    r, g, b = x[0].reshape(-1), x[1].reshape(-1), x[2].reshape(-1)
    turn = np.float32(6.0) * shift
    for p in range(r.size):
        rv, gv, bv = r[p], g[p], b[p]
        v = max(max(rv, gv), bv)
        delta = v - min(min(rv, gv), bv)
        inv = np.float32(1.0) / max(delta, np.float32(1e-12))
        if v == rv:
            h = (gv - bv) * inv
        elif v == gv:
            h = (bv - rv) * inv + np.float32(2.0)
        else:
            h = (rv - gv) * inv + np.float32(4.0)
        h += turn
        h -= np.float32(6.0) * math.floor(h * np.float32(1.0 / 6.0))
        r[p] = _hue_channel(h, np.float32(5.0), v, delta)
        g[p] = _hue_channel(h, np.float32(3.0), v, delta)
        b[p] = _hue_channel(h, np.float32(1.0), v, delta)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _grayscale(x: np.ndarray) -> None:
    r, g, b = x[0].reshape(-1), x[1].reshape(-1), x[2].reshape(-1)
    for p in range(r.size):
        gray = LUMA_R * r[p] + LUMA_G * g[p] + LUMA_B * b[p]
        r[p] = gray
        g[p] = gray
        b[p] = gray


@numba.njit(cache=True, nogil=True, fastmath=True)
def _reflect(p: int, n: int) -> int:
    if p < 0:
        return -p
    if p >= n:
        return 2 * n - 2 - p
    return p


@numba.njit(cache=True, nogil=True, fastmath=True)
def _blur(x: np.ndarray, kernel_size: int, sigma: np.float32, scratch: np.ndarray) -> None:
    """Separable Gaussian blur with reflect padding, torchvision's kernel; ``scratch`` is x's shape."""
    half = np.float32((kernel_size - 1) / 2)
    kern = np.empty(kernel_size, np.float32)
    step = np.float32(2 * half / (kernel_size - 1)) if kernel_size > 1 else np.float32(0.0)
    for t in range(kernel_size):
        u = (-half + step * np.float32(t)) / sigma
        kern[t] = math.exp(np.float32(-0.5) * u * u)
    kern /= kern.sum()
    for t in range(kernel_size):  # small sigmas leave subnormal tails: each product with one stalls the core
        if kern[t] < np.float32(1e-30):
            kern[t] = np.float32(0.0)
    pad = kernel_size // 2
    _, h, w = x.shape
    padded = np.empty(w + 2 * pad, np.float32)
    for c in range(3):
        for i in range(h):
            row, dst = x[c, i], scratch[c, i]
            padded[pad : pad + w] = row
            for j in range(pad):
                padded[pad - 1 - j] = row[j + 1]
                padded[pad + w + j] = row[w - 2 - j]
            for j in range(w):
                dst[j] = kern[0] * padded[j]
            for t in range(1, kernel_size):
                weight = kern[t]
                for j in range(w):
                    dst[j] += weight * padded[j + t]
    for c in range(3):
        for i in range(h):
            dst = x[c, i]
            dst[:] = 0
            for t in range(kernel_size):
                src = scratch[c, _reflect(i + t - pad, h)]
                for j in range(w):
                    dst[j] += kern[t] * src[j]


@numba.njit(cache=True, nogil=True, fastmath=True)
def augment_views(
    images: np.ndarray,
    views: np.ndarray,
    flip: np.ndarray,
    crop: np.ndarray,
    jitter: np.ndarray,
    factors: np.ndarray,
    order: np.ndarray,
    gray: np.ndarray,
    blur: np.ndarray,
    sigma: np.ndarray,
    active: np.ndarray,
    kernel_size: int,
    mean: np.ndarray,
    inv_std: np.ndarray,
    out: np.ndarray,
) -> None:
    """Views ``views`` (parameter rows; view r is made from image r % B) of uint8 ``images`` into ``out``.

    ``active`` (4,) bool says which jitter ops have a non-zero strength; ``kernel_size`` 0 turns blur off.
    """
    size = out.shape[2]
    x = np.empty((3, size, size), np.float32)
    scratch = np.empty((3, size, size), np.float32)
    n_images = images.shape[0]
    for v in views:
        _crop_resize(images[v % n_images], crop[v], flip[v], x)
        if jitter[v]:
            for slot in range(4):
                op = order[v, slot]
                if not active[op]:
                    continue
                f = factors[v, op]
                if op == 0:
                    _brightness(x, f)
                elif op == 1:
                    _contrast(x, f)
                elif op == 2:
                    _saturation(x, f)
                else:
                    _hue(x, f)
        if gray[v]:
            _grayscale(x)
        if kernel_size > 0 and blur[v]:
            _blur(x, kernel_size, sigma[v], scratch)
        for c in range(3):
            dst, src = out[v, c].reshape(-1), x[c].reshape(-1)
            for p in range(src.size):
                dst[p] = (src[p] - mean[c]) * inv_std[c]


def views_into(
    images_u8: torch.Tensor,
    params: dict[str, torch.Tensor],
    views: np.ndarray,
    jitter_active: tuple[bool, bool, bool, bool],
    blur_kernel: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    out: torch.Tensor,
) -> None:
    """Write views ``views`` into the float32 (n, 3, S, S) CPU tensor ``out``; releases the GIL while it runs.

    ``params`` maps ``AugParams`` field names to CPU tensors; ``blur_kernel`` 0 means no blur.
    """
    if blur_kernel // 2 >= out.shape[-1]:
        raise ValueError(f"blur kernel {blur_kernel} is too large for {out.shape[-1]} px views")
    arrays = {name: params[name].contiguous().numpy() for name in _PARAM_NAMES}
    augment_views(
        images_u8.contiguous().numpy(),
        views,
        *(arrays[name] for name in _PARAM_NAMES),
        np.array(jitter_active),
        int(blur_kernel),
        np.array(mean, np.float32),
        1 / np.array(std, np.float32),
        out.numpy(),
    )


def warm_up() -> None:
    """Load the kernel from numba's disk cache, compiling it first if this machine has none (~5 s)."""
    images = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    params = {
        "flip": torch.ones(1, dtype=torch.bool),
        "crop": torch.tensor([[0, 0, 16, 16]]),
        "jitter": torch.ones(1, dtype=torch.bool),
        "jitter_factors": torch.ones(1, 4),
        "jitter_order": torch.arange(4)[None],
        "gray": torch.ones(1, dtype=torch.bool),
        "blur": torch.ones(1, dtype=torch.bool),
        "sigma": torch.ones(1),
    }
    out = torch.empty(1, 3, 16, 16)
    views_into(images, params, np.arange(1), (True,) * 4, 3, (0.5,) * 3, (0.5,) * 3, out)
