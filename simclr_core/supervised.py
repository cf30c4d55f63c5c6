"""The seed's supervised baseline: a ResNet trained from scratch on the labelled subset only.

Recipe as in the seed's ``train_resnet``: the "baseline" augmentations (flip, crop of 80-100 %
area, grayscale, light blur; no colour jitter), AdamW lr 1e-3 / weight decay 2e-4, batch 64
with the last partial batch dropped, 100 epochs, x0.1 at 70 % and 90 %. Differences, and why:

- a wall-clock budget (``max_minutes``): after the first epoch the job plans as many epochs as
  fit and places the 70 %/90 % decays within that plan, so a short budget still anneals;
- the seed keeps the epoch with the best *test* accuracy; here the last epoch is evaluated once;
- train accuracy is measured on the un-augmented subset (the seed re-used its augmented loader).

It runs in a background thread (:class:`SupervisedJob`) and records itself in a run directory of
kind ``"supervised"`` (config.json, status.json, metrics.jsonl, results.json), so the dashboard
lists it beside SimCLR runs.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simclr_core import augment
from simclr_core.config import BACKBONES, ConfigError, augmentation_preset
from simclr_core.jobs import Job
from simclr_core.model import FEATURE_DIMS, make_backbone
from simclr_core.probe import SUBSETS, make_plan
from simclr_core.store import Run, create_run


@dataclass
class SupervisedConfig:
    """One supervised baseline job; saved as config.json's ``config``."""

    train_data: str = "shapes:train"  # labelled spec the subsets are drawn from
    test_data: str = "shapes:test"
    sizes: list[int] = field(default_factory=lambda: [500])  # images per class, one model each (capped)
    subset: str = "random"
    val_fraction: float = 0.0  # only so subsets match a probe sweep made with the same setting
    seed: int = 0  # subset seed: the probe's repeat 0 with the same seed uses the same images
    image_size: int = 96
    backbone: str = "resnet18"
    small_input: bool = False
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 2e-4
    milestones: tuple[float, float] = (0.7, 0.9)
    gamma: float = 0.1
    max_minutes: float | None = None  # total budget over all sizes, shared equally
    aug_preset: str = "baseline"
    device: str = "auto"

    def validate(self) -> SupervisedConfig:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.subset not in SUBSETS:
            raise ConfigError(f"subset must be one of {', '.join(SUBSETS)}, got {self.subset!r}")
        if not self.sizes or min(self.sizes) < 1:
            raise ConfigError(f"sizes must be positive images-per-class counts, got {self.sizes}")
        if self.epochs < 1 or self.batch_size < 1 or self.image_size < 16:
            raise ConfigError("epochs and batch_size must be positive and image_size at least 16")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be positive, got {self.max_minutes}")
        augmentation_preset(self.aug_preset)
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


class Classifier(nn.Module):
    """Backbone f (the SimCLR architecture, randomly initialised) + one linear layer: ``(B, 3, S, S) -> (B, C)``."""

    def __init__(self, backbone: str, small_input: bool, n_classes: int) -> None:
        super().__init__()
        self.backbone = make_backbone(backbone, small_input)
        self.fc = nn.Linear(FEATURE_DIMS[backbone], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(name)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    batch_size: int = 256,
) -> float:
    """Accuracy on ``images (N, 3, H, W) uint8`` resized to ``size`` and normalised, without augmentation."""
    model.eval()
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device).float().div_(255.0)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(((x - m) / s).contiguous(memory_format=torch.channels_last))
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(1, images.shape[0])


def _lr_at(cfg: SupervisedConfig, epoch: int, planned: int) -> float:
    """MultiStepLR at int(planned * 0.7) and int(planned * 0.9), as epoch-wise steps."""
    passed = sum(epoch >= int(planned * f) for f in cfg.milestones)
    return cfg.lr * cfg.gamma**passed


@dataclass
class SupervisedData:
    """Everything a job needs before it may create a run: subsets and test images, labels as 0..C-1."""

    images: torch.Tensor  # (N, 3, H, W) uint8, the whole training split
    targets: torch.Tensor  # (N,) int64 class index, -1 for classes not trained on
    subsets: dict[int, torch.Tensor]  # size -> (size * C,) int64 rows of images
    test_images: torch.Tensor  # (M, 3, H, W) uint8
    test_targets: torch.Tensor  # (M,) int64
    classes: list[str]


