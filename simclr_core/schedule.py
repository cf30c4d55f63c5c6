"""The learning-rate schedule: linear warm-up, then cosine annealing to lr/50, over epochs or a time budget.

With ``--epochs`` alone the cosine spans the planned optimiser steps (the seed's schedule, per step).
With a time budget (``--max-minutes``) it spans the budget instead: progress is the training time
used so far over the budget, so the run ends annealed exactly when its time is up, whatever the
machine's speed. (Re-estimating a step count from the measured rate would do the same but drifts when
the rate changes, e.g. when validation or another process takes the CPU for a while.) The training
time is saved in checkpoints, so a resumed run continues its schedule where it stopped.
"""

from __future__ import annotations

import math
import time

FINAL_RATIO = 1 / 50  # the seed's eta_min = lr / 50


def cosine(progress: float, final_ratio: float = FINAL_RATIO) -> float:
    """Cosine from 1 at progress 0 down to ``final_ratio`` at progress >= 1."""
    t = min(1.0, max(0.0, progress))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def cosine_warmup_factor(step: int, total_steps: int, warmup_steps: int, final_ratio: float = FINAL_RATIO) -> float:
    """lr multiplier at optimiser step ``step``: linear warm-up, then cosine from 1 down to ``final_ratio``.

    The seed anneals per epoch with ``CosineAnnealingLR(T_max=max_epochs, eta_min=lr/50)``; we anneal per
    step to the same floor over the same number of epochs, which is smoother for short runs.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return cosine((step - warmup_steps) / span, final_ratio)


def budget_factor(step: int, time_fraction: float, warmup_steps: int, final_ratio: float = FINAL_RATIO) -> float:
    """lr multiplier under a time budget: the warm-up ramp (in steps) times the cosine of the budget used."""
    ramp = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return ramp * cosine(time_fraction, final_ratio)


class TrainingClock:
    """Seconds of training so far, summed over every session of a run (a resume adds to it)."""

    def __init__(self, budget_s: float | None = None, previous_s: float = 0.0) -> None:
        self.budget_s = budget_s
        self.previous_s = previous_s
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.monotonic()

    @property
    def started(self) -> bool:
        return self._started is not None

    def elapsed(self) -> float:
        current = time.monotonic() - self._started if self._started is not None else 0.0
        return self.previous_s + current

    def fraction(self) -> float:
        """Share of the budget used, in [0, 1]; 0 without a budget."""
        if not self.budget_s:
            return 0.0
        return min(1.0, self.elapsed() / self.budget_s)

    def remaining(self) -> float | None:
        if not self.budget_s:
            return None
        return max(0.0, self.budget_s - self.elapsed())

    def expired(self) -> bool:
        return bool(self.budget_s) and self.elapsed() >= self.budget_s
