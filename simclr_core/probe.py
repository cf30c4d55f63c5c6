"""Logistic-regression probe on frozen features against the number of labelled images per class.

The seed's recipe (one ``nn.Linear``, AdamW lr 1e-3 / weight decay 1e-3, 100 epochs, x0.1 at
60 % and 80 %, batch 64, shuffled, last batch kept) run straight on feature tensors: the R
repeats of one size train together as one (R, D, C) weight tensor. AdamW is element-wise and
each repeat's loss touches only its own slice, so this is exactly R independent runs, at the
Python cost of one.

Two deliberate departures from the seed, both to stop peeking at the test set:
- the seed keeps the epoch with the best *test* accuracy; here the probe trains a fixed number
  of epochs, or (``val_fraction > 0``) keeps the epoch with the best accuracy on a validation
  split carved from the labelled *training* data, disjoint from every subset;
- the seed's single "first k per class" subset is an option; the default draws R random
  class-balanced subsets so the figure has error bars.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from simclr_core.config import ConfigError
from simclr_core.knn import knn_accuracy
from simclr_core.threads import on_one_cpu_thread

SUBSETS = ("random", "first")
DEFAULT_SIZES = (10, 20, 50, 100, 200, 500)


@dataclass
class ProbeConfig:
    """The seed's ``train_logreg`` settings."""

    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int = 64
    milestones: tuple[float, float] = (0.6, 0.8)  # fractions of epochs, as int(max_epochs * f) in the seed
    gamma: float = 0.1
    eval_every: int = 10  # validation cadence when selecting on a validation split (seed: every 10 epochs)

    def validate(self) -> ProbeConfig:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("probe epochs, batch_size and eval_every must be positive integers")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"probe lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        return self


@dataclass
class SubsetPlan:
    """Which training rows each (size, repeat) uses; shared by every method so baselines see the same images.

    ``subsets[(size, repeat)]``: ``(size * n_classes,) int64`` indices into the training split;
    ``val_idx``: ``(V,) int64`` indices held out for model selection (empty: fixed epochs).
    """

    sizes: list[int]
    requested: list[int]
    max_per_class: int
    repeats: int
    subset: str
    classes: list[int]
    val_idx: torch.Tensor
    subsets: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    @property
    def capped(self) -> bool:
        return any(s > self.max_per_class for s in self.requested)


def make_plan(
    labels: torch.Tensor,
    sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES,
    repeats: int = 3,
    subset: str = "random",
    val_fraction: float = 0.0,
    seed: int = 0,
) -> SubsetPlan:
    """Class-balanced subsets of ``labels: (N,) int64`` (rows with label < 0 are ignored).

    Sizes are images per class, capped at what the smallest class holds after the validation
    split. Random subsets are nested across sizes (the 20-image subset contains the 10-image one,
    as growing a labelled set would) and independent across repeats. ``"first"`` takes each
    class's first k rows in dataset order, as the seed's ``get_smaller_dataset`` did on label-sorted
    features; it is deterministic, so its repeats differ only by the probe's initialisation.
    """
    if subset not in SUBSETS:
        raise ConfigError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    requested = [int(s) for s in sizes]
    if not requested or min(requested) < 1:
        raise ConfigError(f"sizes must be positive images-per-class counts, got {sizes}")
    labels = labels.cpu().long()
    classes = sorted(int(c) for c in labels[labels >= 0].unique().tolist())
    if len(classes) < 2:
        raise ConfigError(f"the training split needs at least 2 labelled classes, found {len(classes)}")
    gen = torch.Generator().manual_seed(seed)
    pools, val_parts = {}, []
    for c in classes:
        rows = torch.nonzero(labels == c).flatten()  # dataset order
        n_val = int(round(val_fraction * rows.numel()))
        if n_val:
            if subset == "first":
                val_parts.append(rows[rows.numel() - n_val :])  # the end of each class, so "first k" stays first
                rows = rows[: rows.numel() - n_val]
            else:
                perm = torch.randperm(rows.numel(), generator=gen)
                val_parts.append(rows[perm[:n_val]].sort().values)
                rows = rows[perm[n_val:]].sort().values
        pools[c] = rows
    max_per_class = min(p.numel() for p in pools.values())
    if max_per_class < 1:
        raise ConfigError("a class has no training images left after the validation split; lower val_fraction")
    capped_sizes = sorted({min(s, max_per_class) for s in requested})
    val_idx = torch.cat(val_parts) if val_parts else torch.empty(0, dtype=torch.long)
    plan = SubsetPlan(capped_sizes, requested, max_per_class, repeats, subset, classes, val_idx)
    for r in range(repeats):
        order = {
            c: (pools[c] if subset == "first" else pools[c][torch.randperm(pools[c].numel(), generator=gen)])
            for c in classes
        }
        for s in capped_sizes:
            plan.subsets[(s, r)] = torch.cat([order[c][:s] for c in classes])
    return plan


