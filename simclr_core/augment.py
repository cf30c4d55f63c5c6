"""Batched, on-device SimCLR augmentation: one engine for the dashboard preview and for training.

Randomness and pixels are kept apart: ``sample_params`` (``augment_params``) draws every random
choice of the tutorial's pipeline as tensors with a leading batch dimension, and ``apply`` turns
uint8 images plus those parameters into normalised float views. Parameters can thus be logged,
drawn in the dashboard and fixed in tests, and one code path serves every caller.

Semantics follow torchvision's per-image transforms in the tutorial's order
(flip -> crop -> jitter -> grayscale -> blur -> normalise); tests compare each op with
torchvision's functional ops. The ops live beside this pipeline, one job each:
``augment_spatial`` (flip + crop + antialiased resize, blur), ``augment_colour`` (colour jitter,
grayscale, normalisation) and ``augment_cpu`` (all of a view's ops fused in one numba kernel).

On CPU, views are processed in chunks on single-threaded worker threads (cache-sized
tensors; intra-op OpenMP threads only add hand-offs on such small ops). Everything is float32
in [0, 1]: bf16 elementwise ops measured 2-3x slower on this CPU, so there is no bf16 path.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import torch

from simclr_core import augment_cpu
from simclr_core.augment_colour import colour_jitter_, grayscale_, jitter_code, jitter_strengths, normalise_
from simclr_core.augment_params import JITTER_OPS, AugParams, sample_params
from simclr_core.augment_spatial import blur, crop_resize
from simclr_core.config import AugmentationConfig
from simclr_core.threads import single_threaded_pool

__all__ = [
    "JITTER_OPS",
    "STAGES",
    "AugParams",
    "apply",
    "augment_stages",
    "denormalise",
    "make_views",
    "preview_grid",
    "sample_params",
]

STAGES = ("original", "flip", "crop", "colour jitter", "grayscale", "blur")


def _check_images(images_u8: torch.Tensor) -> None:
    if images_u8.dtype != torch.uint8 or images_u8.dim() != 4 or images_u8.shape[1] != 3:
        raise ValueError(f"expected uint8 images (B, 3, H, W), got {tuple(images_u8.shape)} {images_u8.dtype}")


def _augment_chunk(
    images_u8: torch.Tensor, params: AugParams, ids: torch.Tensor, cfg: AugmentationConfig, size: int, out: torch.Tensor
) -> None:
    """Views ``ids`` (made from images ids % B) into ``out`` rows ``ids``."""
    part = params.select(ids)
    x = crop_resize(images_u8[ids % images_u8.shape[0]], part, (size, size))
    colour_jitter_(x, part, cfg)
    grayscale_(x, part)
    x = blur(x, part, cfg)
    out.index_copy_(0, ids, normalise_(x, cfg))


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
    the batched torch ops of ``augment_spatial`` and ``augment_colour`` run on chunks of 32 (the CUDA
    path, and the reference the kernel is tested against). Elsewhere the torch ops run on all views at once.
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
        _augment_chunk(images_u8, params, torch.argsort(jitter_code(params), stable=True), cfg, size, out)
        return out
    workers = max(1, int(threads or torch.get_num_threads()))
    # whole chunks in parallel on single-threaded workers: on small tensors intra-op OpenMP threads mostly
    # synchronise (and stall badly when cores are shared)
    pool = single_threaded_pool("augment", workers)
    if fused:
        jitter = params.jitter & (cfg.jitter_p > 0)
        active = tuple(float(s) > 0 for s in jitter_strengths(cfg))
        arrays = {f.name: getattr(params, f.name) for f in fields(params)} | {"jitter": jitter}
        kernel = int(cfg.blur_kernel) if cfg.blur_p > 0 else 0
        step = int(chunk or max(8, math.ceil(n / (4 * workers))))
        parts = [np.arange(lo, min(lo + step, n)) for lo in range(0, n, step)]
        jobs = [
            pool.submit(augment_cpu.views_into, images_u8, arrays, ids, active, kernel, cfg.mean, cfg.std, out)
            for ids in parts
        ]
    else:  # even one chunk goes to a worker: its ops then run without OpenMP hand-offs
        order = torch.argsort(jitter_code(params), stable=True)
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
    flipped = crop_resize(images, whole, (h, w))
    x = crop_resize(images, params, (size, size))
    stages = [("original", image_u8), ("flip", _to_u8(flipped[0]))]
    stages.append(("crop", _to_u8(x[0])))
    colour_jitter_(x, params, cfg)
    stages.append(("colour jitter", _to_u8(x[0])))
    grayscale_(x, params)
    stages.append(("grayscale", _to_u8(x[0])))
    x = blur(x, params, cfg)
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
