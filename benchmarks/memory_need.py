"""Measured peak memory of real ``train`` runs against ``simclr_core.memory.need`` (fits its two constants).

Each configuration is a fresh ``python -m simclr_core train`` of 2 optimiser steps on shapes; its peak
RSS (``os.wait4``'s ru_maxrss) minus that of an idle process that imported the same modules is the
measured need. Usage: ``nice -n 19 .venv/bin/python benchmarks/memory_need.py [--quick]``; prints one
row per configuration and the ratio estimate / measured (goal: at least 1, and not far above it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (backbone, small_input, image size, batch, views, precision)
GRID = [
    ("resnet18", False, 32, 256, 2, "32"),
    ("resnet18", False, 64, 128, 2, "32"),
    ("resnet18", True, 32, 128, 2, "32"),
    ("resnet10", False, 96, 64, 4, "bf16-mixed"),
    ("resnet50", False, 64, 32, 2, "32"),
    ("resnet18", False, 128, 64, 2, "32"),
    ("resnet18", False, 32, 1024, 2, "32"),
]
QUICK = GRID[:3]


def peak_rss(cmd: list[str], env: dict[str, str]) -> int:
    """Peak resident bytes of the command's process (Linux reports ru_maxrss in KiB)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}")
    return usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three configurations only")
    args = parser.parse_args()
    from simclr_core.config import TrainConfig
    from simclr_core.memory import GiB, need

    work = Path(tempfile.mkdtemp(prefix="memory-need-"))
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(work / "data"), "SIMCLR_STUDIO_MEMORY_CHECK": "off"}
    idle = peak_rss([sys.executable, "-c", "import simclr_core.__main__, simclr_core.train"], env)
    print(f"idle process with the engine imported: {idle / 2**20:.0f} MiB")
    print("backbone  stem   px  batch views precision | measured MiB  estimate MiB  ratio")
    for backbone, small, size, batch, views, precision in GRID if not args.quick else QUICK:
        spec = f"shapes:train?n={-(-2 * batch // 10)}"
        flags = ["--data", spec, "--val-data", spec, "--val-limit", "20", "--image-size", str(size)]
        flags += ["--batch-size", str(batch), "--n-views", str(views), "--backbone", backbone, "--epochs", "1"]
        flags += ["--limit-images", str(2 * batch), "--precision", precision, "--snapshots", "0", "--no-progress"]
        flags += ["--small-input" if small else "--no-small-input", "--runs-dir", str(work / "runs")]
        cmd = [sys.executable, "-m", "simclr_core", "train", *flags]
        measured = peak_rss(cmd, env) - idle
        cfg = replace(TrainConfig(), backbone=backbone, small_input=small, image_size=size, batch_size=batch)
        cfg = replace(cfg, n_views=views)
        data = (2 * batch + 20) * 3 * size * size  # the images trained on and the validation copy
        estimate = need(cfg, precision, data_bytes=data).host
        stem = "small" if small else "std"
        print(
            f"{backbone:9} {stem:5} {size:4} {batch:6} {views:5} {precision:10}| {measured / 2**20:12.0f} "
            f"{estimate / 2**20:13.0f} {estimate / measured:6.2f}",
            flush=True,
        )
    print(f"(estimates in GiB: divide by {GiB // 2**20})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
