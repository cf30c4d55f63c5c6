"""Side-by-side benchmarks of this project against the tutorial's recipe (BENCHMARKS.md).

``run_suite(["loss", ...], Options(...))`` measures each section against its reference in
the same run on the same machine and returns the sections; ``report.render`` turns them into
the markdown of BENCHMARKS.md. ``python -m simclr_core bench`` is the command-line client.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from simclr_core.bench.core import BenchError, Check, Options, Section, reference_path

# Section name -> module whose ``run(opts) -> Section`` measures it, in report order.
SECTIONS = {
    "train": "simclr_core.bench.train_bench",
    "loss": "simclr_core.bench.loss_bench",
    "augment": "simclr_core.bench.augment_bench",
    "dashboard": "simclr_core.bench.dashboard_bench",
    "memory": "simclr_core.bench.memory_bench",
}
EXTRA = {  # on request only: notes, not figures (profile); a CUDA machine (gpu, see benchmarks/gpu_check.sh)
    "profile": "simclr_core.bench.profile_bench",
    "gpu": "simclr_core.bench.gpu_bench",
    "quality": "simclr_core.bench.quality_bench",  # trains for real: about an hour for every cell
}

__all__ = ["SECTIONS", "EXTRA", "BenchError", "Check", "Options", "Section", "run_suite"]


def run_suite(what: list[str], opts: Options, echo: Callable[[str], None] = print) -> list[Section]:
    """Run the named sections in report order; a section that fails becomes a section saying why."""
    from simclr_core.bench.report import render_section

    if opts.reference and reference_path() is None:
        echo("note: ../shared/bench/tutorial_reference.py is absent: the reference columns are skipped")
        opts.reference = False
    sections = []
    for name in [n for n in (*SECTIONS, *EXTRA) if n in what]:
        echo(f"== {name} ...")
        t0 = time.perf_counter()
        module = importlib.import_module({**SECTIONS, **EXTRA}[name])
        try:
            section = module.run(opts)
        except BenchError as err:
            section = Section(name, name, [], notes=[f"not measured: {err}"])
        section.seconds = time.perf_counter() - t0
        sections.append(section)
        echo(render_section(section, opts.quick))
    return sections
