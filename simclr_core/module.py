"""The LightningModule: uint8 batch -> on-device views -> f, g -> the method's loss, plus the seed's validation.

The method (``config.method``, ``simclr_core.methods``) is SimCLR's InfoNCE by default; BYOL, Barlow Twins,
VICReg and SupCon use the same encoder f and head g (``net``), so every consumer of a checkpoint reads
``net.*`` alike; BYOL's predictor and target network live in ``objective.*``. Every method also logs the
positive-pair ranking metrics (``train_acc_*``), its own loss terms, and at validation the kNN monitor and
the effective rank of the features (RankMe).

Batches are uint8 images straight from the in-memory dataset (``data.batches.UInt8Images``); the
augmentation runs here, on the training device, in float32 outside autocast. Every step's
views come from a generator seeded by (seed, rank, step), so streams differ per rank, are
reproducible, and continue identically after a resume. Validation views use (seed, rank,
batch) so ``val_*`` compare like with like across epochs.

Nothing here calls ``.item()``: the step metrics stay on the device in ``last_train_metrics``
(reduced over ranks) and the run store's ``callbacks.MetricsWriter`` copies them to the host in
batches every couple of seconds.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from simclr_core.augment import make_views
from simclr_core.config import TrainConfig
from simclr_core.distributed import DDP_CONTROL_EVERY, broadcast_from_zero
from simclr_core.knn import knn_accuracy
from simclr_core.methods import RANK_METRICS, make_method, uses_head_batch_norm
from simclr_core.metrics import KNN_ACC, RANKME, TRAIN_LOSS, TRAIN_METRICS
from simclr_core.model import SimCLRNet
from simclr_core.rankme import rankme
from simclr_core.schedule import TrainingClock, budget_factor, cosine_warmup_factor
from simclr_core.seeding import stream_seed

RANDOM_INIT_IMAGES = 5000  # labelled images for the random-init reference level of the kNN chart


def normalise_u8(images_u8: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float32 normalised like the views, for un-augmented feature extraction."""
    m = torch.tensor(mean, device=images_u8.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=images_u8.device).view(1, 3, 1, 1)
    return (images_u8.float() / 255 - m) / s


