"""``python -m simclr_core train``: SimCLR pretraining into a run directory (resumable, stoppable with Ctrl-C).

Every ``TrainConfig`` field is a flag (``--image-size`` for ``image_size``), typed from its annotation,
explained by its comment in ``config.py`` and by ``_NOTES`` below for what only the CLI needs to say.
A new field gets a flag without touching this file.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import textwrap
import tokenize
from dataclasses import MISSING, Field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simclr_core.config import (
    BACKBONES,
    FAST_METHOD_SETTINGS,
    METHODS,
    MONITORS,
    PRECISIONS,
    RECIPES,
    ConfigError,
    TrainConfig,
    load_augmentation,
    recipe_config,
)

if TYPE_CHECKING:
    from simclr_core.signals import StopSignals

_DEFAULTS = TrainConfig()
_FAST = recipe_config("fast")
_NOT_FLAGS = ("aug",)  # --aug PRESET|FILE instead
_RESUME_FIELDS = ("epochs", "max_minutes")

# What a flag's help says beyond the field's comment (and its default), and where --help lists it.
_GROUPS = {
    "data": ("data", "val_data", "val_limit", "image_size", "limit_images"),
    "hardware": ("precision", "device", "devices", "num_nodes", "strategy", "channels_last"),
}  # every other field: "model and optimisation"
_METAVARS = {
    "data": "SPEC",
    "val_data": "SPEC",
    "val_limit": "N",
    "limit_images": "N",
    "image_size": "R",
    "max_minutes": "M",
    "batch_size": "B",
    "monitor_share": "F",
}
_CHOICES = {"backbone": BACKBONES, "method": METHODS, "precision": PRECISIONS, "monitor": MONITORS}
# A field's comment that is not right for --help (config.py's is about the fast recipe's choice).
_HELP_INSTEAD = {"image_size": "side in pixels the images are decoded to and the views cropped to"}
_NOTES = {
    "data": "'shapes[:unlabeled|train|test][?n=N&seed=S]' (built in, offline), "
    "'stl10[:unlabeled|train|train+unlabeled]', 'cifar10[:train|test]', or an image folder / .zip / .tar.gz",
    "val_data": "e.g. shapes:train for shapes:unlabeled; never the test split",
    "val_limit": "faster epochs on CPU",
    "device": "auto: CUDA when present, else CPU",
    "epochs": "with --resume, a new total",
    "max_minutes": "with --resume, a new budget",
    "batch_size": "split evenly over ALL devices (devices x nodes must divide it); the run prints both",
}


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from a dataclass's source: the comment lines just above a field and its line's own."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}  # line number -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    out: dict[str, str] = {}
    (node,) = ast.parse(source).body
    for stmt in node.body:  # type: ignore[attr-defined]
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above, line = [], stmt.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        own = [comments[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1) if n in comments]
        text = " ".join(above + own).rstrip(".")
        if text:
            out[stmt.target.id] = text
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_type(f: Field) -> type:
    """int, float, str or bool from the (string) annotation, e.g. ``'int | None'`` -> int."""
    names = {part.strip() for part in str(f.type).split("|")} - {"None"}
    for t in (bool, int, float, str):
        if t.__name__ in names:
            return t
    raise TypeError(f"TrainConfig.{f.name}: no command-line type for {f.type!r}")


def _default_text(name: str) -> str:
    default, fast = getattr(_DEFAULTS, name), getattr(_FAST, name)
    text = f"default {default}" if default is not None else "default none"
    per_method = {m: v[name] for m, v in FAST_METHOD_SETTINGS.items() if name in v}
    if (fast != default or per_method) and name != "data":
        text += f"; --recipe fast: {fast}" + "".join(f", with --method {m}: {v}" for m, v in per_method.items())
    return text


def _help(name: str, comment: str | None) -> str:
    parts = [p for p in (_HELP_INSTEAD.get(name, comment), _NOTES.get(name)) if p]
    return ("; ".join(parts) + f" ({_default_text(name)})").replace("%", "%%")


def config_flags() -> list[Field]:
    """The TrainConfig fields the CLI exposes as flags, in the dataclass's order."""
    return [f for f in fields(TrainConfig) if f.name not in _NOT_FLAGS and f.default is not MISSING]


def _add_field_flags(groups: dict[str, argparse._ArgumentGroup]) -> None:
    comments = field_comments(TrainConfig)
    for f in config_flags():
        group = next((g for g, names in _GROUPS.items() if f.name in names), "model and optimisation")
        kwargs: dict[str, Any] = {"default": None, "dest": f.name, "help": _help(f.name, comments.get(f.name))}
        kind = _value_type(f)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            if f.name in _CHOICES:
                kwargs["choices"] = _CHOICES[f.name]
            else:
                kwargs["metavar"] = _METAVARS.get(f.name, f.name.upper())
        groups[group].add_argument(_flag(f.name), **kwargs)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="SimCLR pretraining into a run directory (metrics, checkpoints, status), resumable",
        description=(
            "Contrastive pretraining as in the UvA tutorial 17 (ResNet encoder + MLP head, InfoNCE, AdamW with "
            "cosine annealing to lr/50). Writes <runs-dir>/<name>-<time>/ with config.json, metrics.jsonl, "
            "status.json, checkpoints/last.ckpt (every epoch and on stop) and best.ckpt. Ctrl-C or SIGTERM stops "
            "cleanly after the current step (state stopped, last.ckpt saved, exit status 130 or 143); --resume "
            "continues a stopped or interrupted run. Exit status 0: finished, 1: failed, 2: bad settings. Settings come from "
            "--recipe or --config; every flag given explicitly overrides them."
        ),
    )
    add_config_arguments(p)
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


