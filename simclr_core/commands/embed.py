"""``embed``: 2-D/3-D coordinates of a labelled split's frozen features, to a CSV or NPZ file.

    python -m simclr_core embed (--checkpoint CKPT | --run RUN_DIR) --data SPEC
        --method umap|pca|tsne --dims 2|3 [--features h|z] [--limit N] --out FILE.csv|FILE.npz

CSV columns: ``index`` (row in the dataset, for thumbnails), ``label``, ``class``, ``x``, ``y``[, ``z``].
NPZ arrays: ``coords (n, dims) float32``, ``labels (n,) int64``, ``indices (n,) int64``, ``classes``.
Features and coordinates are cached (next to the run's features), so a repeat is instant.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from simclr_core.cli_progress import Bars
from simclr_core.commands.probe import add_source_args, source_from_args
from simclr_core.config import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "embed",
        help="UMAP/PCA/t-SNE coordinates of frozen features to CSV/NPZ",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_args(p)
    p.add_argument("--data", help="labelled dataset spec (default with --run: its source's test split)")
    p.add_argument(
        "--method",
        choices=("umap", "pca", "tsne"),
        default="umap",
        help="projection of the features: umap (neighbourhoods), pca (linear, fastest) or tsne; default umap",
    )
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="coordinates per point (2 or 3); default 2")
    p.add_argument("--limit", type=int, help="project a seeded random subset of N points")
    p.add_argument("--seed", type=int, default=0, help="subset and UMAP/t-SNE seed")
    p.add_argument("--out", required=True, help="output .csv or .npz")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from simclr_core.features import default_eval_specs, features_for
    from simclr_core.projection import embedding_table

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".npz"):
        raise ConfigError(f"--out must end in .csv or .npz, got {out.name!r}")
    source, run_dir = source_from_args(args)
    data = args.data or default_eval_specs(run_dir)[1]
    if not data:
        raise ConfigError("give --data (a labelled dataset spec, e.g. shapes:test)")
    t0 = time.time()
    with Bars() as bars:  # download, decoding and encoding progress on stderr
        fs = features_for(
            source,
            data,
            args.features,
            args.image_size,
            device=args.device,
            progress=bars.counter(f"encoding {data}"),
            data_progress=bars,
        )
    table = embedding_table(fs, args.method, args.dims, args.limit, args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, coords=table.coords, labels=table.labels, indices=table.indices, classes=np.array(table.classes))
    else:
        rows = table.rows()
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(
        f"wrote {len(table.indices)} points ({args.method} {args.dims}-D of {args.features} features of {data}) "
        f"to {out} in {time.time() - t0:.1f} s{' (cached)' if table.cached else ''}",
        file=sys.stderr,
    )
    return 0
