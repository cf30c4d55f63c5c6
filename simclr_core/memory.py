"""Whether chosen settings fit in memory here, checked before anything heavy is allocated.

Training runs inside the dashboard's server process: a tab asking for batch 65536 at 512 px would be
killed by the kernel's OOM killer, and the server with it. So ``check`` compares the peak need of a
training step with what the machine has, and refuses with the figure and what to lower.

The need of one process (``need``), in bytes:

- model state: weights, gradients and AdamW's two moments, 16 bytes per parameter (+2 for bf16 casts);
- activations autograd keeps for backward: counted exactly, per view at this size, by running the
  network once on the ``meta`` device (shapes only, nothing allocated) under ``saved_tensors_hooks``;
- the loss: the (views x global views) similarity matrix, its softmax and their gradients;
- resident data: the decoded images held in RAM and the validation copy.

The measured peak RSS of real ``train`` runs on this machine is larger than that sum (the allocator,
backward's transient gradients, the augmentation's float intermediates, Lightning): ``ACTIVATION_FACTOR``
and ``OVERHEAD_BYTES`` are fitted to it by ``benchmarks/memory_need.py``, which prints the estimate
against the measurement. On a GPU the model, activations and loss are checked against the device's
free memory (``torch.cuda.mem_get_info``) and only the data against the host's; the GPU figures use the
CPU's fitted factor and have not been measured on a GPU.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from simclr_core.config import ConfigError, TrainConfig

CHECK_ENV = "SIMCLR_STUDIO_MEMORY_CHECK"  # "off": skip the check (swap, or an operator who knows better)
USABLE_SHARE = 0.9  # refuse above this share of the available memory: the server and the OS need some too
# Fitted on this machine (2-core CPU; fp32 and bf16, ResNet-10/18/50, 32-128 px, batch 32-1024): estimate /
# measured peak 1.06-1.30 over 7 configurations (benchmarks/memory_need.py).
ACTIVATION_FACTOR = 1.6  # measured peak over (saved activations + loss), from allocator and backward transients
OVERHEAD_BYTES = 384 * 2**20  # Lightning's trainer, the loaders, the first step's workspaces
LOSS_COPIES = 4  # logits, their softmax and both gradients, float32 each
GPU_CONTEXT_BYTES = 512 * 2**20  # cuDNN/cuBLAS workspaces beyond the context mem_get_info already excludes
GiB = 2**30


@functools.lru_cache(maxsize=64)
def saved_bytes_per_view(backbone: str, small_input: bool, hidden_dim: int, image_size: int) -> int:
    """Bytes autograd keeps for backward per float32 view of ``image_size`` px (meta device: no memory used)."""
    from simclr_core.model import SimCLRNet

    with torch.device("meta"):
        net = SimCLRNet(backbone, hidden_dim, small_input)

    def saved(batch: int) -> int:
        kept: dict[int, torch.Tensor] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            kept[id(t)] = t  # held, so ids stay unique; one tensor saved by two ops counts once
            return t

        x = torch.empty(batch, 3, image_size, image_size, device="meta")
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
        bases = {
            id(b): b.numel() * b.element_size() for t in kept.values() for b in [t if t._base is None else t._base]
        }
        return sum(bases.values())

    return (saved(4) - saved(2)) // 2  # the difference leaves out the weights the ops save


@functools.lru_cache(maxsize=16)
def parameter_count(backbone: str, small_input: bool, hidden_dim: int) -> int:
    from simclr_core.model import SimCLRNet

    with torch.device("meta"):
        return sum(p.numel() for p in SimCLRNet(backbone, hidden_dim, small_input).parameters())


@dataclass
class MemoryNeed:
    """Peak bytes of one training process: ``host`` (RAM) and ``device`` (GPU memory; 0 on a CPU)."""

    host: int
    device: int
    parts: dict[str, int]  # model, activations, loss, data, overhead

    @property
    def compute(self) -> int:
        """Where the model and activations live: the GPU's memory on a GPU, else RAM."""
        return self.device or self.host

    def summary(self) -> str:
        big = ", ".join(f"{k} {v / GiB:.2f}" for k, v in self.parts.items() if v >= 0.005 * GiB)
        where = (
            f"{self.device / GiB:.1f} GiB on the GPU + {self.host / GiB:.1f} GiB RAM"
            if self.device
            else f"{self.host / GiB:.1f} GiB RAM"
        )
        return f"about {where} ({big} GiB)"


def _precision_bytes(precision: str) -> float:
    """Activation bytes relative to float32 under autocast (conv and matmul outputs in 16 bits)."""
    return 0.55 if precision in ("bf16-mixed", "16-mixed") else 1.0


