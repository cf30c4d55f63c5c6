"""The CUDA paths against their CPU references: augmentation, InfoNCE under bf16, feature encoding, a 1-GPU DDP run.

Marked ``cuda``: without a GPU every test skips with the reason (``SIMCLR_REQUIRE_CUDA=1`` turns the skip
into a failure, as ``benchmarks/gpu_check.sh`` sets it). Run alone with ``pytest -m cuda tests/test_cuda.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simclr_core import augment as A
from simclr_core.bench.gpu_bench import run_dir_problems
from simclr_core.config import augmentation_preset
from simclr_core.features import RandomInit, encode
from simclr_core.loss import info_nce

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        why = (
            f"no CUDA device visible (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "run on a GPU machine: bash benchmarks/gpu_check.sh"
        )
        if os.environ.get("SIMCLR_REQUIRE_CUDA") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return torch.device("cuda")


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("draw_on", ["cpu", "cuda"])
@pytest.mark.parametrize(
    ("preset", "in_size", "out"),
    [("tutorial", 96, 96), ("simclr", 96, 32), ("tutorial", 64, 96), ("baseline", 32, 32)],
)
def test_torch_op_augmentation_on_cuda_matches_the_cpu_kernel(
    preset: str, in_size: int, out: int, draw_on: str, cuda: torch.device
) -> None:
    """apply(fused=False) on CUDA (the training path on a GPU) against the fused numba kernel on CPU, same params."""
    cfg = augmentation_preset(preset, crop_size=out)
    images = _images(24, in_size)
    gen = torch.Generator(device=draw_on).manual_seed(3)  # training draws on the device's generator
    params = A.sample_params(2 * len(images), cfg, (in_size, in_size), gen)
    on_gpu = A.apply(images.to(cuda), params, cfg, fused=False)
    on_cpu = A.apply(images, params.to("cpu"), cfg, fused=True)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert on_gpu.shape == on_cpu.shape == (2 * len(images), 3, out, out)
    diff = (on_gpu.cpu() - on_cpu).abs()
    assert diff.max() < 2e-3, f"max |cuda - cpu| = {diff.max():.2e} (mean {diff.mean():.2e}) on normalised pixels"
    assert on_cpu.std() > 0.1  # real views, not a constant


def test_make_views_on_cuda_is_reproducible_and_view_major(cuda: torch.device) -> None:
    cfg = augmentation_preset("tutorial", crop_size=32)
    images = _images(8, 32).to(cuda)
    a = A.make_views(images, cfg, 2, torch.Generator(device=cuda).manual_seed(1))
    b = A.make_views(images, cfg, 2, torch.Generator(device=cuda).manual_seed(1))
    assert a.device.type == "cuda" and a.shape == (16, 3, 32, 32)
    assert torch.equal(a, b)


def _pairs(n: int = 256, dim: int = 512, noise: float = 0.6) -> torch.Tensor:
    """View-major backbone features of n images, two correlated views each: (2n, dim) float32."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(n, dim, generator=g)
    return torch.cat([base + noise * torch.randn(n, dim, generator=g), base + noise * torch.randn(n, dim, generator=g)])


def test_info_nce_under_bf16_autocast_on_cuda_matches_fp32(cuda: torch.device) -> None:
    """The loss of bf16 projections (the training step's) against the fp32 loss: value, metrics and gradients."""
    h = _pairs().to(cuda)
    head = torch.nn.Linear(h.shape[1], 128).to(cuda)
    results = {}
    for name, enabled in (("fp32", False), ("bf16", True)):
        head.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled):
            z = head(h)
            loss, metrics = info_nce(z, temperature=0.07)
        assert z.dtype == (torch.bfloat16 if enabled else torch.float32)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        results[name] = (loss.item(), {k: v.item() for k, v in metrics.items()}, head.weight.grad.clone())
    (l32, m32, g32), (l16, m16, g16) = results["fp32"], results["bf16"]
    assert abs(l16 - l32) / l32 < 1e-2, (l16, l32)
    assert abs(m16["acc_top1"] - m32["acc_top1"]) <= 0.02 and abs(m16["acc_top5"] - m32["acc_top5"]) <= 0.02
    assert m32["acc_top1"] > 0.5  # the views are related: the metrics mean something
    cos = torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0)
    assert cos > 0.99, f"gradient cosine bf16 vs fp32 = {cos:.4f}"

    cpu_loss, _ = info_nce(head.cpu()(h.cpu()).detach(), temperature=0.07)  # fp32 on CUDA vs CPU
    assert abs(cpu_loss.item() - l32) / l32 < 1e-4


