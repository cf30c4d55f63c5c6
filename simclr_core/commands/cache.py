"""``python -m simclr_core cache``: show the decoded datasets and uploaded checkpoints kept on disk, clear them, cap them.

Both folders live under the data root and are capped with least-recently-used eviction
(``simclr_core/data/lru.py``); ``--cap`` stores a cap in ``<data root>/cache.json`` and applies it now.
"""

from __future__ import annotations

import argparse
import time

from simclr_core.commands import add_data_root_arg
from simclr_core.config import ConfigError

KIND_CHOICES = ("decoded", "uploads", "all")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from simclr_core.data.lru import DEFAULT_CAPS, KINDS

    env = ", ".join(f"${v} ({k})" for k, v in KINDS.items())
    p = subparsers.add_parser(
        "cache",
        help="list, clear or cap the decoded dataset caches and uploaded checkpoints",
        description=(
            "Without options: each entry with its size and last use, and each folder's total and cap. "
            f"Caps default to {DEFAULT_CAPS['decoded'] / 2**30:g} GiB (decoded) and "
            f"{DEFAULT_CAPS['uploads'] / 2**30:g} GiB (uploads); the least recently used entries are removed "
            f"beyond them. An environment variable overrides a stored cap: {env}, in GiB."
        ),
    )
    add_data_root_arg(p)
    p.add_argument("--clear", choices=KIND_CHOICES, default=None, help="remove every entry of this folder")
    p.add_argument(
        "--cap",
        action="append",
        default=[],
        metavar="KIND=SIZE",
        help="store a cap and evict down to it now, e.g. decoded=10GB or uploads=500MB (repeatable)",
    )
    p.set_defaults(func=run)
    return p


def _parse_caps(items: list[str]) -> dict[str, int]:
    from simclr_core.data.lru import KINDS, parse_size

    caps = {}
    for item in items:
        kind, _, size = item.partition("=")
        if kind not in KINDS or not size:
            raise ConfigError(f"--cap {item!r}: expected decoded=SIZE or uploads=SIZE, e.g. decoded=10GB")
        try:
            caps[kind] = parse_size(size)
        except ValueError:
            raise ConfigError(f"--cap {item!r}: {size!r} is not a size (e.g. 10GB, 500MB, 0)") from None
    return caps


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def run(args: argparse.Namespace) -> int:
    from simclr_core.data import data_root, lru

    root = data_root(args.data_root)
    caps = _parse_caps(args.cap)
    if caps:
        lru.write_settings(root, caps)
    for kind in lru.KINDS:
        folder = root / kind
        if args.clear in (kind, "all"):
            gone = lru.entries(folder)
            for entry in gone:
                lru.remove(entry)
            print(f"{kind}: removed {len(gone)} entries ({_mib(sum(e.size for e in gone))})")
        elif kind in caps:
            gone = lru.enforce(root, kind)
            print(f"{kind}: cap {_mib(caps[kind])}; evicted {len(gone)} entries ({_mib(sum(e.size for e in gone))})")
        kept = lru.entries(folder)
        total = sum(e.size for e in kept)
        print(f"{kind} ({folder}): {len(kept)} entries, {_mib(total)} of a {_mib(lru.cap(root, kind))} cap")
        for entry in reversed(kept):  # most recently used first
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.used))
            print(f"  {_mib(entry.size):>14}  {used}  {entry.path.name}")
    return 0
