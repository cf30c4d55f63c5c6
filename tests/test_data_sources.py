"""Spec parsing, torchvision sources (offline message, STL10 binary reader), catalogue and the `data` CLI."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from simclr_core.__main__ import main
from simclr_core.data import (
    DatasetError,
    ImageSet,
    available_datasets,
    describe,
    load_dataset,
    parse_spec,
    sibling_spec,
)

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-train.tar.gz"


def test_parse_spec_defaults_and_options(tmp_path):
    assert parse_spec("shapes").split == "unlabeled" and parse_spec("shapes").params == {"seed": 0}
    assert parse_spec("SHAPES:Train?n=7&seed=3").params == {"n": 7, "seed": 3}
    assert parse_spec("shapes:train?n=500").canonical == parse_spec("shapes:train").canonical
    assert parse_spec("stl10").split == "unlabeled" and parse_spec("cifar10").split == "train"
    assert parse_spec("stl10:train+unlabeled").split == "train+unlabeled"
    spec = parse_spec(f"{tmp_path}?split=test&test_fraction=0.3")
    assert spec.kind == "path" and spec.split == "test" and spec.params == {"test_fraction": 0.3, "seed": 0}
    assert parse_spec(str(tmp_path)).split == "all"
    assert sibling_spec("shapes:unlabeled?n=50&seed=2", "train") == "shapes:train?seed=2"
    assert parse_spec(sibling_spec(str(tmp_path), "test")).split == "test"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty dataset spec"),
        ("shapes:validation", "no split 'validation'"),
        ("cifar10:unlabeled", "no split 'unlabeled'"),
        ("shapes?size=3", "unknown option 'size'"),
        ("shapes:train?n=zero", "n must be an integer"),
        ("shapes:train?n=0", "n must be >= 1"),
        ("stl10?n=5", "unknown option 'n'"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(DatasetError, match=message):
        parse_spec(spec)


def test_bad_split_options_and_sizes(tmp_path):
    with pytest.raises(DatasetError, match="strictly between 0 and 1"):
        parse_spec(f"{tmp_path}?split=test&test_fraction=1.5")
    with pytest.raises(DatasetError, match="split must be one of"):
        parse_spec(f"{tmp_path}?split=val")
    with pytest.raises(DatasetError, match="image size"):
        load_dataset("shapes:train?n=1", image_size=2, root=tmp_path)


def _online() -> bool:
    try:
        socket.getaddrinfo("www.cs.toronto.edu", 443)
    except OSError:
        return False
    return True


@pytest.mark.timeout(60)
def test_offline_download_fails_fast_with_one_clear_message(tmp_path):
    if _online():
        pytest.skip("this machine is online: the offline message cannot be observed without downloading CIFAR-10")
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10:test", image_size=32, root=tmp_path)
    text = str(info.value)
    assert "could not download CIFAR-10 from https://" in text and "offline" in text
    assert str(tmp_path / "torchvision") in text and "cifar-10-python.tar.gz" in text and "shapes" in text
    assert not list((tmp_path / "torchvision").glob("*.part"))


def test_damaged_archive_copied_by_hand_is_refused(tmp_path):
    raw = tmp_path / "torchvision"
    raw.mkdir()
    (raw / "cifar-10-python.tar.gz").write_bytes(b"not really an archive")
    with pytest.raises(DatasetError, match="incomplete or damaged"):
        load_dataset("cifar10", image_size=32, root=tmp_path)


def _write_stl_binary(root: Path) -> None:
    """A tiny STL10 in its real on-disk format: uint8 (N, 3, 96, 96) stored column-major, labels 1-based."""
    folder = root / "torchvision" / "stl10_binary"
    folder.mkdir(parents=True)

    def images(n: int, shade: int) -> np.ndarray:
        x = np.zeros((n, 3, 96, 96), np.uint8)
        x[:, 0, :48] = 200  # red top half
        x[:, 2, 48:] = 200  # blue bottom half
        x[:, 1] = shade + np.arange(n, dtype=np.uint8)[:, None, None]
        return np.ascontiguousarray(x.transpose(0, 1, 3, 2))

    images(4, 10).tofile(folder / "train_X.bin")
    np.array([1, 2, 10, 1], np.uint8).tofile(folder / "train_y.bin")
    images(2, 50).tofile(folder / "test_X.bin")
    np.array([3, 4], np.uint8).tofile(folder / "test_y.bin")
    images(3, 90).tofile(folder / "unlabeled_X.bin")
    names = "airplane bird car cat deer dog horse monkey ship truck"
    (folder / "class_names.txt").write_text("\n".join(names.split()) + "\n")


def test_stl10_binary_is_read_upright_with_labels(tmp_path):
    _write_stl_binary(tmp_path)
    train = load_dataset("stl10:train", image_size=96, root=tmp_path)
    assert train.labels.tolist() == [0, 1, 9, 0] and train.classes[9] == "truck"
    top, bottom = train.images[:, :, :40].float().mean((0, 2, 3)), train.images[:, :, 56:].float().mean((0, 2, 3))
    assert top[0] > 150 and top[2] < 20 and bottom[2] > 150 and bottom[0] < 20
    assert train.images[:, 1, 0, 0].tolist() == [10, 11, 12, 13]
    small = load_dataset("stl10:train", image_size=32, root=tmp_path)
    assert small.images.shape == (4, 3, 32, 32) and small.images[:, 0, :12].float().mean() > 150
    both = load_dataset("stl10:train+unlabeled", image_size=32, root=tmp_path)
    assert both.labels.tolist() == [0, 1, 9, 0, -1, -1, -1]
    assert len(load_dataset("stl10", image_size=32, root=tmp_path)) == 3
    rows = {r["spec"]: r for r in available_datasets(tmp_path)}
    assert rows["stl10:train"]["status"] == "downloaded" and rows["stl10:train"]["cached_sizes"] == [32, 96]
    assert rows["cifar10:train"]["status"] == "not downloaded"


def test_available_datasets_lists_shapes_and_cached_folders(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (10, 10), (i, 0, 0)).save(folder / f"{i}.png")
    load_dataset(str(folder), image_size=16, root=tmp_path)
    rows = available_datasets(tmp_path)
    shapes = [r for r in rows if r["kind"] == "shapes"]
    assert {r["split"] for r in shapes} == {"unlabeled", "train", "test"}
    assert all(r["status"] == "built-in" for r in shapes)
    cached = [r for r in rows if r["kind"] == "path"]
    assert len(cached) == 1 and cached[0]["spec"] == str(folder) and cached[0]["images"] == 3


def test_describe_and_imageset_helpers(tmp_path):
    info = describe("shapes:train?n=2", image_size=16, root=tmp_path)
    assert info["images"] == 20 and info["labelled"] and info["resolution"] == [3, 16, 16]
    assert info["per_class"]["star"] == 2 and info["memory_bytes"] == 20 * 3 * 16 * 16 + 20 * 8
    assert info["splits"] == ["unlabeled", "train", "test"] and Path(info["cache_path"]).is_dir()
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(images=torch.zeros(2, 3, 4, 4), labels=torch.zeros(2, dtype=torch.int64), classes=[], spec="x")


def test_data_command_prints_the_summary(tmp_path, capsys):
    assert main(["data", "--data", "shapes:test?n=3", "--image-size", "16", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "30 (labelled)" in out and "3 x 16 x 16" in out and "memory" in out and str(tmp_path) in out
    assert "crescent  3" in out


def test_data_command_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "--data", "shapes:nope", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'shapes' has no split 'nope'") and "Traceback" not in err


def test_data_command_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--image-size", "--data-root", "SIMCLR_STUDIO_DATA", "shapes", "test_fraction"):
        assert flag in out


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="shared CIFAR-10 JPEG archive not present")
@pytest.mark.timeout(120)
def test_shared_cifar_archive_decodes_5000_per_class():
    data = load_dataset(str(SHARED_CIFAR), image_size=32)
    assert len(data) == 50000 and data.images.shape[1:] == (3, 32, 32)
    assert set(data.per_class_counts().values()) == {5000} and "airplane" in data.classes
    assert data.mapped and data.warnings == []
