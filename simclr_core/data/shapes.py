"""The built-in offline dataset: 10 procedurally drawn shape classes, shaped like STL10.

Why it looks the way it does: every image draws its own foreground and background colour
independently of its class, so colour identifies an *image* (two crops of it share it) but says
nothing about its *class*. Without colour distortion a contrastive model matches crops by colour
alone; the seed's lesson about crop + colour jitter is therefore visible here. The colours vary
within what the tutorial's jitter randomises (foreground hues in a window of 0.2, the jitter's
hue range; backgrounds opposite on the colour wheel), as most of a natural image's colour
statistics do, so jitter can hide them. Shapes stand nearly upright (+-20 degrees, as STL10's
objects mostly do) on plain, shaded backgrounds. Measured with the fast recipe at 3 epochs
(about 235 steps, kNN on ``shapes:test``): version 2 (any hue, any rotation, striped/checked/
dotted/noise backgrounds) 0.35; upright only 0.37; no textures only 0.38; both 0.45; both with
the narrow palette 0.81 (0.31 without colour jitter); the palette with any rotation 0.62, with
textures kept 0.70: the background texture and the rotation were instance cues that no
augmentation of the recipe removes, which the network learnt instead of shapes.
Shapes are drawn as signed-distance fields on a pixel grid, batched in torch with a one-pixel
smooth edge (anti-aliasing without supersampling); all geometry is in image-relative units, so
one seed gives the same images at every resolution. Shapes are large (radius 36-48 % of the side,
as STL10's objects fill most of their frame): with smaller ones many random crops held background
only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import torch

from simclr_core.data.spec import SHAPES_DEFAULT_SIZES

CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "heart", "arrow", "crescent", "lshape"]
DEFAULT_SIZES = SHAPES_DEFAULT_SIZES
FG_HUE_WINDOW = 0.2  # the tutorial's colour jitter shifts hue by up to +-0.1
MAX_TILT = math.radians(20)
# Bumped whenever the drawing changes, so caches of an older drawing are not reused.
VERSION = 4  # 4: upright, narrow palette, plain backgrounds (a different 3 was tried and dropped); 2: large shapes


def _box(u: torch.Tensor, v: torch.Tensor, bx: float, by: float, ox: float = 0.0, oy: float = 0.0) -> torch.Tensor:
    qx, qy = (u - ox).abs() - bx, (v - oy).abs() - by
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _regular_polygon(u: torch.Tensor, v: torch.Tensor, sides: int, inradius: float) -> torch.Tensor:
    d = None
    for i in range(sides):
        a = -math.pi / 2 + 2 * math.pi * i / sides
        e = u * math.cos(a) + v * math.sin(a) - inradius
        d = e if d is None else torch.maximum(d, e)
    return d


def _circle(u: torch.Tensor, v: torch.Tensor, r: float, ox: float = 0.0, oy: float = 0.0) -> torch.Tensor:
    return torch.sqrt((u - ox) ** 2 + (v - oy) ** 2) - r


def _star(u: torch.Tensor, v: torch.Tensor, points: int = 5, outer: float = 1.0, inner: float = 0.45) -> torch.Tensor:
    # Fold the plane into one half-sector, then the distance to the edge outer-tip -> inner-corner.
    sector = 2 * math.pi / points
    ang = torch.remainder(torch.atan2(v, u) + sector / 2, sector) - sector / 2
    rad = torch.sqrt(u * u + v * v)
    px, py = rad * torch.cos(ang.abs()), rad * torch.sin(ang.abs())
    ax, ay = outer, 0.0
    bx, by = inner * math.cos(sector / 2), inner * math.sin(sector / 2)
    ex, ey = bx - ax, by - ay
    length = math.hypot(ex, ey)
    # positive on the far side of the edge (away from the centre), negative inside
    return ((px - ax) * ey - (py - ay) * ex) / length


def _arrow(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    shaft = _box(u, v, 0.5, 0.17, ox=-0.35)
    tipx, basex, half = 0.95, 0.15, 0.55
    ex, ey = tipx - basex, -half
    norm = math.hypot(ex, ey)
    up = ((u - tipx) * -ey + (v - 0.0) * ex) / norm  # upper slanted edge, outward normal points up-right
    down = ((u - tipx) * -ey - (v - 0.0) * ex) / norm
    head = torch.maximum(torch.maximum(basex - u, up), down)
    return torch.minimum(shaft, head)


def _heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # A square turned 45 degrees with a disc on each of its two upper edges.
    s, cy = 0.52, -0.12
    ru, rv = (u + (v - cy)) / math.sqrt(2), ((v - cy) - u) / math.sqrt(2)
    body = _box(ru, rv, s, s)
    off = s / math.sqrt(2)
    lobes = torch.minimum(_circle(u, v, s, -off, cy + off), _circle(u, v, s, off, cy + off))
    return torch.minimum(body, lobes)


def _sdf(cls: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (in shape radii, negative inside) of class ``cls``; shapes fit the unit disc."""
    name = CLASSES[cls]
    if name == "circle":
        return _circle(u, v, 0.85)
    if name == "square":
        return _box(u, v, 0.66, 0.66)
    if name == "triangle":
        return _regular_polygon(u, v, 3, 0.5)
    if name == "star":
        return _star(u, v)
    if name == "cross":
        return torch.minimum(_box(u, v, 0.9, 0.26), _box(u, v, 0.26, 0.9))
    if name == "ring":
        return (torch.sqrt(u * u + v * v) - 0.66).abs() - 0.22
    if name == "heart":
        return _heart(u, v)
    if name == "arrow":
        return _arrow(u, v)
    if name == "crescent":
        return torch.maximum(_circle(u, v, 0.88), -_circle(u, v, 0.72, 0.42, 0.1))
    if name == "lshape":
        return torch.minimum(_box(u, v, 0.24, 0.8, ox=-0.42), _box(u, v, 0.66, 0.24, oy=0.56))
    raise ValueError(f"unknown shape class {cls}")


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N,) each in [0, 1] -> (N, 3) RGB in [0, 1]."""
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + h * 6.0, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, dim=1)


def _split_seed(split: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"shapes|{split}|{seed}".encode()).digest()[:8], "little") & (2**63 - 1)


def sample_params(split: str, n: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every random choice of a split, image-relative so it renders at any size.

    ``n`` is the total for ``unlabeled`` and images per class for ``train``/``test``.
    Returns tensors with a leading (N,) dimension; ``label`` is the true class (also for unlabeled).
    """
    if split not in DEFAULT_SIZES:
        raise ValueError(f"unknown shapes split {split!r}")
    n = DEFAULT_SIZES[split] if n is None else int(n)
    g = torch.Generator().manual_seed(_split_seed(split, seed))
    if split == "unlabeled":
        label = torch.randint(0, len(CLASSES), (n,), generator=g)
    else:
        label = torch.arange(len(CLASSES)).repeat_interleave(n)
        label = label[torch.randperm(label.numel(), generator=g)]
    total = label.numel()

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(total, *shape, generator=g)

    radius = u(0.36, 0.48)
    fg_h = u(0.0, FG_HUE_WINDOW)
    bg_h = torch.remainder(fg_h + 0.5 + u(-0.1, 0.1), 1.0)
    return {
        "label": label,
        "cx": radius + (1 - 2 * radius) * torch.rand(total, generator=g),
        "cy": radius + (1 - 2 * radius) * torch.rand(total, generator=g),
        "radius": radius,
        "angle": u(-MAX_TILT, MAX_TILT),
        "fg": _hsv_to_rgb(fg_h, u(0.45, 1.0), u(0.45, 1.0)),
        "bg": _hsv_to_rgb(bg_h, u(0.15, 1.0), u(0.1, 0.95)),
        "shade": u(0.0, 0.25),
        "shade_angle": u(0, 2 * math.pi),
    }


