"""``load_dataset``: spec string -> ImageSet, decoding once and reading the disk cache after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from simclr_core.data import folders, shapes, torchvision_sets
from simclr_core.data.cache import CacheWriter, cache_key, decoded_dir, load_cached
from simclr_core.data.imageset import ImageSet
from simclr_core.data.spec import DatasetError, DataSpec, data_root, parse_spec

Progress = Callable[[str, float], None] | None
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024


def _check_size(image_size: int) -> int:
    try:
        size = int(image_size)
    except (TypeError, ValueError):
        size = None
    if size is None or (isinstance(image_size, float) and not image_size.is_integer()):
        raise DatasetError(f"image size must be a whole number of pixels, got {image_size!r}")
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise DatasetError(f"image size must lie in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}] pixels, got {image_size!r}")
    return size


def _slug(parsed: DataSpec) -> str:
    if parsed.kind == "path":
        name = parsed.path.name if parsed.path else "data"
        return name + ("" if parsed.split == "all" else f"-{parsed.split}")
    extra = "".join(f"-{k}{v}" for k, v in sorted(parsed.params.items()))
    return f"{parsed.kind}-{parsed.split}{extra}"


def _load_shapes(parsed: DataSpec, spec: str, size: int, root: Path, progress: Progress) -> ImageSet:
    path = decoded_dir(root) / cache_key(_slug(parsed), parsed.canonical, size, f"shapes-v{shapes.VERSION}")
    hit = load_cached(path, spec)
    if hit is not None:
        return hit
    n, seed = parsed.params.get("n"), parsed.params["seed"]
    per = shapes.DEFAULT_SIZES[parsed.split] if n is None else n
    total = per if parsed.split == "unlabeled" else per * len(shapes.CLASSES)
    with CacheWriter(root, path.name, total, size) as writer:
        _, labels = shapes.generate(parsed.split, n, seed, size, out=torch.from_numpy(writer.images), progress=progress)
        labels_np = labels.numpy() if parsed.split != "unlabeled" else np.full(total, -1, dtype=np.int64)
        final = writer.commit(
            labels_np, shapes.CLASSES, {"spec": parsed.canonical, "image_size": size, "kind": "shapes"}
        )
    return _reload(final, spec)


def _reload(path: Path, spec: str) -> ImageSet:
    out = load_cached(path, spec)
    if out is None:
        raise DatasetError(f"the decoded cache {path} could not be read back; delete it and try again")
    out.cached = False
    return out


def _load_torchvision(parsed: DataSpec, spec: str, size: int, root: Path, progress: Progress) -> ImageSet:
    path = decoded_dir(root) / cache_key(_slug(parsed), parsed.canonical, size)
    hit = load_cached(path, spec)
    if hit is not None:
        return hit
    torchvision_sets.ensure_downloaded(parsed.kind, root, progress)
    n = torchvision_sets.split_size(parsed.kind, parsed.split, root)
    with CacheWriter(root, path.name, n, size) as writer:
        labels, classes = torchvision_sets.fill(parsed.kind, parsed.split, root, writer.images, progress)
        final = writer.commit(labels, classes, {"spec": parsed.canonical, "image_size": size, "kind": parsed.kind})
    return _reload(final, spec)


def _load_folder(parsed: DataSpec, spec: str, size: int, root: Path, progress: Progress) -> ImageSet:
    assert parsed.path is not None
    fingerprint = folders.fingerprint(parsed.path)
    whole = DataSpec(kind="path", split="all", path=parsed.path)
    whole_path = decoded_dir(root) / cache_key(_slug(whole), whole.canonical, size, fingerprint)
    full = load_cached(whole_path, str(parsed.path))
    decoded_now = full is None
    if full is None:
        layout = folders.plan(parsed.path)
        with CacheWriter(root, whole_path.name, len(layout.members), size) as writer:
            errors = folders.decode_into(layout, writer.images, size, progress)
            keep, labels, classes, warnings = folders.settle(layout, errors)
            if len(keep) != len(layout.members):
                writer.shrink(keep)
            meta = {"spec": whole.canonical, "image_size": size, "kind": "path", "warnings": warnings}
            final = writer.commit(labels, classes, meta)
        full = _reload(final, str(parsed.path))
    if parsed.split == "all":
        full.spec = spec
        full.cached = not decoded_now
        return full
    return _carve(parsed, spec, size, root, full, fingerprint)


def _carve(parsed: DataSpec, spec: str, size: int, root: Path, full: ImageSet, fingerprint: str) -> ImageSet:
    path = decoded_dir(root) / cache_key(_slug(parsed), parsed.canonical, size, fingerprint)
    hit = load_cached(path, spec)
    if hit is not None:
        return hit
    idx = folders.carve_split(full.labels.numpy(), parsed.split, parsed.params["test_fraction"], parsed.params["seed"])
    if len(idx) == 0:
        raise DatasetError(
            f"the {parsed.split} split of {str(parsed.path)!r} is empty; use a larger test_fraction or more images"
        )
    with CacheWriter(root, path.name, len(idx), size) as writer:
        source = full.images.numpy()
        for start in range(0, len(idx), 4096):
            writer.images[start : start + 4096] = source[idx[start : start + 4096]]
        meta = {"spec": parsed.canonical, "image_size": size, "kind": "path", "warnings": full.warnings}
        final = writer.commit(full.labels.numpy()[idx], full.classes, meta)
    return _reload(final, spec)


def load_dataset(
    spec: str,
    image_size: int = 96,
    root: str | Path | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> ImageSet:
    """Load a dataset spec at ``image_size``: images (N, 3, S, S) uint8, labels (N,) int64 (-1 unlabelled).

    The first load decodes (or generates / downloads) and caches under ``<root>/decoded``; later
    loads read the cache (memory-mapped when large). ``progress(message, fraction)`` reports long steps.
    Raises DatasetError for anything a user can fix.
    """
    parsed = parse_spec(spec)
    size = _check_size(image_size)
    base = data_root(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetError(
            f"cannot create the data root {base}: {err}; set --data-root or $SIMCLR_STUDIO_DATA"
        ) from None
    spec = spec.strip()
    if parsed.kind == "shapes":
        return _load_shapes(parsed, spec, size, base, progress)
    if parsed.kind in torchvision_sets.SOURCES:
        return _load_torchvision(parsed, spec, size, base, progress)
    return _load_folder(parsed, spec, size, base, progress)
