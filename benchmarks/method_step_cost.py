"""CPU cost of one training step per method: the fast recipe's step (views, f, g, the method's loss, backward, AdamW).

Measured as process CPU seconds per step (all threads), which a machine shared with other work distorts far
less than wall-clock time; on a quiet machine with C cores, steps/s is about C / (CPU s per step) times the
thread efficiency, and the ratio between methods carries over. Rounds interleave the methods (one step of each
per round after warm-up), so load changes hit them alike. Usage:
``nice -n 19 .venv/bin/python benchmarks/method_step_cost.py [--rounds N] [--threads T]``; prints one row per
method: median CPU s and wall s per step, and the CPU cost relative to simclr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from simclr_core.config import METHODS, fast_recipe
    from simclr_core.module import SimCLRModule

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = fast_recipe("cifar10")
    images = torch.randint(0, 256, (cfg.batch_size, 3, 32, 32), dtype=torch.uint8)  # cost does not see pixels
    labels = torch.arange(cfg.batch_size) % 10
    steps = {}
    for name in METHODS:
        cfg.method = name
        module = SimCLRModule(cfg)
        opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=cfg.lr, fused=True)
        gen = torch.Generator().manual_seed(1)

        def step(module=module, opt=opt, gen=gen) -> None:
            views = module._views(images, gen)
            _, z = module.net(views)
            loss, _ = module.objective(z, views, labels, cfg.n_views, cfg.temperature)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            module.objective.after_step(module.net, 0.5)

        steps[name] = step
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    wall: dict[str, list[float]] = {m: [] for m in METHODS}
    for rnd in range(args.rounds + 1):
        for name, step in steps.items():
            c0, w0 = time.process_time(), time.perf_counter()
            step()
            if rnd:  # round 0 warms up (numba kernel, first allocations)
                cpu[name].append(time.process_time() - c0)
                wall[name].append(time.perf_counter() - w0)
    base = statistics.median(cpu["simclr"])
    print(
        f"fast recipe: {cfg.backbone}, {cfg.n_views} views x {cfg.batch_size} images at 32 px, {args.threads} threads"
    )
    print("method       CPU s/step  wall s/step  CPU vs simclr")
    for name in METHODS:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:<12} {c:10.3f}  {w:11.3f}  {c / base:13.2f}")


if __name__ == "__main__":
    main()