def need(
    config: TrainConfig,
    precision: str = "32",
    on_gpu: bool = False,
    per_device_batch: int | None = None,
    data_bytes: int = 0,
) -> MemoryNeed:
    """The peak memory of training ``config`` in one process (per-device batch, ``data_bytes`` held in RAM)."""
    batch = per_device_batch or config.batch_size
    views = batch * config.n_views
    global_views = config.batch_size * config.n_views
    params = parameter_count(config.backbone, config.small_input, config.hidden_dim)
    model = params * (16 + (2 if precision != "32" else 0))
    per_view = saved_bytes_per_view(config.backbone, config.small_input, config.hidden_dim, config.image_size)
    activations = int(ACTIVATION_FACTOR * per_view * _precision_bytes(precision) * views)
    loss = int(ACTIVATION_FACTOR * LOSS_COPIES * 4 * views * global_views)
    parts = {"model": model, "activations": activations, "loss": loss, "data": data_bytes, "overhead": OVERHEAD_BYTES}
    if on_gpu:
        return MemoryNeed(OVERHEAD_BYTES + data_bytes, model + activations + loss + GPU_CONTEXT_BYTES, parts)
    return MemoryNeed(sum(parts.values()), 0, parts)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup limit (page cache counts as free), or None without a limit."""
    for limit_f, usage_f, stat_f, inactive in (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat", "total_inactive_file"),
    ):
        base = Path("/sys/fs/cgroup")
        limit, usage = _read_int(base / limit_f), _read_int(base / usage_f)
        if limit is None or usage is None or limit >= 2**60:
            continue
        cache = 0
        try:
            for line in (base / stat_f).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive and value.strip().isdigit():
                    cache = int(value)
        except OSError:
            pass
        return max(0, limit - (usage - cache))
    return None


def available_host() -> int:
    """RAM this process can still take: /proc/meminfo's MemAvailable, lowered to a cgroup's limit."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if free is None and hasattr(os, "sysconf"):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            free = None
    cgroup = _cgroup_free()
    candidates = [v for v in (free, cgroup) if v is not None]
    return min(candidates) if candidates else 2**62


def available_device(config: TrainConfig) -> int:
    """Free bytes on the GPU ``config.device`` names (the first one for auto/cuda)."""
    from simclr_core.devices import torch_device

    free, _total = torch.cuda.mem_get_info(torch_device(config.device).index or 0)
    return int(free)


def largest_batch(config: TrainConfig, fits) -> int:  # noqa: ANN001  (fits: Callable[[TrainConfig], bool])
    """The largest global batch (a multiple of the devices) with which ``fits`` holds; 0 when none does."""
    from dataclasses import replace

    world = max(1, config.devices * config.num_nodes)
    lo, hi = 0, config.batch_size // world  # per-device images
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid >= 2 and fits(replace(config, batch_size=mid * world)):
            lo = mid
        else:
            hi = mid - 1
    return lo * world


def check(
    config: TrainConfig,
    precision: str = "32",
    accelerator: str = "cpu",
    per_device_batch: int | None = None,
    data_bytes: int = 0,
    processes_here: int = 1,
    host_free: int | None = None,
    device_free: int | None = None,
) -> MemoryNeed:
    """The need of ``config``, or ConfigError saying the figure and what to lower when it does not fit.

    ``accelerator``: Lightning's ("gpu" or "cpu"); ``data_bytes``: images about to be copied into RAM;
    ``processes_here``: training processes on this host (DDP runs one per device).
    """
    on_gpu = accelerator == "gpu"
    if os.environ.get(CHECK_ENV, "").lower() in ("off", "0", "no", "false"):
        return need(config, precision, on_gpu, per_device_batch, data_bytes)
    host_free = available_host() if host_free is None else host_free
    if on_gpu and device_free is None:
        device_free = available_device(config)
    world = max(1, config.devices * config.num_nodes)

    def fits_need(n: MemoryNeed) -> bool:
        host_ok = n.host * processes_here <= USABLE_SHARE * host_free
        return host_ok and (not on_gpu or n.device <= USABLE_SHARE * (device_free or 0))

    def fits(c: TrainConfig) -> bool:
        return fits_need(need(c, precision, on_gpu, c.batch_size // world, data_bytes))

    result = need(config, precision, on_gpu, per_device_batch, data_bytes)
    if fits_need(result):
        return result
    if on_gpu and result.device > USABLE_SHARE * (device_free or 0):
        have, needed, where = device_free or 0, result.device, "GPU memory"
    else:
        have, needed, where = host_free, result.host * processes_here, "memory"
    best = largest_batch(config, fits)
    lower = f"lower the batch size to at most {best:,}" if best else "the batch size alone cannot make it fit"
    raise ConfigError(
        f"these settings need {needed / GiB:.1f} GiB of {where} ({config.batch_size:,} images x {config.n_views} "
        f"views at {config.image_size} px through {config.backbone}) but {have / GiB:.1f} GiB is available here; "
        f"{lower}, or lower the image size, the views per image, or pick a smaller backbone "
        f"(the check can be turned off with {CHECK_ENV}=off)"
    )
