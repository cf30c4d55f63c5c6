"""``python -m simclr_core preview``: the tutorial's grid of augmented examples, saved as a PNG."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from simclr_core.commands import add_data_root_arg, spec_help
from simclr_core.config import PRESETS, ConfigError, load_augmentation


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "preview",
        help="save a grid of augmented views (views of one image side by side) as a PNG",
        description=(
            "Augment a few images of a dataset with an augmentation preset or JSON file and save the "
            "tutorial's grid of augmented examples: the views of each image side by side. Uses the same "
            "batched engine as training; the same --seed gives the same grid."
        ),
    )
    parser.add_argument("--data", default="shapes:train", metavar="SPEC", help=spec_help("shapes:train"))
    parser.add_argument(
        "--aug",
        default="tutorial",
        metavar="PRESET|FILE.json",
        help=f"augmentation preset ({', '.join(PRESETS)}) or a JSON file of AugmentationConfig fields; "
        "default tutorial (the seed's contrast_transforms)",
    )
    parser.add_argument(
        "--images", type=int, default=6, metavar="N", help="images to show (spread evenly over the dataset); default 6"
    )
    parser.add_argument(
        "--views", type=int, default=2, metavar="V", help="augmented views per image, side by side; default 2"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random augmentation parameters; default 0")
    parser.add_argument(
        "--image-size",
        type=int,
        default=96,
        metavar="PX",
        help="side the images are decoded to and the views are cropped to (the preset's crop size is replaced); default 96",
    )
    parser.add_argument("--per-row", type=int, default=3, metavar="K", help="images per row of the grid; default 3")
    parser.add_argument("--out", default="grid.png", metavar="PNG", help="where to write the grid; default grid.png")
    add_data_root_arg(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from simclr_core.augment import preview_grid
    from simclr_core.data import load_dataset

    for name in ("images", "views", "per_row"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    out = Path(args.out)
    if not out.parent.exists():
        raise FileNotFoundError(f"the folder of --out {args.out!r} does not exist; create it or choose another path")
    cfg = load_augmentation(args.aug, crop_size=args.image_size)
    root = args.data_root or os.environ.get("SIMCLR_STUDIO_DATA") or None
    data = load_dataset(args.data, image_size=args.image_size, root=root)
    total = len(data.images)
    count = min(args.images, total)
    # Evenly spaced indices: the first N images of a class-sorted split would all be one class.
    index = torch.tensor([i * total // count for i in range(count)])
    images = data.images[index].contiguous()
    start = time.perf_counter()
    grid = preview_grid(images, cfg, n_views=args.views, seed=args.seed, per_row=args.per_row)
    elapsed = time.perf_counter() - start
    Image.fromarray(grid).save(out)
    print(
        f"wrote {out} ({grid.shape[1]}x{grid.shape[0]} px): {count} images x {args.views} views of {args.data} "
        f"with --aug {args.aug}, seed {args.seed}, in {elapsed * 1000:.0f} ms"
    )
    return 0