def render(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Draw a batch of parameters at ``size`` x ``size``: returns (B, 3, S, S) uint8."""
    b = p["label"].numel()
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    x = coords[None, None, :].expand(b, size, size)
    y = coords[None, :, None].expand(b, size, size)
    r = p["radius"][:, None, None]
    dx, dy = (x - p["cx"][:, None, None]) / r, (y - p["cy"][:, None, None]) / r
    ca, sa = torch.cos(p["angle"])[:, None, None], torch.sin(p["angle"])[:, None, None]
    u, v = dx * ca + dy * sa, -dx * sa + dy * ca
    dist = torch.empty(b, size, size)
    for cls in range(len(CLASSES)):
        idx = (p["label"] == cls).nonzero().flatten()
        if idx.numel():
            dist[idx] = _sdf(cls, u[idx], v[idx])
    alpha = (0.5 - dist * r * size).clamp(0, 1)[:, None]  # one-pixel smooth edge = anti-aliasing
    background = p["bg"][:, :, None, None].expand(b, 3, size, size)
    sc, ss = torch.cos(p["shade_angle"])[:, None, None], torch.sin(p["shade_angle"])[:, None, None]
    shade = torch.addcmul(torch.ones(()), p["shade"][:, None, None], dx * sc + dy * ss)
    foreground = p["fg"][:, :, None, None] * shade[:, None]
    img = torch.lerp(background, foreground, alpha)
    return img.mul_(255).clamp_(0, 255).round_().to(torch.uint8)


def chunk_size(image_size: int) -> int:
    return max(1, (1 << 18) // (image_size * image_size))  # ~1 MB float planes: cache-friendly


def generate(
    split: str,
    n: int | None,
    seed: int,
    image_size: int,
    out: torch.Tensor | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a whole split: (N, 3, S, S) uint8 (written into ``out`` when given) and true labels (N,) int64."""
    params = sample_params(split, n, seed)
    total = params["label"].numel()
    images = torch.empty(total, 3, image_size, image_size, dtype=torch.uint8) if out is None else out
    step = chunk_size(image_size)
    for start in range(0, total, step):
        part = {k: val[start : start + step] for k, val in params.items()}
        images[start : start + step] = render(part, image_size)
        if progress is not None:
            progress(f"drawing shapes:{split} at {image_size}x{image_size}", min(1.0, (start + step) / total))
    return images, params["label"].clone()
