"""Image folders and archives in every awkward format: decoded to RGB, problems reported, splits carved."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr_core.data import DatasetError, load_dataset

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def _halves(top: tuple, bottom: tuple, size: int = 32) -> Image.Image:
    arr = np.zeros((size, size, 3), np.uint8)
    arr[: size // 2], arr[size // 2 :] = top, bottom
    return Image.fromarray(arr)


def _write_awkward(cats: Path) -> None:
    """One image per awkward mode/format; each has a known expected colour."""
    cats.mkdir(parents=True)
    Image.new("L", (24, 24), 77).save(cats / "gray.png")
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # left half transparent -> white
    rgba.paste((10, 160, 10, 255), (16, 0, 32, 32))
    rgba.save(cats / "rgba.png")
    pal = Image.new("P", (20, 20), 1)
    pal.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    pal.save(cats / "palette.gif")
    Image.fromarray(np.full((16, 16), 32896, np.uint16)).save(cats / "deep16.png")  # 32896 / 257 = 128
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(cats / "cmyk.jpg", quality=95)  # red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: the stored top becomes the right side
    _halves(RED, BLUE).save(cats / "rotated.jpg", exif=exif.tobytes(), quality=95)
    Image.new("RGB", (64, 32), GREEN).save(cats / "wide.webp", lossless=True)
    Image.new("RGB", (20, 30), BLUE).save(cats / "tall.bmp")
    Image.new("RGB", (16, 16), RED).save(cats / "plain.tiff")


def _write_dataset(root: Path) -> Path:
    _write_awkward(root / "cats")
    dogs = root / "dogs"
    dogs.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 60, 100, 50)).save(dogs / f"dog{i}.png")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(good, "JPEG")
    (dogs / "corrupt.jpg").write_bytes(good.getvalue()[:200])  # truncated JPEG
    (dogs / "fake.png").write_text("this is not a png")
    (dogs / "notes.txt").write_text("hello")
    (root / "lonely").mkdir()
    Image.new("RGB", (8, 8), RED).save(root / "lonely" / "only.png")
    (root / "empty").mkdir()
    (root / ".DS_Store").write_text("junk")
    return root


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("awkward") / "pets")


def _by_name(data, folder: Path, cls: str) -> dict[str, torch.Tensor]:
    """Images of one class keyed by file name, in the order files are sorted."""
    names = sorted(p.name for p in (folder / cls).iterdir() if p.suffix != ".txt")
    names = [n for n in names if n not in ("corrupt.jpg", "fake.png")]
    idx = (data.labels == data.classes.index(cls)).nonzero().flatten()
    assert len(idx) == len(names)
    return {n: data.images[i] for n, i in zip(names, idx.tolist(), strict=True)}


def test_every_mode_becomes_rgb_at_the_requested_size(awkward):
    data = load_dataset(str(awkward), image_size=24)
    assert data.images.shape[1:] == (3, 24, 24) and data.images.dtype == torch.uint8
    assert data.classes == ["cats", "dogs"]
    assert data.per_class_counts() == {"cats": 9, "dogs": 3}
    img = {k: v.float() for k, v in _by_name(data, awkward, "cats").items()}
    assert torch.allclose(img["gray.png"], torch.full_like(img["gray.png"], 77), atol=1)
    left, right = img["rgba.png"][:, :, :10].mean((1, 2)), img["rgba.png"][:, :, 14:].mean((1, 2))
    assert left.min() > 250  # transparent -> white
    assert right[1] > 140 and right[0] < 40  # opaque green kept
    assert (img["palette.gif"].mean((1, 2)) - torch.tensor([200.0, 30, 30])).abs().max() < 3
    assert (img["deep16.png"] - 128).abs().max() <= 1
    cmyk = img["cmyk.jpg"].mean((1, 2))
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60
    wide = img["wide.webp"].mean((1, 2))
    assert wide[1] > 180 and wide[0] < 40


def test_exif_orientation_is_applied(awkward):
    data = load_dataset(str(awkward), image_size=24)
    rot = _by_name(data, awkward, "cats")["rotated.jpg"].float()
    left, right = rot[:, :, :10].mean((1, 2)), rot[:, :, 14:].mean((1, 2))
    # stored top half red, bottom half blue; displayed rotated 90 degrees clockwise: blue left, red right
    assert left[2] > 150 and left[0] < 80
    assert right[0] > 150 and right[2] < 80
    assert rot[:, :8].float().mean((1, 2)).sub(rot[:, 16:].float().mean((1, 2))).abs().max() < 30  # not top/bottom


def test_problems_are_reported_and_skipped(awkward):
    data = load_dataset(str(awkward), image_size=24)
    text = "\n".join(data.warnings)
    assert "dogs/corrupt.jpg" in text and "corrupt or truncated" in text
    assert "dogs/fake.png" in text and "not an image" in text
    assert "dogs/notes.txt" in text and "not an image file" in text
    assert "lonely" in text and "only 1 usable image" in text
    assert "empty/" in text and "no images" in text
    assert ".DS_Store" not in text


def test_archives_with_a_wrapper_folder_match_the_folder(awkward, tmp_path):
    ref = load_dataset(str(awkward), image_size=24)
    wrapped = tmp_path / "src" / "train"
    shutil.copytree(awkward, wrapped)
    zpath = tmp_path / "pets.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(wrapped.parent.rglob("*")):
            zf.write(p, p.relative_to(wrapped.parent).as_posix())
    for name, mode in (("pets.tar", "w"), ("pets.tar.gz", "w:gz"), ("pets.tgz", "w:gz")):
        with tarfile.open(tmp_path / name, mode) as tf:
            tf.add(wrapped, arcname="train")
    for name in ("pets.zip", "pets.tar", "pets.tar.gz", "pets.tgz"):
        data = load_dataset(str(tmp_path / name), image_size=24)
        assert data.classes == ref.classes, name
        assert torch.equal(data.labels, ref.labels), name
        assert torch.equal(data.images, ref.images), name
        assert any("corrupt.jpg" in w for w in data.warnings), name


def test_flat_folder_is_unlabelled(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.new("RGB", (30, 20), (i * 40, 0, 0)).save(flat / f"{i}.jpg")
    fractions: list[float] = []
    data = load_dataset(str(flat), image_size=16, progress=lambda m, f: fractions.append(f))
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert len(data) == 5 and not data.labelled and data.classes == []
    assert bool((data.labels == -1).all())


def _numbered_folder(root: Path, classes: int = 3, per_class: int = 10) -> Path:
    """Each image is a flat colour that encodes its identity, so splits can be compared exactly."""
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 12), (c * 80, i * 20, 7)).save(root / f"c{c}" / f"{i:02d}.png")
    return root


def _ids(data) -> set[tuple[int, int]]:
    px = data.images[:, :2, 0, 0]
    return {tuple(v) for v in px.tolist()}


def test_split_carving_is_disjoint_stratified_and_deterministic(tmp_path):
    folder = _numbered_folder(tmp_path / "num")
    full = load_dataset(str(folder), image_size=12)
    train = load_dataset(f"{folder}?split=train&test_fraction=0.2&seed=0", image_size=12)
    test = load_dataset(f"{folder}?split=test&test_fraction=0.2&seed=0", image_size=12)
    assert test.per_class_counts() == {"c0": 2, "c1": 2, "c2": 2}
    assert train.per_class_counts() == {"c0": 8, "c1": 8, "c2": 8}
    assert not _ids(train) & _ids(test) and _ids(train) | _ids(test) == _ids(full)
    again = load_dataset(f"{folder}?test_fraction=0.2&split=test&seed=0", image_size=12)
    assert _ids(again) == _ids(test)
    other = load_dataset(f"{folder}?split=test&test_fraction=0.2&seed=5", image_size=12)
    assert _ids(other) != _ids(test)
    # labels follow the images into the split
    for data in (train, test):
        assert torch.equal(data.labels, (data.images[:, 0, 0, 0].long() // 80))


def test_edited_folder_is_decoded_again(tmp_path):
    folder = _numbered_folder(tmp_path / "edit", classes=2, per_class=3)
    first = load_dataset(str(folder), image_size=12)
    assert load_dataset(str(folder), image_size=12).cached
    Image.new("RGB", (12, 12), (1, 2, 3)).save(folder / "c0" / "new.png")
    second = load_dataset(str(folder), image_size=12)
    assert not second.cached and len(second) == len(first) + 1
    assert not first.cache_path.exists()  # the stale entry of the same folder is cleaned up


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "no images found"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), "no images found"),
        (lambda p: (p.mkdir(), (p / "bad.png").write_bytes(b"\x89PNG broken")), "could be decoded"),
        (
            lambda p: (
                p.mkdir(),
                (p / "a").mkdir(),
                Image.new("RGB", (8, 8)).save(p / "a" / "x.png"),
                (p / "b").mkdir(),
                Image.new("RGB", (8, 8)).save(p / "b" / "y.png"),
            ),
            "at least 2 usable images",
        ),
    ],
    ids=["empty", "only-text", "only-corrupt", "one-image-classes"],
)
def test_nothing_usable_is_a_clear_error(tmp_path, make, message):
    target = tmp_path / "data"
    make(target)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(target), image_size=16)


def test_bad_paths_and_archives_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(str(tmp_path / "missing"), image_size=16)
    (tmp_path / "photo.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not an archive"):
        load_dataset(str(tmp_path / "photo.png"), image_size=16)
    (tmp_path / "broken.zip").write_bytes(os.urandom(100))
    with pytest.raises(DatasetError, match="cannot read zip"):
        load_dataset(str(tmp_path / "broken.zip"), image_size=16)
    (tmp_path / "broken.tar.gz").write_bytes(os.urandom(100))
    with pytest.raises(DatasetError, match="cannot read tar"):
        load_dataset(str(tmp_path / "broken.tar.gz"), image_size=16)
