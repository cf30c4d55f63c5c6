"""How long the Augment page's difficulty meter takes after a slider moves: augment + encode + InfoNCE.

What a rerun of the page computes once the encoder and the fixed batch are cached: two views of each
image of the fixed batch (shapes:train at 32 px), the encoder's forward pass and the loss. Each repeat
moves the brightness slider (a new configuration, as a user would), after warm-up (numba kernel loaded,
first forward done). Usage: ``nice -n 19 .venv/bin/python benchmarks/difficulty_meter.py [--repeats N]``;
prints one row per (encoder, batch): median and worst wall seconds, and the median CPU seconds of the
process (all threads: on a shared host wall time counts the waits for other processes, CPU time does not;
on an idle 2-core host wall is about CPU / 2). The goal: under 1 s at batch 256.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (backbone, small_input): the fast recipe's ResNet-10 with the standard stem; the seed's ResNet-18 (both stems)
ENCODERS = [("resnet10", False), ("resnet18", False), ("resnet18", True)]
BATCHES = [64, 128, 256]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from simclr_core.config import augmentation_preset
    from simclr_core.data import load_dataset
    from simclr_core.difficulty import batch_indices, load_encoder, measure
    from simclr_core.features import RandomInit

    data = load_dataset("shapes:train", image_size=args.size)
    base = augmentation_preset("tutorial", args.size)
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'encoder':<24} {'batch':>5} {'median s':>9} {'worst s':>8} {'CPU s':>7}")
    for backbone, small in ENCODERS:
        encoder = load_encoder(RandomInit(backbone, small, args.size))
        for batch in BATCHES:
            images = data.images[torch.from_numpy(batch_indices(len(data), [], batch))].contiguous()
            measure(encoder, images, base, seed=0)  # warm-up
            times, cpu = [], []
            for i in range(args.repeats):
                cfg = replace(base, jitter_brightness=0.3 + 0.05 * i)  # the slider moved
                start, start_cpu = time.perf_counter(), time.process_time()
                measure(encoder, images, cfg, seed=0)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            name = f"{backbone}{' small-input' if small else ''}"
            wall, worst, used = statistics.median(times), max(times), statistics.median(cpu)
            print(f"{name:<24} {batch:>5} {wall:>9.3f} {worst:>8.3f} {used:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
