"""The built-in shapes dataset: deterministic, balanced, any resolution, cached, colour shortcut present."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr_core.data import SHAPE_CLASSES, load_dataset
from simclr_core.data import shapes as shapes_mod


def test_same_seed_same_images_other_seed_other_images(tmp_path):
    a = load_dataset("shapes:train?n=4&seed=1", image_size=32, root=tmp_path / "a")
    b = load_dataset("shapes:train?n=4&seed=1", image_size=32, root=tmp_path / "b")
    c = load_dataset("shapes:train?n=4&seed=2", image_size=32, root=tmp_path / "a")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_default_split_sizes_and_balance():
    # parameters only (no rendering): the STL10-like defaults
    unl = shapes_mod.sample_params("unlabeled")["label"]
    assert unl.numel() == 10000
    for split, per_class in (("train", 500), ("test", 800)):
        labels = shapes_mod.sample_params(split)["label"]
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10
    # unlabeled classes are drawn uniformly: every class well represented
    assert torch.bincount(unl, minlength=10).min() > 800


def test_loaded_splits_labels_and_counts():
    train = load_dataset("shapes:train?n=6", image_size=32)
    assert train.images.shape == (60, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.labelled
    assert train.classes == SHAPE_CLASSES and len(set(SHAPE_CLASSES)) == 10
    assert set(train.per_class_counts().values()) == {6}
    unl = load_dataset("shapes:unlabeled?n=25", image_size=32)
    assert len(unl) == 25 and not unl.labelled and bool((unl.labels == -1).all())
    test = load_dataset("shapes:test?n=3", image_size=32)
    assert len(test) == 30
    # splits are different images
    assert not torch.equal(train.images[:30], test.images)


def test_any_resolution_draws_the_same_scene():
    small = load_dataset("shapes:train?n=3", image_size=32).images.float()
    big = load_dataset("shapes:train?n=3", image_size=80).images
    assert big.shape[-2:] == (80, 80)
    down = F.interpolate(big.float(), size=(32, 32), mode="area")
    same = (down - small).abs().mean()
    other = (down - small.roll(1, dims=0)).abs().mean()
    assert same < 10 and other > 4 * same


def test_second_load_reads_the_cache_without_rewriting(tmp_path):
    seen: list[tuple[str, float]] = []
    first = load_dataset("shapes:train?n=5", image_size=40, root=tmp_path, progress=lambda m, f: seen.append((m, f)))
    assert not first.cached and first.cache_path is not None
    assert seen and seen[-1][1] == 1.0 and "shapes:train" in seen[-1][0]
    images_file = first.cache_path / "images.npy"
    stamp = images_file.stat().st_mtime_ns
    seen.clear()
    second = load_dataset("shapes:train?n=5", image_size=40, root=tmp_path, progress=lambda m, f: seen.append((m, f)))
    assert second.cached and seen == [] and second.cache_path == first.cache_path
    assert images_file.stat().st_mtime_ns == stamp
    assert torch.equal(first.images, second.images)
    assert [p.name for p in (tmp_path / "decoded").iterdir() if p.name.startswith(".tmp")] == []
    # another size or seed is another cache entry
    assert load_dataset("shapes:train?n=5&seed=1", image_size=40, root=tmp_path).cache_path != first.cache_path


def _crops(images: torch.Tensor, side: int, g: torch.Generator) -> torch.Tensor:
    out = []
    for img in images:
        y, x = torch.randint(0, images.shape[-1] - side + 1, (2,), generator=g).tolist()
        out.append(img[:, y : y + side, x : x + side])
    return torch.stack(out)


def _colour_hist(x: torch.Tensor, bins: int = 8) -> torch.Tensor:
    q = x.long() * bins // 256
    idx = ((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]).flatten(1)
    h = torch.zeros(len(x), bins**3).scatter_add_(1, idx, torch.ones(idx.shape))
    return h / h.sum(1, keepdim=True)


def test_colour_identifies_the_image_but_not_the_class():
    """The seed's shortcut: two crops of one image share colours; colours say nothing about the shape."""
    data = load_dataset("shapes:train?n=30&seed=3", image_size=32)
    g = torch.Generator().manual_seed(0)
    a = _colour_hist(_crops(data.images, 20, g))
    b = _colour_hist(_crops(data.images, 20, g))
    identity_acc = (torch.cdist(a, b, p=1).argmin(1) == torch.arange(len(a))).float().mean().item()
    feats = _colour_hist(data.images)
    half = torch.arange(len(data)) % 2 == 0
    centroids = torch.stack([feats[half & (data.labels == c)].mean(0) for c in range(10)])
    class_acc = (torch.cdist(feats[~half], centroids).argmin(1) == data.labels[~half]).float().mean().item()
    assert identity_acc > 0.8  # 300 candidates: chance is 0.003
    assert class_acc < 0.25  # 10 classes: chance is 0.1


@pytest.mark.parametrize("cls", range(len(shapes_mod.CLASSES)))
def test_each_shape_is_drawn_inside_its_disc(cls):
    """Foreground covers part of the shape's disc and nothing outside it (no shape drawn inside out)."""
    size, radius = 128, 0.4
    p = shapes_mod.sample_params("unlabeled", 1, seed=cls)
    p.update(
        label=torch.tensor([cls]),
        cx=torch.tensor([0.5]),
        cy=torch.tensor([0.5]),
        radius=torch.tensor([radius]),
        fg=torch.tensor([[1.0, 0.0, 0.0]]),
        bg=torch.tensor([[0.0, 0.0, 1.0]]),
        shade=torch.zeros(1),
    )
    red = shapes_mod.render(p, size)[0, 0].float() / 255
    coords = (torch.arange(size) + 0.5) / size - 0.5
    dist = torch.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)
    disc = dist <= radius * 1.06  # the L's corners reach 1.04 radii
    share = red[disc].mean().item()
    assert 0.2 < share < 0.9, f"{shapes_mod.CLASSES[cls]} covers {share:.0%} of its disc"
    assert red[~disc].max().item() < 0.05, f"{shapes_mod.CLASSES[cls]} spills outside its disc"
