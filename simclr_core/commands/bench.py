"""``python -m simclr_core bench [WHAT ...] [--quick] [--out BENCHMARKS.md]``: side-by-side benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from simclr_core.config import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from simclr_core.bench import EXTRA, SECTIONS

    p = sub.add_parser(
        "bench",
        help="measure this project against the tutorial's recipe, side by side",
        description="Each figure is measured next to its reference (../shared/bench/tutorial_reference.py) in the "
        "same run: a median over repeats after a warm-up, printed as markdown tables with the ratio.",
    )
    p.add_argument(
        "what",
        nargs="*",
        metavar="WHAT",
        help=f"sections to run: {', '.join(SECTIONS)} (default: all) or {', '.join(EXTRA)} "
        "(torch.profiler tables of the training step, on request only)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite runs, the figures mean nothing")
    p.add_argument("--out", metavar="FILE", help="write the tables to FILE (e.g. BENCHMARKS.md), keeping its notes")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (medians are reported)")
    p.add_argument("--no-reference", action="store_true", help="skip the tutorial reference columns")
    p.add_argument(
        "--cells",
        default="",
        metavar="DATA:VARIANT:MIN,...",
        help="quality only: the cells to train and score, e.g. cifar10:fast:20,shapes:fast-nojitter:5 "
        "(default all: cifar10 and shapes x tutorial, fast (, fast-nojitter) x 5 (, 20) minutes); "
        "the other cells keep their last result",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from simclr_core.bench import EXTRA, SECTIONS, Options, machine, report, run_suite

    what = args.what or list(SECTIONS)
    unknown = sorted(set(what) - set(SECTIONS) - set(EXTRA))
    if unknown:
        raise ConfigError(
            f"unknown bench section(s) {', '.join(unknown)}; choose from {', '.join([*SECTIONS, *EXTRA])}"
        )
    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    opts = Options(
        quick=args.quick, device=args.device, reference=not args.no_reference, repeats=args.repeats, cells=args.cells
    )
    info = machine.describe(opts.torch_device)
    sections = run_suite(what, opts)
    targets = [c for s in sections for c in s.checks]
    if targets:
        print(report.render_checks(targets))
    if args.out:
        # The GPU block describes its own machine: measured alone, it keeps the header's (CPU) machine table.
        report.write(Path(args.out), sections, None if set(what) <= {"gpu"} else info, [*SECTIONS, *EXTRA], args.quick)
        print(f"wrote {args.out}")
    return 0
