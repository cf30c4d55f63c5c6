"""Typed settings for augmentation and training, saved with every run.

Every field has the seed tutorial's value as default unless a comment says why not.
Both dataclasses round-trip through JSON (``to_dict``/``from_dict``) and refuse
impossible values in ``validate()`` with a message a user can act on.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from simclr_core import metrics

# BYOL's tau_base: the paper's 0.996 is for 1000 ImageNet epochs; short CIFAR runs use 0.99 (solo-learn)
BYOL_BASE_MOMENTUM = 0.99


class ConfigError(ValueError):
    """A setting a user chose that cannot work; the message says which and why."""


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (_number(v, name) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair of finite numbers (low, high), got {value!r}") from None
    if lo > hi:
        raise ConfigError(f"{name} must have low <= high, got ({lo}, {hi})")
    return lo, hi


def _number(value: Any, name: str) -> float:
    """A finite real: NaN compares false with every bound, so it would slip through each range check."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if int(value) != value:
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _prob(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} is a probability and must lie in [0, 1], got {value}")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


@dataclass
class AugmentationConfig:
    """The tutorial's five random operations, in the order they are applied, plus normalisation.

    Defaults are the seed's ``contrast_transforms`` (torchvision defaults where it set none).
    """

    # RandomHorizontalFlip
    flip_p: float = 0.5
    # RandomResizedCrop: output side, area fraction and aspect-ratio ranges of the crop.
    crop_size: int = 96
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    # RandomApply([ColorJitter(...)], p=jitter_p); hue in [0, 0.5], the others >= 0.
    jitter_brightness: float = 0.5
    jitter_contrast: float = 0.5
    jitter_saturation: float = 0.5
    jitter_hue: float = 0.1
    jitter_p: float = 0.8
    # RandomGrayscale
    grayscale_p: float = 0.2
    # GaussianBlur(kernel_size=9), torchvision's default sigma range; the seed always blurs.
    blur_kernel: int = 9
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = 1.0
    # Normalize((0.5,), (0.5,)): pixels to [-1, 1].
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        # JSON gives lists; anything else is left for validate() to refuse with a clear message.
        for name in ("crop_scale", "crop_ratio", "blur_sigma", "mean", "std"):
            if isinstance(getattr(self, name), list | tuple):
                setattr(self, name, tuple(getattr(self, name)))

    def validate(self) -> AugmentationConfig:
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            _prob(_number(getattr(self, name), name), name)
        if _integer(self.crop_size, "crop_size") < 8:
            raise ConfigError(f"crop_size must be at least 8 pixels, got {self.crop_size}")
        lo, hi = _pair(self.crop_scale, "crop_scale")
        if lo <= 0 or hi > 1:
            raise ConfigError(f"crop_scale is an area fraction and must lie in (0, 1], got ({lo}, {hi})")
        lo, hi = _pair(self.crop_ratio, "crop_ratio")
        if lo <= 0:
            raise ConfigError(f"crop_ratio (width/height) must be positive, got ({lo}, {hi})")
        for name in ("jitter_brightness", "jitter_contrast", "jitter_saturation"):
            if _number(getattr(self, name), name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 switches it off), got {getattr(self, name)}")
        if not 0.0 <= _number(self.jitter_hue, "jitter_hue") <= 0.5:
            raise ConfigError(f"jitter_hue must lie in [0, 0.5] (a fraction of a turn), got {self.jitter_hue}")
        k = _integer(self.blur_kernel, "blur_kernel")
        if k < 1 or k % 2 == 0:
            raise ConfigError(f"blur_kernel must be a positive odd integer (e.g. 9), got {self.blur_kernel}")
        if k // 2 >= int(self.crop_size):
            raise ConfigError(
                f"blur_kernel {k} is too large for crop_size {self.crop_size}: reflect padding needs "
                f"kernel // 2 < crop_size; use a kernel of at most {2 * int(self.crop_size) - 1}"
            )
        lo, hi = _pair(self.blur_sigma, "blur_sigma")
        if lo <= 0:
            raise ConfigError(f"blur_sigma must be positive, got ({lo}, {hi})")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != 3:
                raise ConfigError(f"{name} needs one number per RGB channel, e.g. [0.5, 0.5, 0.5], got {values!r}")
            for v in values:
                _number(v, name)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std must be positive, got {self.std}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentationConfig:
        return _from_dict(cls, data).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> AugmentationConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"augmentation JSON is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError("augmentation JSON must be an object of field: value")
        return cls.from_dict(data)


