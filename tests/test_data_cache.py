"""The decoded cache is written atomically: a failed or killed writer never leaves a half entry."""

from __future__ import annotations

import numpy as np
import pytest

from simclr_core.data import load_dataset
from simclr_core.data.cache import CacheWriter, decoded_dir, load_cached


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), CacheWriter(tmp_path, "entry-16px-aaaa-bbbb", n=4, image_size=16) as writer:
        writer.images[:2] = 7
        raise RuntimeError("killed half way")
    assert list(decoded_dir(tmp_path).iterdir()) == []
    assert load_cached(decoded_dir(tmp_path) / "entry-16px-aaaa-bbbb", "x") is None


def test_committed_entry_round_trips_and_dead_writers_are_swept(tmp_path):
    base = decoded_dir(tmp_path)
    base.mkdir(parents=True)
    dead = base / ".tmp-old-16px-cccc-dddd-999999999-abcdef"  # a writer whose process is gone
    dead.mkdir()
    with CacheWriter(tmp_path, "entry-16px-aaaa-bbbb", n=3, image_size=16) as writer:
        writer.images[:] = np.arange(3, dtype=np.uint8)[:, None, None, None]
        writer.shrink(np.array([0, 2]))
        path = writer.commit(np.array([1, -1]), ["a", "b"], {"spec": "x"})
    data = load_cached(path, "x")
    assert data is not None and data.labels.tolist() == [1, -1] and data.classes == ["a", "b"]
    assert data.images[:, 0, 0, 0].tolist() == [0, 2] and data.cached
    assert not dead.exists()
    assert [p.name for p in base.iterdir()] == ["entry-16px-aaaa-bbbb"]


def test_a_half_entry_without_meta_is_not_a_cache_hit(tmp_path):
    first = load_dataset("shapes:train?n=1", image_size=16, root=tmp_path)
    (first.cache_path / "meta.json").unlink()
    again = load_dataset("shapes:train?n=1", image_size=16, root=tmp_path)
    assert not again.cached and len(again) == 10
