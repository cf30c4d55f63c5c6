"""Process-wide settings, applied only by the entry points: the CLI, the dashboard (app.py), the bench worker.

Each one changes the whole process (every thread, every later import), so a library import
must not make it: ``import simclr_core`` changes nothing, and code that embeds the engine
decides for itself. Every setting here was measured on this project's 2-core CPU (AMD EPYC
with AVX512-BF16); the figures are in each function's docstring and BENCHMARKS.md.

    from simclr_core.process import configure_process
    configure_process()  # first thing, before anything imports torch
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

MALLOC_TUNING_ENV = "SIMCLR_STUDIO_MALLOC_TUNING"  # "0" leaves glibc's allocator as it is


@dataclass(frozen=True)
class ProcessSettings:
    """What :func:`configure_process` did, for logs and tests."""

    omp_wait_policy: str  # the value in the environment afterwards
    omp_applied: bool  # False: torch was loaded before the policy was set, so OpenMP kept its default
    malloc_tuned: bool
    cudnn_benchmark: bool


_SETTINGS: ProcessSettings | None = None


def configure_process(interactive: bool = False) -> ProcessSettings:
    """Apply the process-wide settings once (later calls return the first result).

    ``interactive``: the process also serves a user (the dashboard), so OpenMP threads must not
    spin (``set_omp_wait_policy``). Call it before anything imports torch: the OpenMP policy is
    read when torch loads.
    """
    global _SETTINGS
    if _SETTINGS is None:
        omp = set_omp_wait_policy(interactive)
        malloc = tune_cpu_malloc()
        policy = os.environ.get("OMP_WAIT_POLICY", "default")
        _SETTINGS = ProcessSettings(policy, omp, malloc, enable_cudnn_benchmark())
        quiet_library_chatter()
        if not omp:
            log.warning("torch was imported before configure_process(): OMP_WAIT_POLICY=PASSIVE comes too late")
    return _SETTINGS


LIGHTNING_TIP_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")
LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _DropLightningTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ... litlogger / litmodels" advertisements, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def quiet_library_chatter() -> None:
    """Silence two lines every run printed that say nothing about it (targeted: other warnings stay).

    Lightning's "💡 Tip: ... try installing litlogger" (logged by its rank-zero logger at every
    ``Trainer``) and torch 2.14's FutureWarning that Lightning's own ``_pytree`` still builds a
    ``LeafSpec``. Idempotent.
    """
    warnings.filterwarnings("ignore", message=LEAFSPEC_WARNING, category=FutureWarning)
    for name in LIGHTNING_TIP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLightningTips) for f in logger.filters):
            logger.addFilter(_DropLightningTips())


def set_omp_wait_policy(interactive: bool) -> bool:
    """In an interactive process, ``OMP_WAIT_POLICY=PASSIVE`` unless one is set (by the user or a parent).

    OpenMP threads that spin while they wait starve the dashboard's server threads on small
    CPUs: measured 10-50x slowdowns of small ops on a loaded 2-core machine. A process that only
    computes (the CLI, a bench worker) keeps OpenMP's default (spin briefly, then sleep): PASSIVE
    costs training 20 % of its views/s there (2 cores, fast recipe step: 455 views/s PASSIVE,
    545 default, 565 ACTIVE). libgomp reads the variable once, when torch loads it, so this
    returns False when it had to set it after torch was loaded (too late to apply).
    """
    if "OMP_WAIT_POLICY" in os.environ or not interactive:
        return True
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "torch" not in sys.modules


def tune_cpu_malloc() -> bool:
    """Let glibc keep freed memory up to 1 GiB for reuse instead of returning it to the OS.

    CPU training (and the torch-ops augmentation) allocates and frees many multi-MB temporaries;
    with glibc's defaults each one is mmap-ed fresh and page-faulted in. Measured on 2 cores:
    a 96 px batch-256 bf16 training step takes 1.63 s with this against 1.92 s without (+18 %
    views/s, peak RSS 3.2 against 2.6 GiB); the batched torch-ops augmentation ran 1.1x-2x
    faster. Raising M_MMAP_THRESHOLD / M_TRIM_THRESHOLD makes them reuse heap memory (the
    resident size then stays near its peak). Skipped when not on glibc or when
    $SIMCLR_STUDIO_MALLOC_TUNING is "0". Returns whether it applied.
    """
    if os.environ.get(MALLOC_TUNING_ENV, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def enable_cudnn_benchmark() -> bool:
    """Let cuDNN time its convolution algorithms once per input shape and keep the fastest.

    Training feeds the same shapes every step (fixed batch and crop size), the case this is
    made for; on CPU it does nothing. Not measured on this project's machines (no GPU); it is
    PyTorch's advice for fixed-shape convolutional training.
    """
    import torch

    torch.backends.cudnn.benchmark = True
    return True
