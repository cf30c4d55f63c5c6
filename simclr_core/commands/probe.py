"""``probe``: linear-probe accuracy against labelled images per class, with baselines.

    python -m simclr_core probe (--checkpoint CKPT | --run RUN_DIR | --random-init)
        --train-data SPEC --test-data SPEC --sizes 10,20,50,100,200,500 --repeats 3
        [--features h|z] [--subset random|first] [--val-fraction F]
        [--baseline supervised --max-minutes M] [--runs-dir runs] --json

With ``--run`` the data default to the labelled train/test splits of the source the run was
trained on, and the result is also written to ``<run>/probe.json`` (likewise for a checkpoint
inside a run directory), so the dashboard shows it without recomputing.

``--json`` prints one JSON object:

- ``source``: ``{"kind": "checkpoint", "checkpoint", "mtime_ns", "size", "run", "format", "epoch",
  "global_step"}`` or ``{"kind": "random_init", "backbone", "small_input", "image_size", "hidden_dim", "seed"}``
- ``features`` ("h" backbone or "z" projection), ``train_data``, ``test_data``, ``image_size``,
  ``n_train``, ``n_test``, ``feature_dim``, ``classes``
- ``sizes`` (images per class actually used), ``requested_sizes``, ``max_per_class`` (what the
  smallest class holds after the validation split), ``capped`` (a requested size was larger)
- ``repeats``, ``subset`` ("random" class-balanced or the seed's "first" k per class), ``seed``
- ``selection``: "fixed_epochs" (all epochs, no model selection) or "val_acc" (best epoch on
  ``val_size`` held-out training images); ``probe``: the optimiser settings; ``knn_k``
- ``table``: one row per size: ``probe_test_acc_mean/_std``, ``probe_train_acc_mean/_std``,
  ``knn_acc_mean/_std`` and the random-init encoder's ``random_probe_test_acc_mean/_std``,
  ``random_probe_train_acc_*``, ``random_knn_acc_*`` (accuracies are fractions in [0, 1])
- ``encoder`` / ``random_init``: the full sweeps: ``rows`` (size, repeat, n_train, train_acc,
  test_acc[, val_acc, best_epoch][, knn_acc]) and ``summary`` (mean/std per size)
- ``supervised``: null, or ``{"run": run dir, "results": [{size, n_train, epochs, planned_epochs,
  stopped_early, minutes, train_acc, test_acc}], "max_minutes"}`` for ``--baseline supervised``
- ``timing_s`` (features, probe, total seconds), ``created_at`` (Unix seconds)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return sizes


def add_source_args(p: argparse.ArgumentParser, random_init: bool = True) -> None:
    """--checkpoint | --run [| --random-init] and the architecture flags random init needs."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a .ckpt file (this project's or the tutorial's SimCLR.ckpt)")
    src.add_argument("--run", help="a run directory; uses its last.ckpt (see --which)")
    if random_init:
        src.add_argument("--random-init", action="store_true", help="a randomly initialised encoder (baseline)")
    p.add_argument("--which", choices=("last", "best"), default="last", help="checkpoint of --run (default last)")
    p.add_argument(
        "--features",
        choices=("h", "z"),
        default="h",
        help="h: backbone output (default, as the seed); z: projection head output",
    )
    p.add_argument("--image-size", type=int, help="encode at this side (default: the checkpoint's)")
    p.add_argument("--backbone", default="resnet18", help="architecture for --random-init")
    p.add_argument("--small-input", action="store_true", help="3x3 stem for 32 px inputs (--random-init)")
    p.add_argument("--init-seed", type=int, default=0, help="weights seed for --random-init")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: GPU when present)")