class SimCLRModule(pl.LightningModule):
    """``config.method`` on ``net`` = ``model.SimCLRNet``; checkpoints hold ``net.*``, ``objective.*`` and
    ``hyper_parameters["config"]``.

    Everything it needs comes at construction, so ``SimCLRModule(config)`` trains in any Trainer:

    * ``steps_per_epoch`` sizes the lr schedule only outside a Trainer (a hand-written loop); inside one
      the Trainer's ``estimated_stepping_batches`` does, or ``config.max_minutes`` (``schedule``).
    * ``global_batch``: the images of one optimiser step over all processes (``config.batch_size``
      when None), the base of ``config.scale_lr``.
    * ``knn_query_mask`` ((N_val,) bool over validation indices) says which labelled images are kNN
      queries (and the images of the augmented val_*); every labelled image is in the kNN bank, each query
      leaves itself out. When None, the attached datamodule's ``knn_query_mask`` is taken at ``setup``
      (``datamodule.SimCLRDataModule``); without labelled validation data it stays None.
    """

    def __init__(
        self,
        config: TrainConfig | dict[str, Any],
        *,
        steps_per_epoch: int = 1,
        global_batch: int | None = None,
        knn_query_mask: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.net = SimCLRNet(
            config.backbone,
            config.hidden_dim,
            config.small_input,
            uses_head_batch_norm(config.method, config.head_batch_norm),
        )
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.objective = make_method(config.method, self.net, config.hidden_dim, config.target_momentum)
        # The names of last_train_metrics' entries, as metrics.jsonl columns.
        self.train_metric_names = (*TRAIN_METRICS, *(f"train_{t}" for t in self.objective.terms))
        self.steps_per_epoch = max(1, steps_per_epoch)
        # Training time of this run across resumes: the time budget's schedule and stop decision read it.
        self.clock = TrainingClock(config.max_minutes * 60 if config.max_minutes else None)
        self.budget_fraction = 0.0  # the share of the budget the lr schedule follows: rank 0's clock on every rank
        self.global_batch = global_batch or config.batch_size
        self.knn_query_mask = knn_query_mask
        self.skip_validation = False  # set when the user stops: no slow validation on the way out
        self.last_train_metrics: torch.Tensor | None = None  # loss, top1, top5, mean_pos, method terms; reduced
        self._generator: torch.Generator | None = None
        self._val_feats: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.paced_out = False  # this epoch's validation is skipped to keep the monitor's share of the time
        self._val_cost_s: float | None = None
        self._val_started = 0.0
        self._trained_at_last_val = 0.0

    # -- helpers ------------------------------------------------------------------------------
    def _seeded(self, *parts: int | str) -> torch.Generator:
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(stream_seed(self.config.seed, self.global_rank, *parts))
        return self._generator

    def _views(self, images_u8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, H, W) uint8 -> (n_views * B, 3, S, S) float32 views, view-major."""
        with torch.autocast(device_type=self.device.type, enabled=False):
            views = make_views(images_u8, self.config.aug, self.config.n_views, generator, self.config.image_size)
        if self.config.channels_last:
            views = views.contiguous(memory_format=torch.channels_last)
        return views

    def _features(self, images_u8: torch.Tensor) -> torch.Tensor:
        """Backbone features h of un-augmented images: (B, feat) float32."""
        x = normalise_u8(images_u8, self.config.aug.mean, self.config.aug.std)
        if x.shape[-1] != self.config.image_size or x.shape[-2] != self.config.image_size:
            x = nn.functional.interpolate(x, size=self.config.image_size, mode="bilinear", antialias=True)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net.backbone(x).float()

    def setup(self, stage: str) -> None:
        # Lightning sets up the datamodule first, so its monitoring split (and query mask) is loaded by now.
        if self.knn_query_mask is None:
            self.knn_query_mask = getattr(self.trainer.datamodule, "knn_query_mask", None)

    # -- training -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        # (images, index), or (images, labels, index) when the method trains on labels (supcon).
        images, labels = batch[0], batch[1] if len(batch) == 3 else None
        if self.global_step > 0:
            # BYOL's target follows the last optimiser step here rather than after it, so that last.ckpt, saved
            # between the two, holds the online and target networks as one consistent pair.
            self.objective.after_step(self.net, self.schedule_fraction())
        views = self._views(images, self._seeded("train", self.global_step))
        _, z = self.net(views)
        loss, metrics = self.objective(z, views, labels, self.config.n_views, self.config.temperature)
        names = (*RANK_METRICS, *self.objective.terms)
        vec = torch.stack([loss.detach().float(), *(metrics[k].float() for k in names)])
        if self.trainer.world_size > 1:
            vec = self.trainer.strategy.reduce(vec, reduce_op="mean")
        self.last_train_metrics = vec
        # Any Lightning logger and the progress bar see the step metrics; the run store reads last_train_metrics.
        self.log(TRAIN_LOSS, vec[0], prog_bar=True)
        self.log_dict({f"train_{k}": v for k, v in metrics.items()})
        return loss

    def configure_optimizers(self) -> Any:
        cfg = self.config
        lr = cfg.lr * (self.global_batch / 256 if cfg.scale_lr else 1.0)
        # fused: one kernel per parameter tensor instead of ~10 small ops each (CPU and CUDA): 34 -> 6 CPU-ms per
        # step for ResNet-18, and no thread-team hand-off per tiny op (see BENCHMARKS.md, "Where the time goes").
        trained = [p for p in self.parameters() if p.requires_grad]  # not BYOL's target: it follows the online net
        opt = torch.optim.AdamW(trained, lr=lr, weight_decay=cfg.weight_decay, fused=True)
        total = self._planned_steps()
        self._total_steps = total
        warmup = round(cfg.warmup_epochs * total / cfg.epochs)

        def factor(step: int) -> float:
            if self.clock.budget_s:
                # Whichever ends first, the budget or the planned epochs, finds the schedule annealed.
                return budget_factor(step, max(self.budget_fraction, step / total), warmup)
            return cosine_warmup_factor(step, total, warmup)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _planned_steps(self) -> int:
        """Optimiser steps of all planned epochs: the Trainer's own estimate when attached to one."""
        trainer = self._trainer
        if trainer is not None:
            estimate = trainer.estimated_stepping_batches
            if math.isfinite(estimate) and estimate > 0:
                return int(estimate)
        return max(1, self.config.epochs * self.steps_per_epoch)

    # -- the training clock travels with checkpoints, so a resumed budget run continues its schedule
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if not self.clock.budget_s:
            return
        if self.trainer.world_size == 1:
            self.budget_fraction = self.clock.fraction()
        elif self.global_step % DDP_CONTROL_EVERY == 0:
            # Clocks drift apart across ranks; every rank must step the same lr, so rank 0's clock decides.
            self.budget_fraction = float(broadcast_from_zero(self.trainer, self.clock.fraction()))

    def schedule_fraction(self) -> float:
        """The share of training done that the schedules follow: the budget's or the planned steps', the further."""
        steps = self.global_step / max(1, getattr(self, "_total_steps", None) or self._planned_steps())
        return max(self.budget_fraction, steps) if self.clock.budget_s else steps

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Started after the first step: one-off compile and warm-up costs (the numba kernel, cuDNN autotuning)
        # take no share of the budget, so a 5-minute run trains for 5 minutes on a fresh machine too.
        if not self.clock.started:
            self.clock.start()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["training_seconds"] = self.clock.elapsed()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.clock.previous_s = float(checkpoint.get("training_seconds", 0.0))

    # -- validation: the seed's augmented val_* and the kNN monitor ---------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_feats = []
        self.paced_out = self._pace_out()
        self._val_started = time.monotonic()

    def _pace_out(self) -> bool:
        """Skip this epoch's validation when running it would push the monitor past ``config.monitor_share`` of the time.

        The kNN bank is every labelled image, so one validation can cost a fifth of a short epoch on a CPU
        (CIFAR-10: 40,000 images). The first and the last validation always run; between them the monitor
        waits until enough training has passed. The same decision on every rank (rank 0's).
        """
        trainer = self.trainer
        if self._val_cost_s is None or trainer.sanity_checking or self.skip_validation:
            return False
        final = trainer.should_stop or self.current_epoch >= (trainer.max_epochs or 0) - 1
        trained = self.clock.elapsed() - self._trained_at_last_val
        skip = not final and trained < self._val_cost_s * (1 / self.config.monitor_share - 1)
        return bool(broadcast_from_zero(trainer, skip))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        if self.skip_validation or self.paced_out:
            return
        images, labels, index = batch
        # The kNN queries come first in the validation set, so val_* see whole batches of them.
        query = self._query_mask(index) if self.knn_query_mask is not None else torch.ones_like(index, dtype=torch.bool)
        n = int(query.sum())
        if n >= 2:
            views = self._views(images[query], self._seeded("val", batch_idx))
            _, z = self.net(views)
            loss, metrics = self.objective(z, views, labels[query], self.config.n_views, self.config.temperature)
            self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=n)
            for name in RANK_METRICS:
                self.log(f"val_{name}", metrics[name], on_epoch=True, sync_dist=True, batch_size=n)
        if self.knn_query_mask is not None:
            self._val_feats.append((self._features(images), labels, index))

    @torch.no_grad()
    def random_init_knn(self, loader: Any) -> float | None:
        """Leave-one-out kNN accuracy of the encoder as it is now (before training: the random-init level).

        On at most RANDOM_INIT_IMAGES labelled images of this rank's validation shard: a reference line
        for the chart ("is it learning?"), not a figure to compare runs by.
        """
        if loader is None or self.knn_query_mask is None:
            return None
        feats, labels, n = [], [], 0
        was_training = self.net.training
        self.net.eval()
        try:
            with self.trainer.precision_plugin.forward_context():
                for images, lab, _ in loader:
                    feats.append(self._features(images.to(self.device)))
                    labels.append(lab.to(self.device))
                    n += len(lab)
                    if n >= RANDOM_INIT_IMAGES:
                        break
        finally:
            self.net.train(was_training)
        h, y = torch.cat(feats)[:RANDOM_INIT_IMAGES], torch.cat(labels)[:RANDOM_INIT_IMAGES]
        if len(h) < 2:
            return None
        rows = torch.arange(len(h), device=h.device)
        return knn_accuracy(h, y, h, y, k=self.config.knn_k, exclude=rows)

    def _query_mask(self, index: torch.Tensor) -> torch.Tensor:
        assert self.knn_query_mask is not None
        return self.knn_query_mask.to(index.device)[index]

    def on_validation_epoch_end(self) -> None:
        feats, self._val_feats = self._val_feats, []
        if self.skip_validation or self.paced_out:
            return
        if not self.trainer.sanity_checking:
            self._val_cost_s = time.monotonic() - self._val_started
            self._trained_at_last_val = self.clock.elapsed()
        if self.knn_query_mask is None or not feats:
            return
        h = torch.cat([f[0] for f in feats])
        labels = torch.cat([f[1] for f in feats])
        index = torch.cat([f[2] for f in feats])
        if self.trainer.world_size > 1:
            # Shards are padded to equal length, so all_gather works; duplicates are dropped by index.
            h, labels, index = (self.all_gather(t).flatten(0, 1) for t in (h, labels, index))
            index, first = _first_occurrence(index)
            h, labels = h[first], labels[first]
        rows = self._query_mask(index).nonzero().flatten()
        if len(rows) == 0 or len(h) < 2:
            return
        # Leave-one-out: every labelled image is in the bank, each query votes without itself.
        acc = knn_accuracy(h, labels, h[rows], labels[rows], k=self.config.knn_k, exclude=rows)
        # Identical on every rank (features were gathered); sync_dist only keeps Lightning quiet.
        self.log(KNN_ACC, torch.as_tensor(acc, dtype=torch.float32, device=self.device), sync_dist=True)
        # Label-free: how many dimensions the features use (1 = collapsed), for every method alike.
        self.log(RANKME, torch.as_tensor(rankme(h), dtype=torch.float32, device=self.device), sync_dist=True)


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of ``index`` and the position of each one's first occurrence."""
    uniq, inverse = torch.unique(index, return_inverse=True)
    pos = torch.arange(index.numel(), device=index.device)
    first = torch.full_like(uniq, index.numel()).scatter_reduce(0, inverse, pos, reduce="amin")
    return uniq, first
