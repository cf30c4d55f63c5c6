"""Single-threaded torch workers leave every other thread's intra-op count alone (simclr_core.threads)."""

from __future__ import annotations

import threading

import pytest
import torch

from simclr_core.threads import on_one_cpu_thread, single_threaded_pool


def test_the_probe_fits_on_one_thread_and_a_thread_started_meanwhile_keeps_the_process_count() -> None:
    before = torch.get_num_threads()
    if before < 2:
        pytest.skip("needs a process that runs torch on two or more threads")
    started_meanwhile: list[int] = []

    def fit() -> int:  # what a training thread started while the dashboard fits a probe would get
        t = threading.Thread(target=lambda: started_meanwhile.append(torch.get_num_threads()))
        t.start()
        t.join()
        return torch.get_num_threads()

    assert on_one_cpu_thread(torch.device("cpu"), fit) == 1
    assert started_meanwhile == [before]
    assert torch.get_num_threads() == before


def test_a_pool_is_made_once_per_name_and_size_with_every_worker_single_threaded() -> None:
    pool = single_threaded_pool("test", 3)
    assert single_threaded_pool("test", 3) is pool
    assert single_threaded_pool("test", 2) is not pool
    gate = threading.Barrier(3)

    def count() -> int:
        gate.wait(timeout=10)  # three at once: one per worker
        return torch.get_num_threads()

    assert [f.result() for f in [pool.submit(count) for _ in range(3)]] == [1, 1, 1]


def test_an_error_in_the_work_reaches_the_caller() -> None:
    def broken() -> None:
        raise ValueError("bad labels")

    with pytest.raises(ValueError, match="bad labels"):
        on_one_cpu_thread(torch.device("cpu"), broken)
