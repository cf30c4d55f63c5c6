"""Worker threads that run torch with one intra-op thread each, without changing anyone else's count.

``torch.set_num_threads`` sets the calling thread's OpenMP team size but also the process-wide count
that every thread started later begins with. Called in a pool's initializer (or around a block), it
left the next training thread of the process on one core: the dashboard's second run, a queue's or an
ablation's later cells, and a run started while a probe was fitting trained at half the views/s. So
the pools start all their workers at once, under a lock, and put the count back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
# Keyed by process too: a forked child (a DataLoader worker) inherits the dict but none of the threads.
_POOLS: dict[tuple[int, str, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _one_intra_op_thread() -> None:
    # torch sets a thread's count lazily, from the process-wide one, at its first parallel op; without this
    # first read the worker would take the count put back below (2 here) instead of keeping 1.
    torch.get_num_threads()
    torch.set_num_threads(1)


def single_threaded_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool ``name`` of ``workers`` threads, each running torch single-threaded."""
    key = (os.getpid(), name, workers)
    with _POOLS_LOCK:
        if key not in _POOLS:
            before = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, name, initializer=_one_intra_op_thread)
            started = threading.Barrier(workers)
            for job in [pool.submit(started.wait) for _ in range(workers)]:  # none idle: every worker starts now
                job.result()
            torch.set_num_threads(before)
            _POOLS[key] = pool
        return _POOLS[key]


def on_one_cpu_thread(device: torch.device, fn: Callable[[], T]) -> T:
    """``fn()``, on CPU in a worker with one intra-op thread (the caller's and later threads' counts unchanged).

    For the linear probe, whose ops are tiny (64-row batches): extra intra-op threads only add
    synchronisation, which on busy cores costs several times the work (measured on 2 shared cores:
    3.2 s with one thread, 13.5 s with two, for the same sweep), while a training in another thread of
    the dashboard keeps its two (1.73x faster than with one).
    """
    if device.type != "cpu":
        return fn()
    return single_threaded_pool("probe", 1).submit(fn).result()
