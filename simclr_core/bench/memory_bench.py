"""Figure 5: peak memory of a training run, and how step time and memory grow with batch and image size.

Each cell is a short run of the product's ``train.train`` (bf16 fast path) in a fresh process:
peak RSS of that process minus an idle process with the same imports (the engine's import
alone maps ~1 GiB of libraries); on CUDA, ``torch.cuda.max_memory_allocated`` as well.
"""

from __future__ import annotations

from simclr_core.bench.core import Options, Section, fmt, run_worker


def run(opts: Options) -> Section:
    if opts.quick:
        grid = [(32, 8), (32, 16)]
        warmup, steps = 1, 1
    else:
        grid = [(96, 64), (96, 128), (96, 256), (64, 256), (128, 128)]
        warmup, steps = 1, 2
    section = Section(
        "memory",
        "5. Peak memory and growth with batch and image size (bf16 fast path)",
        ["image size", "batch", "s/step", "views/s", "peak RSS MiB", "over idle MiB"],
    )
    idle = run_worker("train", idle=True)["peak_rss_mib"]
    over_by_cell: dict[tuple[int, int], float] = {}
    for res, batch in grid:
        out = run_worker(
            "train",
            image_size=res,
            batch=batch,
            warmup=warmup,
            steps=steps,
            precision="bf16-mixed",
            device=opts.device,
            timeout=1800,
        )
        over = out["peak_rss_mib"] - idle
        over_by_cell[(res, batch)] = over
        row = [
            str(res),
            str(batch),
            fmt(out["step_s_median"]),
            fmt(out["views_per_s"]),
            fmt(out["peak_rss_mib"]),
            fmt(over),
        ]
        if "cuda_peak_mib" in out:
            row[4] += f" (CUDA {fmt(out['cuda_peak_mib'])})"
        section.rows.append(row)
    section.notes.append(
        f"Each row: {warmup} warm-up + {steps} timed step(s) of `train.train` on shapes; idle process with the "
        f"engine imported: {fmt(idle)} MiB. The excess holds weights, gradients and AdamW state (~180 MiB for "
        "ResNet-18), the dataset, and the activations kept for backward, which grow with views x pixels."
    )
    for res in sorted({r for r, _ in grid}):
        cells = sorted((b, m) for (r, b), m in over_by_cell.items() if r == res)
        if len(cells) >= 2:
            (b0, m0), (b1, m1) = cells[0], cells[-1]
            section.notes.append(
                f"At {res}x{res}: {fmt((m1 - m0) / (2 * (b1 - b0)))} MiB per extra view (batch {b0} -> {b1})."
            )
    return section