def add_config_arguments(p: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """--recipe / --config, --aug and one flag per TrainConfig field (``train`` and ``queue add`` share them)."""
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--recipe",
        default=None,
        choices=RECIPES,
        help="starting settings; every flag given explicitly overrides them. tutorial (default): the seed's exact "
        "recipe (96 px, batch 256, lr 5e-4, temperature 0.07, 500 epochs). fast: what learns most per minute on "
        "this machine (measured: 32 px, ResNet-10 with the standard stem, 4 views of 128 images per step, lr 2e-3, temperature 0.2, crops of 20-100 %%, "
        "the cosine fitted to the time budget; --max-minutes defaults to 5). On a CUDA device fast uses "
        "ResNet-18 with the small-input stem and batch 256 (not yet measured on a GPU). With --method, fast "
        "adds that method's own measured settings (listed under the flags they set).",
    )
    start.add_argument(
        "--config",
        default=None,
        metavar="FILE.json",
        help='start from a saved config: a run\'s config.json (its "config" object) or a bare TrainConfig JSON; '
        "every flag given explicitly overrides it",
    )
    groups = {name: p.add_argument_group(name) for name in ("data", "model and optimisation", "hardware")}
    groups["data"].add_argument(
        "--aug",
        default=None,
        metavar="PRESET|FILE.json",
        help="augmentation preset (tutorial, simclr, baseline, none) or a JSON file saved by the dashboard "
        "(default: the recipe's: tutorial's preset, or fast's crops of 20-100 %% without blur)",
    )
    _add_field_flags(groups)
    return groups


def _wants_gpu(device: str | None) -> bool:
    import torch

    return (device or "auto") != "cpu" and torch.cuda.is_available()


def load_config_file(path: str | Path) -> TrainConfig:
    """A TrainConfig from a run's config.json (``{"kind", "config": {...}, ...}``) or a bare TrainConfig JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read it ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config {path}: not valid JSON ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        if data.get("kind", "simclr") != "simclr":
            raise ConfigError(f"--config {path}: the config of a {data['kind']} run, not a SimCLR run")
        data = data["config"]
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of TrainConfig fields")
    return TrainConfig.from_dict(data)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in config_flags() if getattr(args, f.name) is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from the recipe (or --config), then every flag given explicitly on top of it."""
    if getattr(args, "config", None):
        base = load_config_file(args.config)
    else:
        base = recipe_config(args.recipe or "tutorial", gpu=_wants_gpu(args.device), method=args.method or "simclr")
    config = replace(base, **_given(args))
    if args.aug is not None:
        config.aug = load_augmentation(args.aug, crop_size=config.image_size)
    else:
        config.aug = replace(config.aug, crop_size=config.image_size)
    return config.validate()


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 finished, 1 failed, 2 bad settings (``__main__``), 128 + signal when a signal stopped it."""
    from simclr_core.signals import StopSignals

    signals = StopSignals().install()  # first: a signal while settings are checked is a clean stop too
    try:
        return _run(args, signals)
    finally:
        signals.restore()


def _run(args: argparse.Namespace, signals: StopSignals) -> int:
    from simclr_core.cli_progress import Bars
    from simclr_core.distributed import env_global_rank
    from simclr_core.train import StoppedBeforeStart, train

    if args.resume:
        given = [k for k in _given(args) if k not in _RESUME_FIELDS]
        given += ["aug"] * (args.aug is not None) + ["recipe"] * (args.recipe not in (None, "tutorial"))
        given += ["config"] * (args.config is not None)
        if given:
            raise ConfigError(
                f"--resume reuses the run's settings; only --epochs/--max-minutes may change "
                f"(got {', '.join(_flag(k) for k in given)})"
            )
        config = None
        overrides = {k: v for k, v in _given(args).items() if k in _RESUME_FIELDS}
    else:
        config, overrides = config_from_args(args), None

    # The training data's download and decoding as a bar on stderr (rank 0 only; Lightning draws the epochs).
    bars = Bars(enabled=False if args.no_progress or env_global_rank() > 0 else None)

    def announce(run_, prepared: Any) -> None:
        bars.close()
        print(f"run directory: {run_.path}", flush=True)
        print(
            f"data {prepared.config.data}: {len(prepared.train_images)} images, validation {prepared.val_spec}; "
            f"{prepared.accelerator} x{prepared.world}, precision {prepared.precision}; batch "
            f"{prepared.config.batch_size} global = {prepared.per_device_batch} per device",
            flush=True,
        )

    try:
        with bars:
            result = train(
                config,
                args.runs_dir,
                name=args.name,
                resume=args.resume,
                stop_event=signals.event,
                overrides=overrides,
                progress_bar=not args.no_progress,
                on_start=announce,
                data_progress=bars,
            )
    except StoppedBeforeStart as err:
        print(str(err), flush=True)
        return signals.exit_code(1)
    if result is None or env_global_rank() > 0:
        return signals.exit_code(0)  # a DDP rank other than 0: rank 0 reports
    status = result.status()
    print(f"{status.get('state')}: {status.get('message')}")
    print(f"run directory: {result.path}")
    return signals.exit_code(0 if status.get("state") == "finished" else 1)
