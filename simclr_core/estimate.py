"""How long chosen settings would train on this machine, measured before a run starts.

The seed's defaults on a laptop CPU mean days (500 epochs at 96 px); a user should learn that before
pressing Start, not from an ETA an hour in. A few optimiser steps of the real step (views, forward,
backward, AdamW) on random images at the configured size give the time per image; the estimate
scales it to the dataset and the epochs, or caps it at the time budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch

from simclr_core.augment import make_views
from simclr_core.config import TrainConfig
from simclr_core.devices import resolve_precision, torch_device
from simclr_core.methods import make_method, uses_head_batch_norm
from simclr_core.model import SimCLRNet

TIMED_BATCH = 32  # images per timed step: seconds per image barely depend on the batch beyond this


@dataclass
class Estimate:
    """Seconds per image and what they mean for a run of ``images`` images."""

    seconds_per_image: float
    images: int
    epochs: int
    budget_s: float | None
    device: str

    @property
    def epoch_s(self) -> float:
        return self.seconds_per_image * self.images

    @property
    def planned_s(self) -> float:
        """All planned epochs, ignoring any budget."""
        return self.epoch_s * self.epochs

    @property
    def total_s(self) -> float:
        """What the run will take: the planned epochs, or the budget when that ends it first."""
        return min(self.planned_s, self.budget_s) if self.budget_s else self.planned_s

    @property
    def epochs_within_budget(self) -> float:
        return self.total_s / self.epoch_s if self.epoch_s > 0 else math.inf


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    precision = resolve_precision(config.precision, "gpu" if device.type == "cuda" else "cpu", config.image_size)
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def seconds_per_image(config: TrainConfig, steps: int = 2) -> float:
    """Median seconds per training image of ``steps`` timed steps after one warm-up step.

    The step is the method's own (BYOL's predictor and momentum target cost about a third more than SimCLR)."""
    device = torch_device(config.device)
    net = SimCLRNet(
        config.backbone,
        config.hidden_dim,
        config.small_input,
        uses_head_batch_norm(config.method, config.head_batch_norm),
    )
    net = net.to(device)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    objective = make_method(config.method, net, config.hidden_dim, config.target_momentum).to(device)
    params = list(net.parameters()) + [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)  # as training
    batch = min(TIMED_BATCH, config.batch_size)
    size = config.image_size
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.arange(batch, device=device) % 10  # for a method that trains on labels (supcon)
    generator = torch.Generator(device=device).manual_seed(0)
    dtype = _autocast_dtype(config, device)
    aug = replace(config.aug, crop_size=size)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        views = make_views(images, aug, config.n_views, generator, size)
        if config.channels_last:
            views = views.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            _, z = net(views)
            loss, _ = objective(z, views, labels, config.n_views, config.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        objective.after_step(net, 0.0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    timed = sorted(times[1:])
    return timed[len(timed) // 2] / batch


def estimate(config: TrainConfig, images: int, steps: int = 2) -> Estimate:
    """The duration of ``config`` on ``images`` training images here (``limit_images`` applied)."""
    n = min(images, config.limit_images) if config.limit_images else images
    budget = config.max_minutes * 60 if config.max_minutes else None
    return Estimate(seconds_per_image(config, steps), n, config.epochs, budget, torch_device(config.device).type)


def human_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.4 h', '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
