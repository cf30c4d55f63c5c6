"""Frozen features: correct encoding, on-disk cache hits, random-init baseline, the tutorial's checkpoint.

Budget: ~25 s (ResNet-18 on a few dozen 32 px shapes; the tutorial checkpoint takes ~12 s to make).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simclr_core.config import AugmentationConfig, TrainConfig
from simclr_core.data import load_dataset
from simclr_core.features import RandomInit, encode, features_for, resolve_source
from simclr_core.model import CheckpointError, SimCLRNet

TUTORIAL_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "tutorial_reference.py"
SPEC = "shapes:test?n=3"  # 30 labelled images


def save_checkpoint(path: Path, net: SimCLRNet, cfg: TrainConfig) -> Path:
    """A checkpoint in this project's layout (what training writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"config": cfg.to_dict()}, "epoch": 1, "global_step": 5}, path)
    return path


def make_run(root: Path, seed: int = 0, mean: float = 0.5, eval_scale: float = 1.0) -> Path:
    """A minimal run directory (config.json + checkpoints/last.ckpt) with a randomly initialised net."""
    aug = AugmentationConfig(mean=(mean,) * 3, std=(0.25,) * 3)
    cfg = TrainConfig(image_size=32, eval_scale=eval_scale, small_input=False, aug=aug)
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"kind": "simclr", "config": cfg.to_dict()}))
    torch.manual_seed(seed)
    return save_checkpoint(root / "checkpoints" / "last.ckpt", SimCLRNet("resnet18", 128, False), cfg)


def test_encode_matches_a_plain_forward_pass() -> None:
    data = load_dataset(SPEC, image_size=32)
    net = RandomInit(image_size=32, seed=3).build()
    h = encode(net, data.images, "h", batch_size=7, device="cpu", image_size=32, precision="32")
    z = encode(net, data.images, "z", batch_size=64, device="cpu", image_size=32, precision="32")
    assert h.shape == (30, 512) and z.shape == (30, 128) and h.dtype == torch.float32
    with torch.no_grad():
        ref_h, ref_z = net((data.images.float() / 255 - 0.5) / 0.5)
    torch.testing.assert_close(h, ref_h, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(z, ref_z, rtol=1e-4, atol=1e-4)
    assert not net.training
    h16 = encode(net, data.images, "h", device="cpu", image_size=32, precision="bf16")
    assert torch.nn.functional.cosine_similarity(h16, h).min() > 0.99
    bigger = load_dataset(SPEC, image_size=48)  # resized to the encoder's 32 px on the fly
    assert encode(net, bigger.images, "h", device="cpu", image_size=32).shape == (30, 512)


def test_random_init_is_seeded() -> None:
    a = RandomInit(image_size=32, seed=1).build().state_dict()
    b = RandomInit(image_size=32, seed=1).build().state_dict()
    c = RandomInit(image_size=32, seed=2).build().state_dict()
    key = "backbone.conv1.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])


def test_features_cache_hit_reads_the_same_file(tmp_path: Path) -> None:
    ckpt = make_run(tmp_path / "run")
    first = features_for(ckpt, SPEC, "h", device="cpu")
    files = list((tmp_path / "run" / "features").glob("*.pt"))
    assert len(files) == 1 and not first.meta.get("cached")
    assert first.meta["prep"]["std"] == [0.25] * 3  # the checkpoint's own normalisation
    stamp = files[0].stat().st_mtime_ns
    second = features_for(ckpt, SPEC, "h", device="cpu")
    assert second.meta.get("cached") and files[0].stat().st_mtime_ns == stamp
    assert torch.equal(first.feats, second.feats) and torch.equal(first.labels, second.labels)
    assert first.classes == second.classes and first.key == second.key
    z = features_for(ckpt, SPEC, "z", device="cpu")
    assert z.feats.shape == (30, 128) and z.key != first.key
    # Training rewrites last.ckpt: a new version of the same slot replaces the old file.
    make_run(tmp_path / "run", seed=9)
    third = features_for(ckpt, SPEC, "h", device="cpu")
    assert not third.meta.get("cached") and not torch.allclose(third.feats, first.feats)
    assert not files[0].exists() and len(list((tmp_path / "run" / "features").glob("*.pt"))) == 2  # h (new) and z


def test_a_run_with_an_eval_scale_is_encoded_and_probed_at_its_side(tmp_path: Path) -> None:
    from simclr_core.probe_run import run_probe

    ckpt = make_run(tmp_path / "run", eval_scale=1.5)
    assert features_for(ckpt, SPEC, "h", device="cpu").meta["image_size"] == 48
    assert features_for(ckpt, SPEC, "h", device="cpu", image_size=32).meta["image_size"] == 32  # asked: honoured
    report = run_probe(ckpt, None, "shapes:train?n=5", SPEC, sizes=[2], repeats=1, device="cpu")
    assert report["image_size"] == 48
    from simclr_core.data.spec import data_root

    metas = [torch.load(f, weights_only=True)["meta"] for f in (data_root() / "features").glob("*.pt")]
    baseline = [m for m in metas if "random_init" in m["source"] and m["spec"] == SPEC]
    assert any(m["image_size"] == 48 for m in baseline)  # the random-init baseline at the same side


def test_resolve_source_of_a_run(tmp_path: Path) -> None:
    ckpt = make_run(tmp_path / "run")
    source, run_dir = resolve_source(run=tmp_path / "run", which_checkpoint="best")  # falls back to last
    assert Path(source) == ckpt and run_dir == (tmp_path / "run").resolve()
    with pytest.raises(CheckpointError):
        features_for(tmp_path / "missing.ckpt", SPEC)


@pytest.mark.skipif(not TUTORIAL_SCRIPT.is_file(), reason="tutorial reference script not present")
def test_tutorial_checkpoint_gives_features(tmp_path: Path) -> None:
    ckpt = tmp_path / "SimCLR.ckpt"
    subprocess.run(
        [
            sys.executable,
            str(TUTORIAL_SCRIPT),
            "--steps",
            "1",
            "--batch",
            "8",
            "--images",
            "32",
            "--res",
            "32",
            "--workers",
            "0",
            "--warmup",
            "1",
            "--save-ckpt",
            str(ckpt),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fs = features_for(ckpt, SPEC, "h", image_size=32, device="cpu", cache_dir=tmp_path / "cache")
    assert fs.feats.shape == (30, 512) and torch.isfinite(fs.feats).all()
    assert fs.meta["source"]["checkpoint"] == str(ckpt.resolve())
    assert features_for(ckpt, SPEC, "z", image_size=32, device="cpu", cache=False).feats.shape[1] == 128
