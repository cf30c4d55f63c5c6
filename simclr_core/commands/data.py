"""``python -m simclr_core data``: decode (once) and summarise a dataset spec."""

from __future__ import annotations

import argparse
import os

from simclr_core.cli_progress import Bars
from simclr_core.commands import add_data_root_arg, spec_help
from simclr_core.data import describe


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "data",
        help="decode a dataset once and show its splits, images per class, resolution and memory",
        description=(
            "Decode a dataset (or read its cache) and print its splits, images per class, resolution, "
            "memory and cache path. The first call decodes / downloads; later calls read the cache."
        ),
    )
    parser.add_argument("--data", default="shapes", metavar="SPEC", help=spec_help("shapes"))
    parser.add_argument(
        "--image-size",
        type=int,
        default=96,
        metavar="PX",
        help="side in pixels the images are decoded to (shorter side resized, centre square kept); default 96",
    )
    add_data_root_arg(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    root = args.data_root or os.environ.get("SIMCLR_STUDIO_DATA") or None
    with Bars() as bars:  # download and decoding progress on stderr
        info = describe(args.data, image_size=args.image_size, root=root, progress=bars)
    size = info["resolution"][-1]
    print(f"dataset     {info['spec']}  ({info['kind']}, split {info['split']})")
    print(f"splits      {', '.join(info['splits'])}")
    kind = "labelled" if info["labelled"] else "unlabelled"
    extra = f", {info['unlabelled']} without label" if info["labelled"] and info["unlabelled"] else ""
    print(f"images      {info['images']} ({kind}{extra})")
    print(f"resolution  3 x {size} x {size} (uint8)")
    where = "memory-mapped from disk" if info["mapped"] else "in RAM"
    print(f"memory      {info['memory']} ({where})")
    how = "read from the cache" if info["from_cache"] else "decoded now; later loads read this cache"
    print(f"cache       {info['cache_path']} ({how})")
    if info["classes"] and info["labelled"]:
        print(f"classes     {len(info['classes'])} (images per class)")
        width = max(len(c) for c in info["classes"])
        for name in info["classes"]:
            print(f"  {name:<{width}}  {info['per_class'].get(name, 0)}")
    elif info["classes"]:
        print(f"classes     {', '.join(info['classes'])} (names only: this split carries no labels)")
    if info["warnings"]:
        print(f"skipped     {len(info['warnings'])} problem(s) while decoding:")
        for line in info["warnings"]:
            print(f"  {line}")
    return 0
