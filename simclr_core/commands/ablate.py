"""``python -m simclr_core ablate``: the SimCLR paper's Figure 5 on your data, one budget-fitted run per cell.

Queues the reference (no augmentation), each operation alone and each pair, with the fast recipe,
the same seed and ``--minutes-per-run`` each, in the runs folder's queue (a dashboard on the same
folder shows the heatmap filling), runs the queue here until they have ended (or waits while
another executor runs it), scores each cell with the kNN of ``bench quality`` and writes the matrix.
Ctrl-C stops the running cell and cancels the waiting ones; the matrix so far is still written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

from simclr_core.commands import spec_help
from simclr_core.config import METHODS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ablate",
        help="augmentation ablation: each operation alone and in pairs, kNN of each (the SimCLR paper's Figure 5)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--data", required=True, metavar="SPEC", help=spec_help("none: required"))
    p.add_argument(
        "--ops",
        default="crop,color,blur",
        help="2 to 5 of crop (random resized crop), color (colour jitter), gray (grayscale), blur, flip (default crop,color,blur)",
    )
    p.add_argument(
        "--minutes-per-run", type=float, default=1.0, metavar="M", help="time budget of each cell (default 1)"
    )
    p.add_argument("--out", default=None, metavar="FILE.json", help="where the matrix goes (default: printed only)")
    p.add_argument(
        "--runs-dir", default="runs", metavar="DIR", help="where the cells' runs and the queue are (default ./runs)"
    )
    p.add_argument(
        "--method",
        default="simclr",
        choices=METHODS,
        help="objective every cell trains (default simclr; supcon needs labelled training data)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of every cell (default: the fast recipe's, 42)")
    p.add_argument(
        "--bank-data", default=None, metavar="SPEC", help="labelled kNN bank (default: the source's train split)"
    )
    p.add_argument(
        "--eval-data",
        default=None,
        metavar="SPEC",
        help="labelled held-out split scored (default: shapes:test for shapes, '?split=test' carved from a folder or "
        "archive; never a benchmark's test set)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="B", help="override the fast recipe's batch (tiny data)"
    )
    p.add_argument("--image-size", type=int, default=None, metavar="R", help="override the fast recipe's 32 px")
    p.add_argument(
        "--val-limit",
        type=int,
        default=None,
        metavar="N",
        help="labelled images for the live kNN monitor (default 1000; the cell is scored by the full kNN after it)",
    )
    p.add_argument(
        "--no-wait", action="store_true", help="only queue the cells (a dashboard or `queue run` executes them)"
    )
    p.set_defaults(func=run)
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("batch_size", "image_size", "val_limit")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def run(args: argparse.Namespace) -> int:
    from simclr_core import ablation
    from simclr_core.commands.queue import execute
    from simclr_core.run_queue import ENDED, QueueError, RunQueue

    plan = ablation.queue_ablation(
        args.runs_dir,
        args.data,
        args.ops,
        args.minutes_per_run,
        seed=args.seed,
        bank=args.bank_data,
        scored=args.eval_data,
        overrides=_overrides(args),
        method=args.method,
    )
    ids = {c["entry"] for c in plan["cells"]}
    print(
        f"ablation {plan['id']}: {len(ids)} {ablation.method_label(args.method)} runs queued in {args.runs_dir} "
        f"({args.minutes_per_run:g} min each)",
        flush=True,
    )
    status = 0
    if not args.no_wait:
        queue = RunQueue(args.runs_dir)

        def done() -> bool:
            return all(e.state in ENDED for e in queue.entries() if e.id in ids)

        status = execute(args.runs_dir, until=done)
        for entry in queue.entries():
            if entry.id in ids and entry.state == "queued":
                with contextlib.suppress(QueueError):
                    queue.cancel(entry.id)
    result = ablation.matrix(args.runs_dir, plan)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"matrix written to {args.out}")
    print(ablation.table(result))
    if status == 0 and not args.no_wait and any(c["knn_acc"] is None for c in result["cells"]):
        status = 1
    return status