def source_from_args(args: argparse.Namespace) -> tuple[Any, Path | None]:
    from simclr_core.features import RandomInit, resolve_source

    rand = None
    if getattr(args, "random_init", False):
        rand = RandomInit(args.backbone, bool(args.small_input), int(args.image_size or 96), seed=args.init_seed)
    return resolve_source(args.checkpoint, args.run, rand, args.which)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "probe",
        help="linear probe vs labelled images per class, with baselines",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("``--json`` prints") :].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_args(p)
    p.add_argument(
        "--train-data", help="labelled spec the subsets come from (default with --run: its source's train split)"
    )
    p.add_argument("--test-data", help="labelled spec for test accuracy (default with --run: its source's test split)")
    p.add_argument(
        "--sizes", type=_sizes, default=[10, 20, 50, 100, 200, 500], help="images per class (comma-separated)"
    )
    p.add_argument("--repeats", type=int, default=3, help="random subsets per size (mean and std)")
    p.add_argument(
        "--subset",
        choices=("random", "first"),
        default="random",
        help="random class-balanced subsets, or the seed's deterministic first k per class",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="hold out this fraction of each training class to pick the best epoch (0: fixed 100 epochs)",
    )
    p.add_argument("--epochs", type=int, default=100, help="probe epochs (the seed: 100)")
    p.add_argument("--seed", type=int, default=0, help="subset and probe seed")
    p.add_argument("--knn-k", type=int, default=20, help="k of the cosine kNN baseline (0: skip it)")
    p.add_argument("--no-random-baseline", action="store_true", help="skip the random-init encoder baseline")
    p.add_argument("--baseline", choices=("supervised",), help="also train the seed's supervised ResNet on a subset")
    p.add_argument("--baseline-sizes", type=_sizes, help="sizes for --baseline supervised (default: the largest)")
    p.add_argument("--max-minutes", type=float, default=10.0, help="time budget of --baseline supervised")
    p.add_argument("--runs-dir", default="runs", help="where --baseline supervised writes its run directory")
    p.add_argument("--json", action="store_true", help="print one JSON object (its fields are listed below)")
    p.set_defaults(func=run)
    return p


def _print_table(report: dict[str, Any]) -> None:
    cols = [
        ("probe_test_acc", "probe"),
        ("knn_acc", "kNN"),
        ("random_probe_test_acc", "random probe"),
        ("random_knn_acc", "random kNN"),
    ]
    cols = [(k, n) for k, n in cols if any(f"{k}_mean" in r for r in report["table"])]
    print(f"{'per class':>9}  " + "  ".join(f"{n:>15}" for _, n in cols))
    for row in report["table"]:
        cells = [
            f"{100 * row[f'{k}_mean']:6.2f} ± {100 * row[f'{k}_std']:5.2f}" if f"{k}_mean" in row else " " * 15
            for k, _ in cols
        ]
        print(f"{row['size']:>9}  " + "  ".join(cells))
    for s in (report.get("supervised") or {}).get("results", []):
        print(
            f"supervised {s['size']}/class: test {100 * s['test_acc']:.2f}% (train {100 * s['train_acc']:.2f}%, "
            f"{s['epochs']} epochs in {s['minutes']:.1f} min)"
        )
    if report["capped"]:
        print(f"note: sizes capped at {report['max_per_class']} images per class (what the split holds)")


def run(args: argparse.Namespace) -> int:
    from simclr_core.cli_progress import Bars
    from simclr_core.probe import ProbeConfig
    from simclr_core.probe_run import Baseline, ProbeStage, run_probe

    source, run_dir = source_from_args(args)
    bars = Bars()  # downloads, decoding, encoding and probing as tqdm bars on stderr (stdout keeps --json clean)

    def say(msg: str) -> None:
        bars.write(f"[{time.strftime('%H:%M:%S')}] {msg}")

    def stage(s: ProbeStage) -> None:
        bars.close()
        say(s.label + (f" (budget {args.max_minutes} min; Ctrl-C ends it early)" if s is ProbeStage.SUPERVISED else ""))

    baseline = None
    if args.baseline == "supervised":
        sizes = tuple(args.baseline_sizes) if args.baseline_sizes else None
        baseline = Baseline(Path(args.runs_dir), args.max_minutes, sizes)
    report = run_probe(
        source,
        run_dir,
        args.train_data,
        args.test_data,
        sizes=args.sizes,
        repeats=args.repeats,
        which=args.features,
        subset=args.subset,
        val_fraction=args.val_fraction,
        seed=args.seed,
        knn_k=args.knn_k or None,
        random_baseline=not args.no_random_baseline,
        image_size=args.image_size,
        device=args.device,
        cfg=ProbeConfig(epochs=args.epochs),
        baseline=baseline,
        progress=stage,
        steps=bars,
    )
    bars.close()
    if run_dir is not None:
        say(f"wrote {run_dir / 'probe.json'}")
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0
