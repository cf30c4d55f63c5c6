"""What the Home page and ``python -m simclr_core data`` show about datasets."""

from __future__ import annotations

import json
from pathlib import Path

from simclr_core.data import shapes, torchvision_sets
from simclr_core.data.cache import decoded_dir
from simclr_core.data.load import load_dataset
from simclr_core.data.spec import BUILTIN_SPLITS, PATH_SPLITS, data_root, parse_spec
from simclr_core.units import human_bytes

_DESCRIPTIONS = {
    "shapes": (
        "built-in, offline: 10 procedurally drawn shape classes; colours and textures vary per image, not per class"
    ),
    "stl10": "STL-10 via torchvision: 96x96 photos, 10 classes, 100k unlabelled images (the seed's dataset)",
    "cifar10": "CIFAR-10 via torchvision: 32x32 photos, 10 classes",
}


def _cache_entries(root: Path) -> list[dict]:
    out = []
    base = decoded_dir(root)
    for meta_file in sorted(base.glob("*/meta.json")) if base.is_dir() else ():
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        meta["path"] = str(meta_file.parent)
        out.append(meta)
    return out


def available_datasets(root: str | Path | None = None) -> list[dict]:
    """Datasets usable now or after a download: one dict per (source, split).

    Keys: spec, kind, split, status ('built-in' | 'downloaded' | 'not downloaded' | 'cached'),
    labelled, description, cached_sizes (image sizes already decoded), and for cached folders
    images / classes counts.
    """
    base = data_root(root)
    entries = _cache_entries(base)
    sizes: dict[str, list[int]] = {}
    for meta in entries:
        sizes.setdefault(meta.get("spec", ""), []).append(int(meta.get("image_size", 0)))
    rows = []
    for name, (splits, _) in BUILTIN_SPLITS.items():
        if name == "shapes":
            status = "built-in"
        else:
            status = "downloaded" if torchvision_sets.is_downloaded(name, base) else "not downloaded"
        for split in splits:
            canonical = parse_spec(f"{name}:{split}").canonical
            row = {
                "spec": f"{name}:{split}",
                "kind": name,
                "split": split,
                "status": status,
                "labelled": split not in ("unlabeled",),
                "description": _DESCRIPTIONS[name],
                "cached_sizes": sorted(sizes.get(canonical, [])),
            }
            if name == "shapes":
                per = shapes.DEFAULT_SIZES[split]
                row["images"] = per if split == "unlabeled" else per * len(shapes.CLASSES)
                row["classes"] = len(shapes.CLASSES)
            else:
                row["download_size"] = torchvision_sets.SOURCES[name]["download_size"]
            rows.append(row)
    for meta in entries:
        if meta.get("kind") != "path":
            continue
        rows.append(
            {
                "spec": meta["spec"],
                "kind": "path",
                "split": "all" if "split=" not in meta["spec"] else meta["spec"].split("split=")[1].split("&")[0],
                "status": "cached",
                "labelled": bool(meta.get("classes")),
                "description": "decoded image folder / archive",
                "cached_sizes": [int(meta.get("image_size", 0))],
                "images": meta.get("n"),
                "classes": len(meta.get("classes", [])),
                "cache_path": meta["path"],
            }
        )
    return rows


def describe(spec: str, image_size: int = 96, root: str | Path | None = None, progress=None) -> dict:
    """Load (decoding once) and summarise: splits, images per class, resolution, memory, cache path."""
    parsed = parse_spec(spec)
    data = load_dataset(spec, image_size=image_size, root=root, progress=progress)
    splits = list(PATH_SPLITS if parsed.kind == "path" else BUILTIN_SPLITS[parsed.kind][0])
    return {
        "spec": spec,
        "kind": parsed.kind,
        "split": parsed.split,
        "splits": splits,
        "images": len(data),
        "labelled": data.labelled,
        "classes": list(data.classes),
        "per_class": data.per_class_counts() if data.labelled else {},
        "unlabelled": data.n_unlabelled,
        "resolution": [3, data.image_size, data.image_size],
        "memory_bytes": data.nbytes,
        "memory": human_bytes(data.nbytes),
        "mapped": data.mapped,
        "cache_path": str(data.cache_path) if data.cache_path else None,
        "from_cache": data.cached,
        "warnings": list(data.warnings),
    }
