"""``python -m simclr_core train``: SimCLR pretraining into a run directory (resumable, stoppable with Ctrl-C)."""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace
from typing import Any

from simclr_core.config import BACKBONES, MONITORS, PRECISIONS, RECIPES, TrainConfig, load_augmentation, recipe_config

_DEFAULTS = TrainConfig()

_DATA_HELP = (
    "training images: 'shapes[:unlabeled|train|test][?n=N&seed=S]' (built in, offline), "
    "'stl10[:unlabeled|train|train+unlabeled]', 'cifar10[:train|test]', or an image folder / .zip / .tar.gz "
    f"(default: {_DEFAULTS.data})"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="SimCLR pretraining into a run directory (metrics, checkpoints, status), resumable",
        description=(
            "Contrastive pretraining as in the UvA tutorial 17 (ResNet encoder + MLP head, InfoNCE, AdamW with "
            "cosine annealing to lr/50). Writes <runs-dir>/<name>-<time>/ with config.json, metrics.jsonl, "
            "status.json, checkpoints/last.ckpt (every epoch and on stop) and best.ckpt. Ctrl-C stops cleanly "
            "after the current step; --resume continues a stopped or interrupted run."
        ),
    )
    p.add_argument(
        "--recipe",
        default="tutorial",
        choices=RECIPES,
        help="starting settings; every flag given explicitly overrides them. tutorial (default): the seed's exact "
        "recipe (96 px, batch 256, lr 5e-4, temperature 0.07, 500 epochs). fast: what learns most per minute on "
        "this machine (measured: 32 px, standard stem, batch 256, lr 2e-3, temperature 0.2, crops of 20-100 %%, "
        "the cosine fitted to the time budget; --max-minutes defaults to 5). On a CUDA device fast uses the "
        "small-input stem and batch 512 (not yet measured on a GPU).",
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", default=None, metavar="SPEC", help=_DATA_HELP)
    d.add_argument(
        "--val-data",
        default=None,
        metavar="SPEC",
        help="labelled images for the per-epoch val_* metrics and the kNN monitor "
        "(default: the labelled train split of --data, e.g. shapes:train; never the test split)",
    )
    d.add_argument(
        "--val-limit",
        type=int,
        default=None,
        metavar="N",
        help="use a class-balanced subset of N validation images (faster epochs on CPU)",
    )
    d.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="R",
        help=f"image side for decoding and views (default {_DEFAULTS.image_size}; 32 with --recipe fast)",
    )
    d.add_argument("--limit-images", type=int, default=None, metavar="N", help="train on the first N images only")
    d.add_argument(
        "--aug",
        default=None,
        metavar="PRESET|FILE.json",
        help="augmentation preset (tutorial, simclr, baseline, none) or a JSON file saved by the dashboard "
        "(default: the recipe's: tutorial's preset, or fast's crops of 20-100 %% without blur)",
    )
    m = p.add_argument_group("model and optimisation")
    m.add_argument("--backbone", default=None, choices=BACKBONES, help=f"encoder f (default {_DEFAULTS.backbone})")
    m.add_argument(
        "--small-input",
        action="store_true",
        default=None,
        help="3x3 stride-1 first conv and no max-pool: for 32x32 images",
    )
    m.add_argument("--hidden-dim", type=int, default=None, help=f"projection size (default {_DEFAULTS.hidden_dim})")
    m.add_argument(
        "--epochs", type=int, default=None, help=f"epochs (default {_DEFAULTS.epochs}); with --resume, a new total"
    )
    m.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="wall-clock budget: the run ends cleanly as finished when it is used up",
    )
    m.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="B",
        help=f"images per step over ALL devices (default {_DEFAULTS.batch_size}); each gives --n-views views",
    )
    m.add_argument("--lr", type=float, default=None, help=f"AdamW learning rate (default {_DEFAULTS.lr})")
    m.add_argument("--scale-lr", action="store_true", default=None, help="multiply lr by batch_size/256")
    m.add_argument("--warmup-epochs", type=float, default=None, help="linear lr warm-up before the cosine (default 0)")
    m.add_argument(
        "--temperature", type=float, default=None, help=f"InfoNCE temperature (default {_DEFAULTS.temperature})"
    )
    m.add_argument(
        "--weight-decay", type=float, default=None, help=f"AdamW weight decay (default {_DEFAULTS.weight_decay})"
    )
    m.add_argument("--n-views", type=int, default=None, help="augmented views per image (default 2)")
    m.add_argument(
        "--monitor", default=None, choices=MONITORS, help="metric that picks best.ckpt (default val_acc_top5)"
    )
    m.add_argument(
        "--monitor-share",
        type=float,
        default=None,
        metavar="F",
        help="most of the training time the per-epoch validation (kNN monitor) may take; epochs in between skip "
        f"it, the first and last always run (default {_DEFAULTS.monitor_share}; 1 validates every epoch)",
    )
    m.add_argument("--seed", type=int, default=None, help=f"random seed (default {_DEFAULTS.seed})")
    h = p.add_argument_group("hardware")
    h.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="auto: bf16-mixed where the device has fast bf16, else 32 (default auto)",
    )
    h.add_argument("--device", default=None, help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    h.add_argument("--devices", type=int, default=None, help="processes per node for DDP (default 1)")
    h.add_argument("--num-nodes", type=int, default=None, help="nodes for DDP (default 1)")
    h.add_argument("--strategy", default=None, help="Lightning strategy, e.g. ddp (default auto)")
    r = p.add_argument_group("run")
    r.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run directories go (default ./runs)")
    r.add_argument("--name", default=None, help="run name (the directory is <name>-<date>-<time>-<random>)")
    r.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a stopped/interrupted run from its last.ckpt (its config is reused; "
        "--epochs and --max-minutes may be changed)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run)
    return p


_FIELDS = (
    "data",
    "val_data",
    "val_limit",
    "image_size",
    "limit_images",
    "backbone",
    "small_input",
    "hidden_dim",
    "epochs",
    "max_minutes",
    "batch_size",
    "lr",
    "scale_lr",
    "warmup_epochs",
    "temperature",
    "weight_decay",
    "n_views",
    "monitor",
    "monitor_share",
    "seed",
    "precision",
    "device",
    "devices",
    "num_nodes",
    "strategy",
)
_RESUME_FIELDS = ("epochs", "max_minutes")


def _wants_gpu(device: str | None) -> bool:
    import torch

    return (device or "auto") != "cpu" and torch.cuda.is_available()


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from the recipe, then every flag given explicitly on top of it."""
    values: dict[str, Any] = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    config = replace(recipe_config(args.recipe, gpu=_wants_gpu(args.device)), **values)
    if args.aug is not None:
        config.aug = load_augmentation(args.aug, crop_size=config.image_size)
    else:
        config.aug = replace(config.aug, crop_size=config.image_size)
    return config.validate()


def run(args: argparse.Namespace) -> int:
    from simclr_core.config import ConfigError
    from simclr_core.distributed import env_global_rank
    from simclr_core.train import install_stop_signals, train

    if args.resume:
        given = [k for k in _FIELDS if getattr(args, k) is not None and k not in _RESUME_FIELDS]
        given += ["aug"] * (args.aug is not None) + ["recipe"] * (args.recipe != "tutorial")
        if given:
            raise ConfigError(
                f"--resume reuses the run's settings; only --epochs/--max-minutes may change "
                f"(got {', '.join('--' + k.replace('_', '-') for k in given)})"
            )
        config = None
        overrides = {k: getattr(args, k) for k in _RESUME_FIELDS if getattr(args, k) is not None}
    else:
        config, overrides = config_from_args(args), None

    stop = threading.Event()
    install_stop_signals(stop)

    def announce(run_, prepared: Any) -> None:
        print(f"run directory: {run_.path}", flush=True)
        print(
            f"data {prepared.config.data}: {len(prepared.train_images)} images, validation {prepared.val_spec}; "
            f"{prepared.accelerator} x{prepared.world}, precision {prepared.precision}; batch "
            f"{prepared.config.batch_size} global = {prepared.per_device_batch} per device",
            flush=True,
        )

    result = train(
        config,
        args.runs_dir,
        name=args.name,
        resume=args.resume,
        stop_event=stop,
        overrides=overrides,
        progress_bar=not args.no_progress,
        on_start=announce,
    )
    if result is None or env_global_rank() > 0:
        return 0  # a DDP rank other than 0: rank 0 reports
    status = result.status()
    print(f"{status.get('state')}: {status.get('message')}")
    print(f"run directory: {result.path}")
    return 0 if status.get("state") in ("finished", "stopped") else 1
