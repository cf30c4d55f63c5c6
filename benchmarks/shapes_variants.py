"""kNN of the fast recipe on variants of the ``shapes`` drawing, at a fixed step count.

A fixed number of epochs (not a time budget) makes the comparison independent of the machine's load.
Each variant redraws the scene parameters of version 4 (``simclr_core.data.shapes``) before training,
in its own data root, so no cache of another drawing is read. Usage::

    nice -n 19 .venv/bin/python benchmarks/shapes_variants.py [--epochs 3] [--variants v4,any-hue,...]

Variants: ``v4`` (the dataset as shipped), ``any-rotation``, ``any-hue`` (foreground hue anywhere on
the wheel), ``any-hue-any-rotation``, and ``nojitter`` (v4 trained without colour jitter). Prints one
JSON line per variant: kNN (k=20, cosine) on ``shapes:test`` with ``shapes:train`` as the bank.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("v4", "any-rotation", "any-hue", "any-hue-any-rotation", "nojitter")


def _redraw(variant: str) -> None:
    """Swap the drawing's sampler for one that changes the named scene parameters."""
    import torch

    from simclr_core.data import shapes

    original = shapes.sample_params

    def sample(split: str, n: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
        p = original(split, n, seed)
        g = torch.Generator().manual_seed(shapes._split_seed(f"variant|{split}", seed))
        total = p["label"].numel()
        if "any-rotation" in variant:
            p["angle"] = 2 * math.pi * torch.rand(total, generator=g)
        if "any-hue" in variant:
            fg_h = torch.rand(total, generator=g)
            bg_h = torch.remainder(fg_h + 0.2 + 0.6 * torch.rand(total, generator=g), 1.0)
            p["fg"] = shapes._hsv_to_rgb(
                fg_h, 0.45 + 0.55 * torch.rand(total, generator=g), 0.45 + 0.55 * torch.rand(total, generator=g)
            )
            p["bg"] = shapes._hsv_to_rgb(
                bg_h, 0.15 + 0.85 * torch.rand(total, generator=g), 0.1 + 0.85 * torch.rand(total, generator=g)
            )
        return p

    shapes.sample_params = sample


def run(variant: str, epochs: int, workdir: Path) -> dict[str, object]:
    root = workdir / variant
    os.environ["SIMCLR_STUDIO_DATA"] = str(root)
    _redraw(variant)
    from simclr_core.config import fast_recipe
    from simclr_core.features import features_for
    from simclr_core.knn import knn_accuracy
    from simclr_core.train import train

    cfg = fast_recipe("shapes:unlabeled", max_minutes=None)
    cfg.epochs = epochs
    if variant == "nojitter":
        cfg.aug.jitter_p = 0.0
    t0 = time.time()
    result = train(cfg, runs_root=root / "runs", name=variant)
    ckpt = Path(result.path) / "checkpoints" / "last.ckpt"
    bank, queries = features_for(ckpt, "shapes:train"), features_for(ckpt, "shapes:test")
    acc = knn_accuracy(bank.feats, bank.labels, queries.feats, queries.labels)
    return {"variant": variant, "epochs": epochs, "knn": round(acc, 4), "seconds": round(time.time() - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one variant, one drawing
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(args.one, args.epochs, Path(os.environ["SHAPES_VARIANTS_DIR"]))), flush=True)
        return
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                sys.exit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
            env = dict(os.environ, SHAPES_VARIANTS_DIR=tmp, PYTHONWARNINGS="ignore")
            cmd = [sys.executable, __file__, "--one", variant, "--epochs", str(args.epochs)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = out.stdout.strip().splitlines()
            print(lines[-1] if out.returncode == 0 and lines else f"{variant}: failed\n{out.stderr[-800:]}", flush=True)


if __name__ == "__main__":
    main()
