"""The duration estimate shown before Start: measured steps, scaled to data and epochs, capped by a budget."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simclr_core.config import METHODS, TrainConfig, fast_recipe
from simclr_core.estimate import Estimate, estimate, human_duration


def test_estimate_scales_with_images_epochs_and_the_budget() -> None:
    e = Estimate(seconds_per_image=0.01, images=1000, epochs=500, budget_s=None, device="cpu")
    assert e.epoch_s == pytest.approx(10.0) and e.total_s == pytest.approx(5000.0)
    capped = replace(e, budget_s=300.0)
    assert capped.total_s == 300.0 and capped.epochs_within_budget == pytest.approx(30.0)
    assert capped.planned_s == pytest.approx(5000.0)


def test_the_seed_settings_cost_far_more_per_image_than_the_fast_recipe() -> None:
    """96 px carries 9x the pixels of 32 px: the measured step must show it (not a constant guess)."""
    seed = estimate(TrainConfig(precision="32"), images=1000, steps=1)
    fast = estimate(replace(fast_recipe(), precision="32"), images=1000, steps=1)
    assert seed.seconds_per_image > 3 * fast.seconds_per_image > 0
    assert fast.total_s == pytest.approx(300.0)  # the recipe's 5-minute budget ends the run
    assert seed.total_s == pytest.approx(seed.seconds_per_image * 1000 * 500)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_times_its_own_step(method: str) -> None:
    """BYOL's predictor and target, supcon's labels: the timed step is the method's, not always InfoNCE."""
    config = replace(fast_recipe(), method=method, precision="32", batch_size=8)
    assert estimate(config, images=100, steps=1).seconds_per_image > 0


def test_human_duration() -> None:
    assert human_duration(45) == "45 s"
    assert human_duration(12 * 60) == "12 min"
    assert human_duration(3.4 * 3600) == "3.4 h"
    assert human_duration(67 * 3600) == "2.8 days"
