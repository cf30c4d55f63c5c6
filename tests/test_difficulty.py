"""The difficulty meter and the lineup on real tiny data, with real encoders (random init and the tiny run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from simclr_core.config import ConfigError, augmentation_preset
from simclr_core.data import load_dataset
from simclr_core.difficulty import batch_indices, lineup, load_encoder, measure
from simclr_core.features import RandomInit
from simclr_core.loss import info_nce

SPEC = "shapes:train?n=10"  # 100 labelled images


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_dataset(SPEC, image_size=32).images[:64].contiguous()


@pytest.fixture(scope="module")
def random_encoder():
    return load_encoder(RandomInit("resnet10", False, 32))


def test_a_random_encoder_finds_identical_views(images, random_encoder) -> None:
    reading = measure(random_encoder, images, augmentation_preset("none", 32), seed=0)
    assert reading.top1 == 1.0 and reading.top5 == 1.0 and reading.mean_pos == 1.0
    assert reading.views.shape == (128, 3, 32, 32) and reading.z.shape[0] == 128
    shown = lineup(reading, 3)
    assert shown.rank == 1 and shown.positive.similarity == pytest.approx(1.0, abs=1e-5)
    assert shown.nearest[0].positive and shown.nearest[0].row == 64 + 3
    assert shown.candidates == 127 and len(shown.nearest) == 8


def test_augmented_views_are_harder_for_a_random_encoder(images, random_encoder) -> None:
    easy = measure(random_encoder, images, augmentation_preset("none", 32), seed=0)
    hard = measure(random_encoder, images, augmentation_preset("simclr", 32), seed=0)
    assert hard.loss > easy.loss + 0.5
    assert hard.top1 < 0.5 < easy.top1


def test_a_fixed_seed_gives_the_same_reading_and_a_slider_changes_it(images, random_encoder) -> None:
    cfg = augmentation_preset("tutorial", 32)
    a, b = measure(random_encoder, images, cfg, seed=5), measure(random_encoder, images, cfg, seed=5)
    assert (a.loss, a.top1, a.top5, a.mean_pos) == (b.loss, b.top1, b.top5, b.mean_pos)
    moved = measure(random_encoder, images, replace(cfg, jitter_brightness=1.5), seed=5)
    assert moved.loss != a.loss


def test_the_lineups_add_up_to_the_meters_ranks(images, random_encoder) -> None:
    """Every anchor's lineup rank, averaged, is the meter's mean rank; rank 1 shares are its top-1."""
    reading = measure(random_encoder, images, augmentation_preset("tutorial", 32), seed=1)
    n = reading.n_images
    ranks = [lineup(reading, i, view=v).rank for v in (0, 1) for i in range(n)]
    assert np.mean(ranks) == pytest.approx(reading.mean_pos, abs=1e-4)
    assert np.mean([r == 1 for r in ranks]) == pytest.approx(reading.top1, abs=1e-6)
    assert np.mean([r <= 5 for r in ranks]) == pytest.approx(reading.top5, abs=1e-6)
    loss, _ = info_nce(reading.z, reading.temperature)
    assert float(loss) == pytest.approx(reading.loss, rel=1e-4)
    shown = lineup(reading, 0, k=8)
    sims = [m.similarity for m in shown.nearest]
    assert sims == sorted(sims, reverse=True) and shown.anchor not in [m.row for m in shown.nearest]
    assert shown.positive.positive and shown.positive.image == 0 and shown.positive.view == 1
    if shown.rank <= 8:
        assert shown.nearest[shown.rank - 1].positive
    else:
        assert not any(m.positive for m in shown.nearest)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a short real run: ResNet-10 at 32 px, 128 images, 3 epochs of 4 steps, temperature 0.2."""
    from simclr_core.config import TrainConfig
    from simclr_core.train import train

    config = TrainConfig(
        data="shapes:unlabeled",
        val_data=SPEC,
        image_size=32,
        backbone="resnet10",
        limit_images=128,
        batch_size=32,
        epochs=3,
        lr=2e-3,
        temperature=0.2,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        snapshots=0,
        seed=0,
    )
    run = train(config, tmp_path_factory.mktemp("meter_runs"), name="meter")
    return run.path / "checkpoints" / "last.ckpt"


def test_stronger_augmentations_are_harder_for_a_trained_encoder(trained: Path, images) -> None:
    encoder = load_encoder(trained)
    assert encoder.image_size == 32 and encoder.temperature == pytest.approx(0.2)
    losses = [measure(encoder, images, augmentation_preset(name, 32), seed=0).loss for name in ("none", "baseline")]
    strong = replace(augmentation_preset("simclr", 32), crop_scale=(0.08, 0.3))
    losses.append(measure(encoder, images, strong, seed=0).loss)
    assert losses == sorted(losses), losses


def test_the_batch_starts_with_the_preview_images_then_a_fixed_draw() -> None:
    idx = batch_indices(100, [7, 3, 7, 250], size=10, seed=0)
    assert list(idx[:2]) == [7, 3] and len(idx) == 10 and len(set(idx.tolist())) == 10
    assert list(batch_indices(100, [7, 3], size=10, seed=0)) == list(idx)
    assert len(batch_indices(5, [], size=256)) == 5


def test_too_few_images_and_an_image_outside_the_batch_are_refused(images, random_encoder) -> None:
    with pytest.raises(ConfigError, match="at least 2 images"):
        measure(random_encoder, images[:1], augmentation_preset("none", 32))
    reading = measure(random_encoder, images[:4], augmentation_preset("none", 32))
    with pytest.raises(ConfigError, match="outside the batch"):
        lineup(reading, 4)


def test_the_meter_leaves_nothing_that_breaks_a_later_training_step(random_encoder) -> None:
    """The dashboard measures, then may train in the same process: cached tensors must work under autograd."""
    from simclr_core.model import SimCLRNet

    measure(random_encoder, torch.zeros(4, 3, 32, 32, dtype=torch.uint8), augmentation_preset("none", 32))
    net = SimCLRNet("resnet10", 128, False)
    _, z = net(torch.randn(4, 3, 32, 32))
    z.sum().backward()
    assert net.backbone.layer4[0].conv1.weight.grad is not None