PRESETS: dict[str, AugmentationConfig] = {
    # The seed's contrast_transforms.
    "tutorial": AugmentationConfig(),
    # SimCLR paper (Chen et al. 2020): colour distortion strength 1.0 -> jitter 0.8/0.8/0.8/0.2.
    "simclr": AugmentationConfig(jitter_brightness=0.8, jitter_contrast=0.8, jitter_saturation=0.8, jitter_hue=0.2),
    # The seed's supervised-baseline train_transforms: mild crops, no colour jitter, light blur.
    "baseline": AugmentationConfig(crop_scale=(0.8, 1.0), jitter_p=0.0, blur_sigma=(0.1, 0.5)),
    # Identity apart from resizing to crop_size and normalising.
    "none": AugmentationConfig(
        flip_p=0.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0
    ),
}


def augmentation_preset(name: str, crop_size: int | None = None) -> AugmentationConfig:
    """A fresh copy of a named preset, optionally at another output size."""
    if name not in PRESETS:
        raise ConfigError(f"unknown augmentation preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = replace(PRESETS[name])
    if crop_size is not None:
        cfg.crop_size = int(crop_size)
    return cfg


def load_augmentation(preset_or_file: str, crop_size: int | None = None) -> AugmentationConfig:
    """`--aug` resolution: a preset name or a JSON file written by the dashboard or CLI."""
    if preset_or_file in PRESETS:
        return augmentation_preset(preset_or_file, crop_size)
    path = Path(preset_or_file)
    if not path.is_file():
        raise ConfigError(
            f"--aug {preset_or_file!r} is neither a preset ({', '.join(PRESETS)}) nor an existing JSON file"
        )
    cfg = AugmentationConfig.from_json(path.read_text())
    if crop_size is not None:
        cfg.crop_size = int(crop_size)
    return cfg.validate()


BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50")
# simclr_core/methods: simclr (NT-Xent), byol, barlowtwins, vicreg, and supcon, which trains on labels.
METHODS = ("simclr", "byol", "barlowtwins", "vicreg", "supcon")
METHOD_LABELS = {
    "simclr": "SimCLR",
    "byol": "BYOL",
    "barlowtwins": "Barlow Twins",
    "vicreg": "VICReg",
    "supcon": "SupCon (labels)",
}
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
MONITORS = (metrics.VAL_ACC_TOP5, metrics.KNN_ACC)


@dataclass
class TrainConfig:
    """One SimCLR run. Saved as config.json in the run directory; enough to reproduce it."""

    data: str = "shapes:unlabeled"  # dataset spec of the contrastive training images
    val_data: str | None = None  # labelled spec for val_* and knn_acc; None: the source's labelled train split
    image_size: int = 96  # decode and crop side; 32 with small_input for CPU demos
    # kNN, probe and maps encode whole images at image_size x this (FixRes: random crops train on magnified
    # objects). On CIFAR-10 at 32 px, 1.5 gained 1.5 kNN points after 5 minutes and lost 1.3 after 20 (BENCHMARKS.md).
    eval_scale: float = 1.0
    limit_images: int | None = None  # use only the first N training images (quick experiments)
    val_limit: int | None = None  # use a class-balanced subset of N validation images (val_* and knn_acc)
    # Training objective (simclr_core/methods): simclr, byol, barlowtwins, vicreg, or supcon (supervised: trains on
    # the labels of a labelled --data split such as cifar10:train).
    method: str = "simclr"
    backbone: str = "resnet18"  # encoder f (torchvision ResNet, from scratch)
    small_input: bool = False  # 3x3 stride-1 first conv, no max-pool: for 32x32 inputs
    hidden_dim: int = 128  # projection output; the head is feat -> 4*hidden -> hidden
    head_batch_norm: bool | None = None  # BatchNorm in the head's hidden layer; default: as the method's paper
    batch_size: int = 256  # images per optimiser step across all devices (global), each giving n_views views
    epochs: int = 500  # passes over the training images
    max_minutes: float | None = None  # wall-clock budget; the run ends cleanly as finished
    lr: float = 5e-4  # AdamW learning rate
    warmup_epochs: float = 0.0  # linear warm-up before cosine annealing to lr/50
    temperature: float = 0.07  # InfoNCE temperature (simclr, supcon)
    # BYOL's target momentum at the start; it rises to 1 by the end of the budget (byol only)
    target_momentum: float = BYOL_BASE_MOMENTUM
    weight_decay: float = 1e-4  # AdamW weight decay
    n_views: int = 2  # augmented views per image
    aug: AugmentationConfig = field(default_factory=AugmentationConfig)
    precision: str = "auto"  # auto: bf16-mixed where the device has fast bf16, else 32
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    channels_last: bool = True  # NHWC memory layout for the convolutions (BENCHMARKS.md measures it)
    devices: int = 1  # processes per node for DDP
    num_nodes: int = 1  # nodes for DDP
    strategy: str = "auto"  # Lightning strategy, e.g. ddp
    scale_lr: bool = False  # multiply lr by global_batch/256 only when asked
    monitor: str = "val_acc_top5"  # best.ckpt selection; the seed used val_acc_top5
    knn_k: int = 20  # neighbours that vote in the kNN monitor
    # Largest share of the training time the per-epoch validation (kNN monitor) may take; epochs in between
    # skip it (the first and last always run). 1 validates every epoch, as the seed did.
    monitor_share: float = 0.1
    snapshots: int = 10  # backbone-only float16 snapshots spread over training, for the Embeddings replay (0: none)
    seed: int = 42  # random seed (weights, epoch order, augmentation streams)

    def __post_init__(self) -> None:
        if isinstance(self.aug, dict):
            self.aug = AugmentationConfig.from_dict(self.aug)

    def _check_numbers(self) -> None:
        """Every numeric field a finite number of its type, before any range check reads it."""
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = {part.strip() for part in str(f.type).split("|")}
            if value is None and "None" in kinds:
                continue
            if "int" in kinds:
                setattr(self, f.name, _integer(value, f.name))
            elif "float" in kinds:
                setattr(self, f.name, _number(value, f.name))
            elif "bool" in kinds and not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true or false, got {value!r}")
            elif "str" in kinds and not isinstance(value, str):
                raise ConfigError(f"{f.name} must be a text value, got {value!r}")

    def validate(self) -> TrainConfig:
        self._check_numbers()
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be a whole number in [0, 2**32 - 1], got {self.seed}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0 (0: no warm-up), got {self.warmup_epochs}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0 (the seed uses 0.07), got {self.temperature}")
        if self.n_views < 2:
            raise ConfigError(f"n_views must be at least 2 (a positive pair needs two views), got {self.n_views}")
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.monitor not in MONITORS:
            raise ConfigError(f"unknown monitor {self.monitor!r}; choose one of {', '.join(MONITORS)}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2 (negatives come from the batch), got {self.batch_size}")
        for name in ("epochs", "hidden_dim", "image_size", "devices", "num_nodes", "knn_k"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.image_size < 16:
            raise ConfigError(f"image_size must be at least 16 pixels, got {self.image_size}")
        if not 0.5 <= self.eval_scale <= 4:
            raise ConfigError(f"eval_scale must be from 0.5 to 4 (1: evaluate at image_size), got {self.eval_scale}")
        if not 0 <= self.target_momentum < 1:
            raise ConfigError(f"target_momentum must be in [0, 1) (BYOL's paper: 0.996), got {self.target_momentum}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(
                f"lr must be > 0 and weight_decay >= 0, got lr={self.lr}, weight_decay={self.weight_decay}"
            )
        if not 0 <= self.snapshots <= 100:
            raise ConfigError(f"snapshots must be a count in [0, 100] (0: none), got {self.snapshots}")
        if not 0 < self.monitor_share <= 1:
            raise ConfigError(f"monitor_share is a fraction of the training time in (0, 1], got {self.monitor_share}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.limit_images is not None and self.limit_images < 2:
            raise ConfigError(f"limit_images must be at least 2, got {self.limit_images}")
        if self.val_limit is not None and self.val_limit < 2:
            raise ConfigError(f"val_limit must be at least 2, got {self.val_limit}")
        self.aug.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aug"] = self.aug.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, dict(data))


RECIPES = ("tutorial", "fast")
FAST_DEFAULT_MINUTES = 5.0
# What each method changes in the fast recipe, tuned like it: CIFAR-10, 5 CPU minutes, scored on the carved
# split (BENCHMARKS.md, "Methods"). Methods absent here train SimCLR's settings.
FAST_METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    # 512-d projections (head 512 -> 2048 -> 512) instead of 128-d: kNN / probe 53.9 / 58.8 % against 51.7 / 57.3
    # (20 min: 59.5 / 64.6 against 57.4 / 63.2; shapes, 5 min: 96.7 / 99.9 against 85.2 / 99.5). 1,024-d costs a
    # third of the steps and learns less (52.0 / 56.3). Barlow Twins keeps 128-d: 512-d gained 0.2 / 3.1 points on
    # CIFAR-10 but lost 24 kNN points on shapes (69.7 against 93.8). BYOL: no try left the run-to-run noise.
    "vicreg": {"hidden_dim": 512},
}


def fast_recipe(
    data: str = "shapes:unlabeled",
    max_minutes: float | None = FAST_DEFAULT_MINUTES,
    gpu: bool = False,
    method: str = "simclr",
) -> TrainConfig:
    """What learns most per minute, found by measurement (BENCHMARKS.md, "Learning per minute").

    CPU (2 cores, measured): 32 px views and the standard ResNet stem, whose 8x8 maps after the
    stem run ~3x the views/s of a stride-2 stem without max-pool and ~11x the small-input stem;
    ResNet-10 (one block per stage), which runs ~1.75x ResNet-18's views/s and in 5 minutes reached
    kNN 48.4 % against 44.1 % on CIFAR-10; 4 views per image (51.3 %; 8 views of 64 images: 51.3 % too,
    but an epoch then takes twice the steps, so the chart gets half the kNN points); a time-fitted cosine (the budget, not ``epochs``, ends the
    run). GPU (untested until a GPU is lent): ResNet-18 with the small-input stem, whose cost a GPU
    absorbs, at the same optimiser settings. ``method``: that method with its own measured changes
    (``FAST_METHOD_SETTINGS``).
    """
    aug = augmentation_preset("tutorial", crop_size=32)
    aug.crop_scale = (0.2, 1.0)
    aug.blur_kernel = 3  # the tutorial's 9 px kernel is sized for 96 px views (~10 % of the side)
    aug.blur_p = 0.0
    return TrainConfig(
        data=data,
        image_size=32,
        backbone="resnet18" if gpu else "resnet10",
        small_input=gpu,
        batch_size=256 if gpu else 128,
        n_views=4,  # 4 views of 128 images, not 2 of 256: same cost per step, 51.3 against 48.4 % kNN in 5 min
        epochs=1000,  # an upper bound: the time budget ends the run and sizes the schedule
        max_minutes=max_minutes,
        lr=2e-3,
        warmup_epochs=0.5,
        temperature=0.2,
        weight_decay=1e-4,
        monitor="knn_acc",
        # auto: fp32 for 32 px views on a CPU (bf16 autocast's per-op casts outweigh its faster matmuls there),
        # bf16 on a GPU and for larger views (devices.resolve_precision).
        precision="auto",
        channels_last=gpu,  # on a CPU at 32 px the NCHW kernels run ~13 % more views/s
        # FixRes: crops of 20-100 % show objects up to ~2.2x larger than whole 32 px images do, so features,
        # kNN, probe and maps encode at 36 px. On the three 20-minute CIFAR-10 checkpoints: probe (all labels)
        # +1.1 to +1.3 points, kNN 0 to -1.0 (BENCHMARKS.md). GPU: untested, left at the training side.
        eval_scale=1.0 if gpu else 1.125,
        aug=aug,
        method=method,
        **FAST_METHOD_SETTINGS.get(method, {}),
    )


def recipe_config(name: str, data: str | None = None, gpu: bool = False, method: str = "simclr") -> TrainConfig:
    """``--recipe``: ``tutorial`` is the seed's exact settings (the defaults), ``fast`` the measured CPU/GPU recipe.

    ``method`` picks the objective, and for ``fast`` that method's measured settings too.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if name == "tutorial":
        return TrainConfig(method=method) if data is None else TrainConfig(data=data, method=method)
    if name == "fast":
        return fast_recipe(data or TrainConfig.data, gpu=gpu, method=method)
    raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")


def cpu_demo_config(data: str = "shapes:unlabeled", method: str = "simclr") -> TrainConfig:
    """The dashboard's demo and CPU preset: the fast recipe of ``method`` with a 5-minute budget."""
    return fast_recipe(data, FAST_DEFAULT_MINUTES, method=method)
