"""Fresh-process entry point: ``python -m simclr_core.bench.worker KIND '{"param": ...}'``.

Runs one measurement function of a section module and prints its result as one JSON line.
A fresh interpreter per measurement makes peak RSS (ru_maxrss) and cold-start times mean
what they say: nothing allocated, cached or compiled by an earlier measurement is reused.
Each worker measures under the settings the CLI and the dashboard run with
(``configure_process``); its OMP_WAIT_POLICY comes from the parent's environment, since
``python -m`` has loaded torch (through ``simclr_core.bench``) before ``main`` runs.
"""

from __future__ import annotations

import importlib
import json
import sys

from simclr_core.process import configure_process

KINDS = {
    "idle": "simclr_core.bench.core:idle_process",
    "loss": "simclr_core.bench.loss_bench:measure",
    "augment": "simclr_core.bench.augment_bench:measure",
    "augment_reference": "simclr_core.bench.augment_bench:measure_reference",
    "train": "simclr_core.bench.train_bench:measure",
    "quality": "simclr_core.bench.train_bench:measure_quality",
    "preview": "simclr_core.bench.dashboard_bench:measure_preview",
    "projection": "simclr_core.bench.dashboard_bench:measure_projection",
    "probe": "simclr_core.bench.dashboard_bench:measure_probe",
    "first_point": "simclr_core.bench.dashboard_bench:measure_first_point",
    "profile": "simclr_core.bench.profile_bench:measure",
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        print(f"usage: python -m simclr_core.bench.worker {{{','.join(KINDS)}}} JSON_PARAMS", file=sys.stderr)
        return 2
    configure_process()
    module_name, func_name = KINDS[argv[0]].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(**json.loads(argv[1]))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
