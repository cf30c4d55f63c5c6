"""TrainConfig's device and precision in Lightning's and torch's terms."""

from __future__ import annotations

import pytest
import torch

from simclr_core.config import ConfigError
from simclr_core.devices import CPU_BF16_MIN_SIZE, cpu_has_fast_bf16, resolve_precision, torch_device


def test_auto_precision_on_a_cpu_depends_on_the_view_size() -> None:
    small = resolve_precision("auto", "cpu", 32)
    large = resolve_precision("auto", "cpu", 96)
    assert small == "32"  # per-op casts outweigh bf16's faster matmuls on 32 px maps
    assert large == ("bf16-mixed" if cpu_has_fast_bf16() else "32")
    assert resolve_precision("auto", "cpu", CPU_BF16_MIN_SIZE) == large
    assert resolve_precision("bf16-mixed", "cpu", 32) == "bf16-mixed"  # an explicit choice is kept


def test_fp16_on_a_cpu_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        resolve_precision("16-mixed", "cpu", 32)


def test_torch_device() -> None:
    assert torch_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            torch_device("cuda")
