"""One module per CLI subcommand: ``add_parser(subparsers)`` registers its flags and ``run``."""

from __future__ import annotations

import argparse


def spec_help(default: str) -> str:
    """The --data help shared by every subcommand that reads a dataset spec."""
    return (
        "dataset spec: 'shapes[:unlabeled|train|test][?n=N&seed=S]' (built in, offline), "
        "'stl10[:unlabeled|train|test|train+unlabeled]', 'cifar10[:train|test]' (downloaded by torchvision), "
        "or a path to an image folder (one subfolder per class, or flat) / .zip / .tar / .tar.gz / .tgz, "
        f"optionally with '?split=train|test&test_fraction=0.2&seed=0' to carve a held-out split (default: {default})"
    )


def add_data_root_arg(parser: argparse.ArgumentParser) -> None:
    """--data-root, shared by the subcommands that decode datasets."""
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="where downloads and decoded caches live; default $SIMCLR_STUDIO_DATA or ~/.cache/simclr-studio",
    )
