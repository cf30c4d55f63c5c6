"""STL10 and CIFAR-10 through torchvision's archive definitions (URL, md5, layout).

Downloads go to ``<root>/torchvision`` through :func:`simclr_core.downloads.download` (progress through
the callback, which the CLI draws as a tqdm bar on stderr), a network timeout, and one clear message when
the machine is offline.
An archive copied there by hand (e.g. from another machine) is verified and used as is.
STL10 is read straight from its binary files via a memory map, chunk by chunk, so the 2.8 GB
unlabelled split is never held in RAM twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets import CIFAR10, STL10
from torchvision.datasets.utils import check_integrity, extract_archive

from simclr_core import downloads
from simclr_core.data.spec import DatasetError
from simclr_core.units import human_bytes

Progress = Callable[[str, float], None] | None

SOURCES = {
    "stl10": {"cls": STL10, "title": "STL-10", "download_size": "2.6 GB", "native": 96},
    "cifar10": {"cls": CIFAR10, "title": "CIFAR-10", "download_size": "163 MB", "native": 32},
}
TIMEOUT_S = 30.0
_CHUNK = 1 << 20


def raw_dir(root: Path) -> Path:
    return root / "torchvision"


def _files(name: str) -> list[str]:
    cls = SOURCES[name]["cls"]
    return [f for f, _ in cls.train_list + cls.test_list]


def is_downloaded(name: str, root: Path) -> bool:
    """Extracted files present (checked by name only; md5 was verified when extracted)."""
    folder = raw_dir(root) / SOURCES[name]["cls"].base_folder
    return all((folder / f).is_file() for f in _files(name))


def _offline_message(name: str, url: str, reason: object, root: Path) -> str:
    cls = SOURCES[name]["cls"]
    return (
        f"could not download {SOURCES[name]['title']} from {url} ({reason}); this machine seems to be offline. "
        f"Either copy {cls.filename} ({SOURCES[name]['download_size']}) into {raw_dir(root)}/ and try again "
        "(it is verified and extracted from there), or use a local image folder / .zip / .tar.gz path, "
        "or the built-in offline dataset 'shapes'"
    )


def _download(name: str, root: Path, target: Path, progress: Progress) -> None:
    cls = SOURCES[name]["cls"]
    url = cls.url
    title = SOURCES[name]["title"]
    try:
        downloads.download(url, target, title, progress, timeout=TIMEOUT_S, chunk=_CHUNK)
    except downloads.HTTPStatus as err:
        raise DatasetError(
            f"could not download {title} from {url}: the server answered HTTP {err.code} {err.reason}. "
            f"Try again later, or copy {cls.filename} into {raw_dir(root)}/ by hand"
        ) from None
    except downloads.Offline as err:
        raise DatasetError(_offline_message(name, url, err.reason, root)) from None
    except downloads.Incomplete as err:
        raise DatasetError(
            f"the download of {title} from {url} stopped at {human_bytes(err.got)} of {human_bytes(err.total)}; "
            "try again (the connection ended early)"
        ) from None
    except downloads.NotSaved as err:
        raise DatasetError(
            f"could not save the {title} download to {err.part}: {err}. Is the disk full or read-only?"
        ) from None


def ensure_downloaded(name: str, root: Path, progress: Progress = None) -> Path:
    """Download (if needed), verify and extract; returns the extracted folder."""
    cls = SOURCES[name]["cls"]
    folder = raw_dir(root) / cls.base_folder
    if is_downloaded(name, root):
        return folder
    raw_dir(root).mkdir(parents=True, exist_ok=True)
    archive = raw_dir(root) / cls.filename
    if not archive.is_file():
        _download(name, root, archive, progress)
    if progress is not None:
        progress(f"verifying {archive.name}", 0.0)
    if not check_integrity(str(archive), cls.tgz_md5):
        raise DatasetError(
            f"{archive} is incomplete or damaged (md5 mismatch); delete it and try again, or copy a good copy there"
        )
    if progress is not None:
        progress(f"extracting {archive.name}", 0.0)
    try:
        extract_archive(str(archive), str(raw_dir(root)))
    except (OSError, EOFError) as err:
        raise DatasetError(f"could not extract {archive}: {err}. Is the disk full?") from None
    if not is_downloaded(name, root):
        raise DatasetError(f"{archive} did not contain the expected files {', '.join(_files(name))}")
    return folder


def resize_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """(B, 3, h, w) uint8 square images -> (B, 3, size, size) uint8 (antialiased bilinear)."""
    if batch.shape[-1] == size and batch.shape[-2] == size:
        return batch
    x = torch.from_numpy(np.ascontiguousarray(batch)).float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).numpy()


def _stl_parts(folder: Path, split: str) -> list[tuple[str, str | None]]:
    return {
        "unlabeled": [("unlabeled_X.bin", None)],
        "train": [("train_X.bin", "train_y.bin")],
        "test": [("test_X.bin", "test_y.bin")],
        "train+unlabeled": [("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)],
    }[split]


_CIFAR_SIZES = {"train": 50000, "test": 10000}


def split_size(name: str, split: str, root: Path) -> int:
    """Image count of a downloaded split, without reading the pixels."""
    if name == "cifar10":
        return _CIFAR_SIZES[split]
    folder = raw_dir(root) / SOURCES[name]["cls"].base_folder
    return sum((folder / x).stat().st_size // (3 * 96 * 96) for x, _ in _stl_parts(folder, split))


def fill(name: str, split: str, root: Path, out: np.ndarray, progress: Progress = None) -> tuple[np.ndarray, list[str]]:
    """Write every image of the split into ``out`` (N, 3, S, S) uint8; returns labels (N,) int64 and classes."""
    folder = raw_dir(root) / SOURCES[name]["cls"].base_folder
    size = out.shape[-1]
    title = f"{SOURCES[name]['title']} {split}"
    if name == "cifar10":
        ds = CIFAR10(str(raw_dir(root)), train=split == "train", download=False)
        data = np.asarray(ds.data).transpose(0, 3, 1, 2)  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        if len(data) != len(out):
            raise DatasetError(f"{folder} holds {len(data)} {split} images, expected {len(out)}; delete it and retry")
        for start in range(0, len(data), 4096):
            out[start : start + 4096] = resize_batch(data[start : start + 4096], size)
            if progress is not None:
                progress(f"preparing {title}", min(1.0, (start + 4096) / len(data)))
        return np.asarray(ds.targets, dtype=np.int64), list(ds.classes)
    labels: list[np.ndarray] = []
    offset, total = 0, out.shape[0]
    for x_file, y_file in _stl_parts(folder, split):
        # the binary is column-major per channel: (N, 3, W, H); read in chunks, never whole
        per_image = 3 * 96 * 96
        count = (folder / x_file).stat().st_size // per_image
        with open(folder / x_file, "rb") as fh:
            for start in range(0, count, 2048):
                chunk = np.fromfile(fh, dtype=np.uint8, count=min(2048, count - start) * per_image)
                chunk = chunk.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
                out[offset + start : offset + start + len(chunk)] = resize_batch(chunk, size)
                if progress is not None:
                    progress(f"preparing {title}", min(1.0, (offset + start + len(chunk)) / total))
        if y_file is None:
            labels.append(np.full(count, -1, dtype=np.int64))
        else:
            labels.append(np.fromfile(folder / y_file, dtype=np.uint8).astype(np.int64) - 1)
        offset += count
    classes = (folder / "class_names.txt").read_text().split()
    return np.concatenate(labels), classes
