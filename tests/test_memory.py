"""The memory check before a run: the need is counted from the network, compared with what is free, refused in one line.

The estimate itself is validated against measured peaks of real runs by ``benchmarks/memory_need.py``;
here one small real run checks that the estimate stays above the measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from simclr_core.__main__ import main
from simclr_core.config import ConfigError, TrainConfig
from simclr_core.memory import CHECK_ENV, GiB, check, need, saved_bytes_per_view

ROOT = Path(__file__).resolve().parents[1]
KILLER = replace(TrainConfig(), batch_size=65536, image_size=512)  # what took the server down


def real_saved_bytes_per_view(backbone: str, small_input: bool, size: int) -> int:
    """The same count on a real CPU forward, one storage counted once (by its address)."""
    from simclr_core.model import SimCLRNet

    net = SimCLRNet(backbone, 128, small_input)

    def saved(batch: int) -> int:
        storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(torch.randn(batch, 3, size, size))
        return sum(storages.values())

    return (saved(4) - saved(2)) // 2


@pytest.mark.parametrize(("backbone", "small_input", "size"), [("resnet18", False, 64), ("resnet10", True, 32)])
def test_activations_counted_on_the_meta_device_equal_a_real_forward(backbone: str, small_input: bool, size: int):
    assert saved_bytes_per_view(backbone, small_input, 128, size) == real_saved_bytes_per_view(
        backbone, small_input, size
    )


def test_the_need_grows_with_batch_views_pixels_and_backbone() -> None:
    base = TrainConfig(image_size=64, batch_size=128)
    small = need(base).host
    double = pytest.approx(2 * need(base).parts["activations"], rel=1e-6)
    assert need(replace(base, batch_size=256)).parts["activations"] == double
    assert need(replace(base, batch_size=256)).parts["loss"] == pytest.approx(4 * need(base).parts["loss"])  # (views)^2
    assert need(replace(base, n_views=4)).parts["activations"] == double
    assert need(replace(base, image_size=128)).parts["activations"] > 3.5 * need(base).parts["activations"]
    assert need(replace(base, backbone="resnet50")).host > need(base).host
    assert need(base, "bf16-mixed").parts["activations"] < need(base).parts["activations"]
    assert need(base, data_bytes=GiB).host == small + GiB


def test_batch_65536_at_512_px_is_refused_with_the_figure_and_a_batch_that_fits() -> None:
    with pytest.raises(ConfigError) as refused:
        check(KILLER, host_free=20 * GiB)
    message = str(refused.value)
    assert "GiB of memory" in message and "20.0 GiB is available" in message and "\n" not in message
    best = int(message.split("at most ")[1].split(", or")[0].replace(",", ""))
    assert 2 <= best < 1000
    check(replace(KILLER, batch_size=best), host_free=20 * GiB)  # the suggestion fits
    with pytest.raises(ConfigError):
        check(replace(KILLER, batch_size=best + 1), host_free=20 * GiB)


def test_on_a_gpu_the_model_is_checked_against_the_devices_free_memory() -> None:
    cfg = replace(TrainConfig(), batch_size=4096, image_size=224)
    with pytest.raises(ConfigError, match="GiB of GPU memory"):
        check(cfg, "bf16-mixed", "gpu", host_free=500 * GiB, device_free=16 * GiB)
    fits = check(replace(cfg, batch_size=64), "bf16-mixed", "gpu", host_free=4 * GiB, device_free=16 * GiB)
    assert fits.device > fits.host  # activations on the device, only data and overhead in RAM


def test_the_operator_can_turn_the_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHECK_ENV, "off")
    assert check(KILLER, host_free=GiB).host > 100 * GiB


def test_the_cli_refuses_before_any_data_or_run_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_DATA", str(tmp_path / "data"))
    runs = tmp_path / "runs"
    code = main(
        ["train", "--data", "shapes:unlabeled", "--batch-size", "65536", "--image-size", "512", "--runs-dir", str(runs)]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: these settings need") and "lower the batch size to at most" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not runs.exists() and not (tmp_path / "data" / "decoded").exists()  # nothing decoded or created


def peak_over_idle(cmd: list[str], env: dict[str, str]) -> int:
    def peak(command: list[str]) -> int:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode() if proc.stderr else ""
        return usage.ru_maxrss * 1024

    return peak(cmd) - peak([sys.executable, "-c", "import simclr_core.__main__, simclr_core.train"])


def test_the_estimate_covers_a_measured_run(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(tmp_path / "data")}
    spec = "shapes:train?n=26"
    cfg = replace(TrainConfig(), backbone="resnet18", image_size=64, batch_size=128)
    flags = ["--data", spec, "--val-data", spec, "--val-limit", "20", "--image-size", "64", "--batch-size", "128"]
    flags += ["--epochs", "1", "--limit-images", "256", "--precision", "32", "--snapshots", "0", "--no-progress"]
    flags += ["--runs-dir", str(tmp_path / "runs")]
    measured = peak_over_idle([sys.executable, "-m", "simclr_core", "train", *flags], env)
    if measured <= 0:  # seen once in .ci/run on a loaded machine: both peaks read the same
        pytest.skip("wait4 reported the same peak for the run and an idle import: no measurement")
    estimate = need(cfg, "32", data_bytes=(256 + 20) * 3 * 64 * 64).host
    assert measured <= estimate <= 1.6 * measured, (measured / 2**20, estimate / 2**20)