def prepare_supervised(cfg: SupervisedConfig, subsets: dict[int, torch.Tensor] | None = None) -> SupervisedData:
    """Validate and load the data (raises ConfigError/DatasetError before any run directory exists).

    ``subsets``: ``{size: (size * C,) int64 train indices}`` to reuse a probe sweep's exact images;
    by default they are drawn with :func:`simclr_core.probe.make_plan` (repeat 0 of ``cfg.seed``).
    """
    from simclr_core.data import load_dataset

    cfg.validate()
    _device(cfg.device)
    train = load_dataset(cfg.train_data, image_size=cfg.image_size)
    test = load_dataset(cfg.test_data, image_size=cfg.image_size)
    labels = train.labels.long()
    if subsets is None:
        plan = make_plan(labels, cfg.sizes, 1, cfg.subset, cfg.val_fraction, cfg.seed)
        subsets = {s: plan.subsets[(s, 0)] for s in plan.sizes}
    classes = sorted(int(c) for c in labels[labels >= 0].unique().tolist())
    lut = torch.full((max(classes) + 2,), -1, dtype=torch.long)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    test_t = lut[test.labels.long().clamp(-1, max(classes) + 1)]  # -1 and unseen labels map to -1
    test_idx = torch.nonzero(test_t >= 0).flatten()
    if test_idx.numel() == 0:
        raise ConfigError(f"{cfg.test_data!r} shares no class with {cfg.train_data!r}")
    return SupervisedData(
        train.images,
        lut[labels.clamp(-1, max(classes) + 1)],
        subsets,
        test.images[test_idx],
        test_t[test_idx],
        [train.classes[c] for c in classes],
    )


def train_supervised(
    cfg: SupervisedConfig, run: Run, data: SupervisedData, stop: threading.Event | None = None
) -> dict[str, Any]:
    """Train one classifier per size into ``run``; returns (and writes as results.json) the accuracies."""
    stop = stop or threading.Event()
    device = _device(cfg.device)
    aug = augmentation_preset(cfg.aug_preset, crop_size=cfg.image_size)
    run.write_status(state="running", message="training", started_at=time.time())
    subsets, classes = data.subsets, data.classes
    test_images, test_y = data.test_images, data.test_targets
    budget_s = cfg.max_minutes * 60 / len(subsets) if cfg.max_minutes else None
    results: list[dict[str, Any]] = []
    step, t_job = 0, time.time()
    for k, (size, idx) in enumerate(sorted(subsets.items())):
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + size)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching other threads' global RNG
            torch.manual_seed(cfg.seed * 7919 + size)
            model = Classifier(cfg.backbone, cfg.small_input, len(classes))
        model = model.to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        images, y = data.images[idx], data.targets[idx]
        n = idx.numel()
        bs = min(cfg.batch_size, n)  # drop_last as the seed, but never drop the only batch
        steps_per_epoch = n // bs
        planned, t_size, epoch, stopped = cfg.epochs, time.time(), 0, False
        while epoch < planned and not stopped:
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, epoch, planned)
            model.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum = torch.zeros((), device=device)  # accumulated on device: no sync per step
            correct = torch.zeros((), device=device, dtype=torch.long)
            for b in range(steps_per_epoch):
                sel = perm[b * bs : (b + 1) * bs]
                xb = images[sel].to(device, non_blocking=True)
                params = augment.sample_params(bs, aug, tuple(xb.shape[-2:]), gen, device)
                x = augment.apply(xb, params, aug).contiguous(memory_format=torch.channels_last)
                yb = y[sel].to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += loss.detach() * bs
                correct += (logits.argmax(1) == yb).sum()
                if stop.is_set():
                    stopped = True
                    break
            epoch += 1
            elapsed = time.time() - t_size
            if budget_s is not None and epoch == 1:
                planned = max(1, min(cfg.epochs, int(budget_s / max(elapsed, 1e-6))))
            if budget_s is not None and elapsed >= budget_s:
                planned = epoch  # the budget is spent: end here and evaluate
            seen = max(1, (b + 1) * bs)
            run.append_metrics(
                [
                    {
                        "step": step,
                        "epoch": epoch,
                        "time": time.time(),
                        "size": size,
                        "train_loss": float(loss_sum) / seen,
                        "train_acc": int(correct) / seen,
                        "lr": opt.param_groups[0]["lr"],
                    }
                ]
            )
            done = (k + epoch / max(planned, 1)) / len(subsets)
            run.write_status(
                epoch=epoch,
                step=step,
                progress=done,
                eta_s=(time.time() - t_job) * (1 - done) / max(done, 1e-6),
                message=f"{size} images/class: epoch {epoch}/{planned}",
            )
        run.write_status(message=f"{size} images/class: evaluating")
        entry = {
            "size": size,
            "n_train": n,
            "epochs": epoch,
            "planned_epochs": planned,
            "stopped_early": stopped,
            "minutes": (time.time() - t_size) / 60,
            "train_acc": evaluate(model, images, y, cfg.image_size, aug.mean, aug.std, device),
            "test_acc": evaluate(model, test_images, test_y, cfg.image_size, aug.mean, aug.std, device),
        }
        results.append(entry)
        run.log(
            f"supervised {size}/class: train {entry['train_acc']:.4f} test {entry['test_acc']:.4f} after {epoch} epochs"
        )
        run.append_metrics(
            [
                {
                    "step": step,
                    "epoch": epoch,
                    "time": time.time(),
                    "size": size,
                    "train_acc_final": entry["train_acc"],
                    "test_acc": entry["test_acc"],
                }
            ]
        )
        if stop.is_set():
            break
    out = {
        "kind": "supervised",
        "results": results,
        "classes": classes,
        "config": cfg.to_dict(),
        "test_size": int(test_y.numel()),
    }
    run.write_json("results.json", out)
    return out