def test_info_nce_on_cuda_under_autocast_is_exactly_fp32_of_its_inputs(cuda: torch.device) -> None:
    """The similarity matrix leaves autocast: bf16 inputs give the fp32 loss of the same (rounded) values."""
    z = _pairs(128, 128).to(cuda).bfloat16()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        inside, _ = info_nce(z, 0.07)
    outside, _ = info_nce(z.float(), 0.07)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, outside, rtol=1e-6, atol=1e-6)


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative error after removing the reference's mean feature (post-ReLU features share a large mean)."""
    centre = ref.mean(dim=0, keepdim=True)
    return float((a - ref).norm() / (ref - centre).norm())


@pytest.mark.parametrize("which", ["h", "z"])
def test_feature_encoding_on_cuda_matches_cpu(which: str, cuda: torch.device, data_root: Path) -> None:
    from simclr_core.data import load_dataset

    images = load_dataset("shapes:train?n=4", 64).images[:40]  # 64 px read at 96: the resize runs on the device too
    net = RandomInit(image_size=96).build()
    cpu = encode(net, images, which=which, device="cpu", precision="32", image_size=96, batch_size=16)
    fp32 = encode(net, images, which=which, device=cuda, precision="32", image_size=96, batch_size=16)
    bf16 = encode(net, images, which=which, device=cuda, precision="auto", image_size=96, batch_size=16)
    for feats in (fp32, bf16):
        assert feats.device.type == "cpu" and feats.dtype == torch.float32 and feats.shape == cpu.shape
        assert torch.isfinite(feats).all()
    assert _rel(fp32, cpu) < 1e-2, f"fp32 (TF32 convolutions) vs CPU: {_rel(fp32, cpu):.2e}"
    assert _rel(bf16, cpu) < 5e-2, f"bf16 autocast vs CPU fp32: {_rel(bf16, cpu):.2e}"


def test_one_gpu_ddp_run_through_the_cli_leaves_a_valid_run_directory(
    tmp_path: Path, data_root: Path, cuda: torch.device
) -> None:
    """--strategy ddp on one GPU: nccl process group, pinned batches, bf16 autocast, all written by rank 0."""
    assert torch.distributed.is_nccl_available()
    images, batch, epochs = 256, 64, 2
    runs = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "simclr_core", "train",
        "--data", f"shapes:unlabeled?n={images}", "--val-data", "shapes:train?n=10", "--image-size", "32",
        "--batch-size", str(batch), "--epochs", str(epochs), "--device", "cuda", "--devices", "1",
        "--strategy", "ddp", "--runs-dir", str(runs), "--name", "cuda-ddp", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "SIMCLR_STUDIO_DATA": str(data_root), "PYTHONPATH": str(ROOT)}
    env.pop("SIMCLR_RUN_DIR", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    if "distributed_backend=" in out:  # Lightning's banner, when its logger prints
        assert "distributed_backend=nccl" in out, out[-2000:]

    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, [p.name for p in dirs]
    assert run_dir_problems(dirs[0]) == []
    config = json.loads((dirs[0] / "config.json").read_text())
    assert config["config"]["strategy"] == "ddp" and config["world_size"] == 1
    assert config["device"].startswith("cuda") and config["precision"] == "bf16-mixed", config
    rows = [json.loads(line) for line in (dirs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train_loss" in r] == list(range(1, epochs * images // batch + 1))
    assert len([r for r in rows if "knn_acc" in r]) == epochs
    last = torch.load(dirs[0] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == epochs * images // batch
