"""Fault injection, data: FIFOs, devices, links out of the folder, dangling links, zip bombs and pixel bombs.

Every bad entry is skipped with its reason and the good images still load; nothing hangs and
memory stays bounded (the slow test measures peak RSS of each bomb in a fresh process).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simclr_core.data import DatasetError, load_dataset
from simclr_core.data.bounded import MAX_FILE_BYTES
from simclr_core.data.decode import DecodeError, decode_image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)  # a FIFO that is opened for reading would hang forever


def good_png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def pixel_bomb_png(side: int = 12000) -> bytes:
    """A real ``side`` x ``side`` grayscale PNG of zeros: ~0.5 MB on disk, 144 Mpx when decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zip_bomb(path: Path, member_bytes: int) -> Path:
    """A zip whose one member inflates to ``member_bytes`` zeros (deflate: ~1000x smaller)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb.png", "w", force_zip64=True) as fh:
        block = bytes(2**20)
        for _ in range(member_bytes // 2**20):
            fh.write(block)
    return path


def hostile_folder(root: Path) -> Path:
    folder = root / "hostile"
    folder.mkdir()
    for i in range(3):
        (folder / f"good{i}.png").write_bytes(good_png(i))
    os.mkfifo(folder / "fifo.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    outside = root / "secret.png"
    outside.write_bytes(good_png(9))
    (folder / "outside.png").symlink_to(outside)
    (folder / "gone.png").symlink_to(folder / "nothing-here.png")
    (folder / "inside.png").symlink_to(folder / "good0.png")  # a link within the folder is fine
    (folder / "pixels.png").write_bytes(pixel_bomb_png())
    (folder / "huge.png").write_bytes(b"\x89PNG" + bytes(MAX_FILE_BYTES))  # sparse-ish, over the per-file cap
    return folder


def test_a_hostile_folder_loads_its_good_images_and_says_why_it_skipped_the_rest(tmp_path: Path) -> None:
    folder = hostile_folder(tmp_path)
    data = load_dataset(str(folder), image_size=16)
    assert data.images.shape[0] == 4  # good0..2 and the in-folder link
    reasons = {w.split(":")[0].removeprefix("skipped "): w for w in data.warnings}
    assert "not a regular file" in reasons["fifo.png"] and "outside the folder" in reasons["zero.png"]
    assert "outside the folder" in reasons["outside.png"] and "dangling" in reasons["gone.png"]
    assert "too large to decode safely (144 Mpx" in reasons["pixels.png"]
    assert "file too large" in reasons["huge.png"]
    assert not any("secret" in w for w in data.warnings)


def test_a_folder_of_only_refused_entries_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    os.mkfifo(folder / "a.png")
    (folder / "b.png").symlink_to("/dev/zero")
    with pytest.raises(DatasetError, match="2 refused, e.g. a.png: not a regular file"):
        load_dataset(str(folder), image_size=16)


def test_archives_refuse_oversized_and_special_members_before_reading(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", MAX_FILE_BYTES + 2**20)
    assert bomb.stat().st_size < 2**20
    with zipfile.ZipFile(bomb, "a") as zf:
        for i in range(3):
            zf.writestr(f"good{i}.png", good_png(i))
    data = load_dataset(str(bomb), image_size=16)
    assert data.images.shape[0] == 3
    assert any(w.startswith("skipped bomb.png: file too large") for w in data.warnings), data.warnings

    tar_path = tmp_path / "odd.tar"
    with tarfile.open(tar_path, "w") as tf:
        for i in range(3):
            info = tarfile.TarInfo(f"good{i}.png")
            body = good_png(i)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
        for name, kind in (("fifo.png", tarfile.FIFOTYPE), ("link.png", tarfile.SYMTYPE), ("dev.png", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/dev/zero"
            tf.addfile(info)
    data = load_dataset(str(tar_path), image_size=16)
    assert data.images.shape[0] == 3
    assert sum("not a regular file" in w for w in data.warnings) == 3, data.warnings


def test_pixel_cap_and_bomb_warning_are_errors() -> None:
    with pytest.raises(DecodeError, match="144 Mpx; at most 40 Mpx"):
        decode_image(pixel_bomb_png(), 32)
    with pytest.raises(DecodeError, match="7000 x 7000 = 49 Mpx"):  # over 40 Mpx, under Pillow's own limit
        decode_image(pixel_bomb_png(7000), 32)
    assert decode_image(pixel_bomb_png(4000), 32).shape == (32, 32, 3)  # 16 Mpx: allowed


MEASURE = """
import json, resource, sys
from simclr_core.data import DatasetError, load_dataset
def peak_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak_mb()
try:
    data = load_dataset(sys.argv[1], image_size=32)
    outcome = f"{data.images.shape[0]} images; " + "; ".join(data.warnings)
except DatasetError as err:
    outcome = f"refused: {err}"
print(json.dumps({"over_baseline_mb": peak_mb() - base, "outcome": outcome}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["zip_bomb_400MB", "dev_zero_link", "png_12000x12000"])
def test_peak_memory_of_each_bomb_stays_under_300_mb(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "ok.png").write_bytes(good_png(0))
    (folder / "ok2.png").write_bytes(good_png(1))
    if case == "zip_bomb_400MB":
        source = zip_bomb(tmp_path / "bomb.zip", 400 * 2**20)
        with zipfile.ZipFile(source, "a") as zf:
            zf.writestr("ok.png", good_png(0))
            zf.writestr("ok2.png", good_png(1))
    elif case == "dev_zero_link":
        (folder / "zero.png").symlink_to("/dev/zero")
        source = folder
    else:
        (folder / "big.png").write_bytes(pixel_bomb_png())
        source = folder
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(source)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(case, f"{result['over_baseline_mb']:.0f} MB over baseline:", result["outcome"])
    assert result["over_baseline_mb"] < 300, result
    assert result["outcome"].startswith("2 images"), result