class SupervisedJob(Job[dict[str, Any]]):
    """The baseline in a background thread, like ``train.TrainingJob``; ``result`` is results.json's content.

    ``start()`` loads the data in the caller's thread (bad settings raise before a run directory
    exists), creates the run (kind "supervised") and trains in a daemon thread; ``stop()`` ends the
    current step, evaluates and writes results.json; failures land in status.json and train.log.
    """

    def __init__(
        self,
        cfg: SupervisedConfig,
        runs_root: str | Path = "runs",
        name: str | None = None,
        subsets: dict[int, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(label=name or "supervised")
        self.cfg, self.runs_root, self.name, self._subsets = cfg, runs_root, name, subsets
        self.run: Run | None = None

    def start(self) -> SupervisedJob:
        data = prepare_supervised(self.cfg, self._subsets)
        run = create_run(self.runs_root, self.cfg.to_dict(), name=self.name or "supervised", kind="supervised")
        self.run = run

        def work() -> dict[str, Any]:
            try:
                result = train_supervised(self.cfg, run, data, self.stop_event)
                state = "stopped" if self.stop_event.is_set() else "finished"
                accs = [r["test_acc"] for r in result["results"]]
                run.write_status(
                    state=state,
                    progress=1.0,
                    eta_s=0,
                    finished_at=time.time(),
                    message=f"test accuracy {max(accs):.4f}" if accs else "stopped before any model",
                )
                return result
            except BaseException as err:  # recorded for the dashboard; the thread must not die silently
                run.log(traceback.format_exc())
                run.write_status(state="failed", message=f"{type(err).__name__}: {err}"[:500], finished_at=time.time())
                raise

        self._launch(work, name=f"supervised-{run.id}")
        return self


def baseline_config(
    encoder: Mapping[str, Any],
    train_data: str,
    test_data: str,
    sizes: list[int],
    max_minutes: float | None,
    *,
    subset: str = "random",
    val_fraction: float = 0.0,
    seed: int = 0,
    image_size: int | None = None,
    device: str = "auto",
) -> SupervisedConfig:
    """The baseline for an encoder: its architecture (``backbone``, ``small_input``, ``image_size`` of its
    hyperparameters or TrainConfig) trained from scratch on the labelled data it is probed on.

    With the probe's ``subset``/``val_fraction``/``seed`` it trains on the probe's repeat-0 subsets.
    """
    return SupervisedConfig(
        train_data=train_data,
        test_data=test_data,
        sizes=[int(s) for s in sizes],
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
        image_size=int(image_size or encoder.get("image_size") or 96),
        backbone=str(encoder.get("backbone") or "resnet18"),
        small_input=bool(encoder.get("small_input")),
        max_minutes=max_minutes,
        device=device,
    )
