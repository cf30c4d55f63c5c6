"""Decoded caches and uploads stay under their caps, evicting the least recently used; the ``cache`` command.

Real entries throughout: datasets decoded by ``load_dataset`` and files written to the uploads folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from simclr_core.__main__ import main
from simclr_core.data import load_dataset, lru
from simclr_core.data.cache import decoded_dir

ENTRY = 100 * 3 * 32 * 32  # shapes:train?n=10 at 32 px: 100 images of 3 KiB


def names(root: Path) -> list[str]:
    return sorted(e.path.name.split("-")[0] + "-" + e.path.name.split("-")[1] for e in lru.entries(decoded_dir(root)))


def decode(root: Path, seed: int):
    data = load_dataset(f"shapes:train?n=10&seed={seed}", image_size=32, root=root)
    time.sleep(0.02)  # distinct last-use times
    return data


def test_decoded_caches_evict_the_least_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_CACHE_CAP_GB", f"{int(2.5 * ENTRY / 1024)}K")  # room for two entries
    first = decode(tmp_path, 1).cache_path
    second = decode(tmp_path, 2).cache_path
    assert decode(tmp_path, 1).cached  # a hit marks the first entry used: the second is now the oldest
    third = decode(tmp_path, 3).cache_path
    assert first.is_dir() and third.is_dir() and not second.exists()
    total = sum(e.size for e in lru.entries(decoded_dir(tmp_path)))
    assert ENTRY * 2 <= total <= 2.5 * ENTRY
    assert not decode(tmp_path, 2).cached  # evicted: decoded again (and the first goes now)
    assert not first.exists() and third.is_dir()


def test_the_entry_just_written_stays_even_over_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_CACHE_CAP_GB", "1K")
    decode(tmp_path, 1)
    data = decode(tmp_path, 2)
    assert [e.path for e in lru.entries(decoded_dir(tmp_path))] == [data.cache_path]
    assert data.images.shape == (100, 3, 32, 32)


def test_uploads_are_capped_and_temporary_files_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.ckpt").write_bytes(os.urandom(1000))
        os.utime(folder / f"{i}.ckpt", (100 + i, 100 + i))
    (folder / "x.tmp").write_bytes(b"being written")
    lru.touch(folder / "0.ckpt")  # used just now
    lru.write_settings(tmp_path, {"uploads": 2500})
    gone = lru.enforce(tmp_path, "uploads", keep=(folder / "1.ckpt",))
    assert sorted(p.name for p in folder.iterdir()) == ["0.ckpt", "1.ckpt", "x.tmp"]
    assert [e.path.name for e in gone] == ["2.ckpt", "3.ckpt"]


def test_cache_command_lists_caps_and_clears(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    decode(tmp_path, 1)
    decode(tmp_path, 2)
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "a.ckpt").write_bytes(b"x" * 5000)
    assert main(["cache", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "decoded" in out and "2 entries" in out and "uploads" in out and "a.ckpt" in out
    assert main(["cache", "--data-root", str(tmp_path), "--cap", f"decoded={int(1.5 * ENTRY / 1024)}KB"]) == 0
    assert "evicted 1 entries" in capsys.readouterr().out
    assert len(lru.entries(decoded_dir(tmp_path))) == 1
    assert lru.cap(tmp_path, "decoded") == int(1.5 * ENTRY / 1024) * 1024  # stored in cache.json for every writer
    assert main(["cache", "--data-root", str(tmp_path), "--cap", "uploads=3"]) == 0  # a bare number means GiB
    capsys.readouterr()
    assert lru.cap(tmp_path, "uploads") == 3 * 2**30
    assert main(["cache", "--data-root", str(tmp_path), "--clear", "all"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert lru.entries(decoded_dir(tmp_path)) == [] and lru.entries(tmp_path / "uploads") == []


@pytest.mark.parametrize("bad", ["decoded", "decoded=lots", "models=1GB", "decoded=-1GB", "decoded=nanGB"])
def test_a_bad_cap_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    assert main(["cache", "--data-root", str(tmp_path), "--cap", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --cap") and "Traceback" not in err and len(err.strip().splitlines()) == 1