def _accuracy(
    weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = 16384
) -> torch.Tensor:
    """Accuracy per repeat of ``weight: (R, D, C)``, ``bias: (R, C)`` on ``x: (M, D)``, ``y: (M,)`` -> (R,)."""
    correct = torch.zeros(weight.shape[0], device=weight.device)
    for start in range(0, x.shape[0], chunk):
        logits = torch.einsum("md,rdc->rmc", x[start : start + chunk], weight) + bias[:, None, :]
        correct += (logits.argmax(-1) == y[start : start + chunk]).sum(-1)
    return correct / max(1, x.shape[0])


def train_linear(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    cfg: ProbeConfig,
    seeds: list[int],
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Train R independent linear classifiers at once.

    x: ``(R, n, D) float32``, y: ``(R, n) int64`` (class indices 0..C-1), one row per repeat.
    Returns ``weight (R, D, C)``, ``bias (R, C)`` and, with ``val = (x_val (V, D), y_val (V,))``,
    the best validation accuracy and its epoch per repeat (weights are those of that epoch).
    """
    cfg.validate()
    n_rep, n, dim = x.shape
    dev = x.device
    bound = 1.0 / math.sqrt(dim)  # nn.Linear's default initialisation, drawn per repeat from its seed
    w0, b0, perm_gens = [], [], []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        w0.append(torch.empty(dim, n_classes).uniform_(-bound, bound, generator=g))
        b0.append(torch.empty(n_classes).uniform_(-bound, bound, generator=g))
        perm_gens.append(g)
    weight = torch.stack(w0).to(dev).requires_grad_()
    bias = torch.stack(b0).to(dev).requires_grad_()
    opt = torch.optim.AdamW([weight, bias], lr=cfg.lr, weight_decay=cfg.weight_decay)
    milestones = [int(cfg.epochs * f) for f in cfg.milestones]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.gamma)
    rows = torch.arange(n_rep, device=dev)[:, None]
    best_acc = torch.full((n_rep,), -1.0, device=dev)
    best_epoch = torch.zeros(n_rep, dtype=torch.long)
    best_w, best_b = weight.detach().clone(), bias.detach().clone()
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.stack([torch.randperm(n, generator=g) for g in perm_gens]).to(dev)  # (R, n)
        for start in range(0, n, cfg.batch_size):
            idx = perm[:, start : start + cfg.batch_size]
            xb, yb = x[rows, idx], y[rows, idx]  # (R, b, D), (R, b)
            logits = torch.baddbmm(bias[:, None, :], xb, weight)  # (R, b, C)
            # Sum over repeats of each repeat's mean loss: gradients stay per repeat.
            loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(n_rep, -1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if val is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            with torch.no_grad():
                acc = _accuracy(weight, bias, *val)
                better = acc > best_acc
                best_acc = torch.where(better, acc, best_acc)
                best_epoch[better.cpu()] = epoch
                best_w[better], best_b[better] = weight[better], bias[better]
    out: dict[str, Any] = {"weight": weight.detach(), "bias": bias.detach()}
    if val is not None:
        out.update(weight=best_w, bias=best_b, val_acc=best_acc.cpu(), best_epoch=best_epoch)
    return out


@dataclass
class SweepResult:
    """Rows per (size, repeat) and their mean/std per size; ``to_dict()`` is what probe.json stores."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    sizes: list[int]
    requested_sizes: list[int]
    max_per_class: int
    n_classes: int
    repeats: int
    subset: str
    val_size: int
    selection: str  # "fixed_epochs" or "val_acc"
    probe: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std (0 for one repeat) of every ``*_acc`` field, per size."""
    out = []
    for size in sorted({r["size"] for r in rows}):
        group = [r for r in rows if r["size"] == size]
        entry: dict[str, Any] = {"size": size, "repeats": len(group)}
        for key in sorted({k for r in group for k in r if k.endswith("_acc")}):
            vals = torch.tensor([float(r[key]) for r in group if r.get(key) is not None], dtype=torch.float64)
            if vals.numel():
                entry[f"{key}_mean"] = float(vals.mean())
                entry[f"{key}_std"] = float(vals.std()) if vals.numel() > 1 else 0.0
        out.append(entry)
    return out


def _class_index(labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Map label values to 0..C-1 (labels outside ``classes`` become -1)."""
    lut = torch.full((int(max(classes)) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    safe = labels.clamp(0, lut.numel() - 1)
    return torch.where((labels >= 0) & (labels < lut.numel()), lut[safe], torch.full_like(labels, -1))


def probe_sweep(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES,
    repeats: int = 3,
    subset: str = "random",
    val_fraction: float = 0.0,
    seed: int = 0,
    cfg: ProbeConfig | None = None,
    knn_k: int | None = None,
    plan: SubsetPlan | None = None,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Probe accuracy against images per class.

    train_feats: ``(N, D) float``, train_labels: ``(N,) int64``; test_feats ``(M, D)``,
    test_labels ``(M,)``. Each row: ``{size, repeat, n_train, train_acc, test_acc}``, plus
    ``val_acc``/``best_epoch`` with a validation split and ``knn_acc`` (cosine, k=knn_k, the
    labelled subset as memory bank) when ``knn_k`` is set. Pass ``plan`` to reuse the exact
    subsets of another sweep (the random-init baseline does). ``progress(done, total)`` is called
    after each size (all its repeats) is fitted and evaluated.
    """
    cfg = (cfg or ProbeConfig()).validate()
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"features must be (N, D) with equal D, got {tuple(train_feats.shape)}, {tuple(test_feats.shape)}"
        )
    plan = plan or make_plan(train_labels, sizes, repeats, subset, val_fraction, seed)
    dev = (
        torch.device(device)
        if device is not None
        else (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    )
    x_all = train_feats.to(dev, torch.float32)
    y_all = _class_index(train_labels.cpu().long(), plan.classes).to(dev)
    test_y = _class_index(test_labels.cpu().long(), plan.classes).to(dev)
    keep = test_y >= 0  # test images of classes absent from training cannot be predicted
    if not bool(keep.any()):
        raise ConfigError("the test split shares no class with the training split")
    x_test, y_test = test_feats.to(dev, torch.float32)[keep], test_y[keep]
    val = (x_all[plan.val_idx.to(dev)], y_all[plan.val_idx.to(dev)]) if plan.val_idx.numel() else None
    n_classes = len(plan.classes)
    rows: list[dict[str, Any]] = []

    def sweep() -> None:
        for done, size in enumerate(plan.sizes, 1):
            idx = torch.stack([plan.subsets[(size, r)] for r in range(plan.repeats)]).to(dev)  # (R, n)
            x, y = x_all[idx], y_all[idx]
            seeds = [seed * 1_000_003 + size * 101 + r for r in range(plan.repeats)]
            fit = train_linear(x, y, n_classes, cfg, seeds, val)
            with torch.no_grad():
                test_acc = _accuracy(fit["weight"], fit["bias"], x_test, y_test).cpu()
                train_acc = torch.stack(
                    [
                        _accuracy(fit["weight"][r : r + 1], fit["bias"][r : r + 1], x[r], y[r])[0]
                        for r in range(plan.repeats)
                    ]
                ).cpu()
            for r in range(plan.repeats):
                row: dict[str, Any] = {
                    "size": size,
                    "repeat": r,
                    "n_train": int(idx.shape[1]),
                    "train_acc": float(train_acc[r]),
                    "test_acc": float(test_acc[r]),
                }
                if val is not None:
                    row["val_acc"] = float(fit["val_acc"][r])
                    row["best_epoch"] = int(fit["best_epoch"][r])
                if knn_k:
                    row["knn_acc"] = knn_accuracy(
                        x[r], y[r], x_test, y_test, k=min(knn_k, int(idx.shape[1])), num_classes=n_classes
                    )
                rows.append(row)
            if progress is not None:
                progress(done, len(plan.sizes))

    on_one_cpu_thread(dev, sweep)
    return SweepResult(
        rows=rows,
        summary=summarise(rows),
        sizes=plan.sizes,
        requested_sizes=plan.requested,
        max_per_class=plan.max_per_class,
        n_classes=n_classes,
        repeats=plan.repeats,
        subset=plan.subset,
        val_size=int(plan.val_idx.numel()),
        selection="val_acc" if val is not None else "fixed_epochs",
        probe={**asdict(cfg), "milestones": list(cfg.milestones)},
    )
