"""The batched augmentation engine against torchvision's per-image transforms.

Distributions are compared statistically (two-sample KS against RandomResizedCrop.get_params,
rates at p); fixed parameters are compared pixel by pixel with torchvision's functional ops.
Budget: under 30 s on two shared cores.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from scipy.stats import ks_2samp
from torchvision import transforms as T

from simclr_core import augment as A
from simclr_core.augment_colour import jitter_code
from simclr_core.config import PRESETS, AugmentationConfig, ConfigError, augmentation_preset, load_augmentation

PLAIN = {"flip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}
FUSED = pytest.mark.parametrize("fused", [True, False], ids=["fused-cpu-kernel", "torch-ops"])


def _images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth colourful patterns plus noise: edges, gradients and flat areas in every channel."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    phase = torch.rand(b, 3, 1, 1, generator=g) * 6
    base = 0.5 + 0.4 * torch.sin(6 * xx + 4 * yy * phase + phase)
    base[:, :, h // 3 : h // 2, w // 4 : w // 2] = torch.rand(b, 3, 1, 1, generator=g)  # a flat block
    noisy = base + 0.1 * torch.rand(b, 3, h, w, generator=g)
    return (noisy.clamp(0, 1) * 255).round().to(torch.uint8)


def _fixed(n: int, cfg: AugmentationConfig, in_size: tuple[int, int], **fields: object) -> A.AugParams:
    params = A.sample_params(n, cfg, in_size, torch.Generator().manual_seed(0))
    for name, value in fields.items():
        current = getattr(params, name)
        setattr(params, name, torch.as_tensor(value, dtype=current.dtype).expand_as(current).clone())
    return params


def _unnormalise(views: torch.Tensor) -> torch.Tensor:
    return views * 0.5 + 0.5


# ---------------------------------------------------------------- random parameters


@pytest.mark.parametrize(
    ("in_size", "scale", "ratio"),
    [((96, 96), (0.08, 1.0), (3 / 4, 4 / 3)), ((60, 100), (0.2, 0.9), (0.5, 2.0)), ((40, 40), (0.9, 1.0), (2.0, 3.0))],
)
def test_crop_boxes_match_random_resized_crop(in_size: tuple[int, int], scale: tuple, ratio: tuple) -> None:
    """Same distribution of area, aspect ratio and position as torchvision (the last case mostly falls back)."""
    n = 3000
    height, width = in_size
    cfg = AugmentationConfig(crop_scale=scale, crop_ratio=ratio)
    ours = A.sample_params(n, cfg, in_size, torch.Generator().manual_seed(1)).crop.numpy()
    torch.manual_seed(2)
    probe = torch.empty(3, height, width)
    ref = np.array([T.RandomResizedCrop.get_params(probe, list(scale), list(ratio)) for _ in range(n)])
    for boxes in (ours, ref):
        top, left, h, w = boxes.T
        assert (h > 0).all() and (w > 0).all() and (top >= 0).all() and (left >= 0).all()
        assert (top + h <= height).all() and (left + w <= width).all()

    def stats(boxes: np.ndarray) -> dict[str, np.ndarray]:
        top, left, h, w = boxes.T.astype(float)
        return {
            "area": h * w / (height * width),
            "log_ratio": np.log(w / h),
            "top": (top + 0.5) / (height - h + 1),
            "left": (left + 0.5) / (width - w + 1),
        }

    ours_s, ref_s = stats(ours), stats(ref)
    for key in ours_s:
        result = ks_2samp(ours_s[key], ref_s[key])
        assert result.pvalue > 1e-3, (key, result)
    fitted = ours_s["area"][(ours[:, 2] != height) | (ours[:, 3] != width)]
    if scale == (0.08, 1.0):  # areas inside the scale range up to pixel rounding; log-uniform ratios
        assert fitted.min() > 0.07 and ours_s["area"].max() <= 1.0
        lr = ours_s["log_ratio"]
        assert lr.min() > math.log(3 / 4) - 0.05 and lr.max() < math.log(4 / 3) + 0.05


def test_rates_and_factor_ranges() -> None:
    n = 20000
    cfg = AugmentationConfig(blur_p=0.3, jitter_hue=0.2)
    p = A.sample_params(n, cfg, (32, 32), torch.Generator().manual_seed(3))
    tol = 5 * math.sqrt(0.25 / n)
    assert abs(p.flip.float().mean().item() - 0.5) < tol
    assert abs(p.jitter.float().mean().item() - 0.8) < tol
    assert abs(p.gray.float().mean().item() - 0.2) < tol
    assert abs(p.blur.float().mean().item() - 0.3) < tol
    f = p.jitter_factors
    for col, (lo, hi) in enumerate([(0.5, 1.5), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2)]):
        assert f[:, col].min() >= lo and f[:, col].max() <= hi
        assert f[:, col].min() < lo + 0.01 and f[:, col].max() > hi - 0.01  # fills the range
        assert abs(f[:, col].mean().item() - (lo + hi) / 2) < 0.01
    assert p.sigma.min() >= 0.1 and p.sigma.max() <= 2.0
    # Every row a permutation of the 4 ops; all 24 orders about equally likely, as randperm(4).
    assert (p.jitter_order.sort(dim=1).values == torch.arange(4)).all()
    counts = torch.bincount(jitter_code(p).clamp(min=0)[p.jitter], minlength=256)
    counts = counts[counts > 0]
    assert len(counts) == 24
    expected = p.jitter.sum().item() / 24
    assert (counts.float() - expected).abs().max() < 0.2 * expected


def test_p_zero_and_one_are_exact() -> None:
    cfg = AugmentationConfig(flip_p=1.0, jitter_p=0.0, grayscale_p=1.0, blur_p=0.0)
    p = A.sample_params(500, cfg, (16, 16), torch.Generator().manual_seed(4))
    assert p.flip.all() and not p.jitter.any() and p.gray.all() and not p.blur.any()


def test_params_reproducible_and_describable() -> None:
    cfg = AugmentationConfig()
    a = A.sample_params(8, cfg, (32, 32), torch.Generator().manual_seed(5))
    b = A.sample_params(8, cfg, (32, 32), torch.Generator().manual_seed(5))
    c = A.sample_params(8, cfg, (32, 32), torch.Generator().manual_seed(6))
    assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("flip", "crop", "jitter_factors", "sigma"))
    assert not torch.equal(a.crop, c.crop)
    info = a.describe(3)
    json.dumps(info)
    assert set(info) == {"flip", "crop", "jitter", "jitter_factors", "jitter_order", "grayscale", "blur", "sigma"}
    assert sorted(info["jitter_order"]) == sorted(A.JITTER_OPS)
    assert len(a.select(torch.tensor([1, 2]))) == 2


# ---------------------------------------------------------------- pixels vs torchvision


@pytest.mark.parametrize(
    ("in_hw", "box", "out"),
    [
        ((48, 64), (5, 7, 30, 40), 32),
        ((48, 64), (0, 0, 48, 64), 20),
        ((48, 64), (10, 3, 12, 17), 40),
        ((32, 32), (0, 0, 32, 32), 32),
    ],
)
@pytest.mark.parametrize("flip", [False, True])
@FUSED
def test_crop_resize_matches_resized_crop(
    in_hw: tuple[int, int], box: tuple, out: int, flip: bool, fused: bool
) -> None:
    """Upscaling, downscaling with antialiasing and identity, with and without the flip before it."""
    images = _images(2, *in_hw)
    cfg = AugmentationConfig(crop_size=out, **PLAIN)
    params = _fixed(2, cfg, in_hw, crop=list(box), flip=flip)
    ours = _unnormalise(A.apply(images, params, cfg, fused=fused))
    src = TF.hflip(images) if flip else images
    ref = TF.resized_crop(src.float(), *box, [out, out], antialias=True) / 255
    assert (ours - ref).abs().max() < 1e-5
    # The tutorial's PIL path (uint8 after resizing) agrees to a grey level or so.
    pil = TF.resized_crop(Image.fromarray(src[0].permute(1, 2, 0).numpy()), *box, [out, out])
    pil_t = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255
    assert (ours[0] - pil_t).abs().max() < 2.5 / 255


@pytest.mark.parametrize(
    ("op", "factor", "reference"),
    [
        (0, 1.4, TF.adjust_brightness),
        (0, 0.6, TF.adjust_brightness),
        (1, 1.5, TF.adjust_contrast),
        (1, 0.5, TF.adjust_contrast),
        (2, 1.5, TF.adjust_saturation),
        (2, 0.3, TF.adjust_saturation),
        (3, 0.1, TF.adjust_hue),
        (3, -0.37, TF.adjust_hue),
    ],
)
@FUSED
def test_each_jitter_op_matches_functional(op: int, factor: float, reference, fused: bool) -> None:
    strengths = {"jitter_brightness": 0.0, "jitter_contrast": 0.0, "jitter_saturation": 0.0, "jitter_hue": 0.0}
    strengths[f"jitter_{A.JITTER_OPS[op]}"] = 0.5
    cfg = AugmentationConfig(crop_size=24, **{**PLAIN, "jitter_p": 1.0}, **strengths)
    images = _images(3, 24, 24, seed=op)
    factors = torch.ones(3, 4)
    factors[:, 3] = 0
    factors[:, op] = factor
    params = _fixed(3, cfg, (24, 24), crop=[0, 0, 24, 24], jitter=True, jitter_factors=factors)
    ours = _unnormalise(A.apply(images, params, cfg, fused=fused))
    ref = torch.stack([reference(img.float() / 255, factor) for img in images])
    assert (ours - ref).abs().max() < 1e-5


@FUSED
def test_jitter_follows_each_views_op_order(fused: bool) -> None:
    cfg = AugmentationConfig(crop_size=24, jitter_p=1.0, flip_p=0.0, grayscale_p=0.0, blur_p=0.0, jitter_hue=0.3)
    images = _images(1, 24, 24, seed=9).expand(24, -1, -1, -1).contiguous()
    factors = torch.tensor([1.3, 0.6, 1.8, 0.25]).expand(24, 4)
    orders = torch.tensor(list(__import__("itertools").permutations(range(4))))
    params = _fixed(24, cfg, (24, 24), crop=[0, 0, 24, 24], jitter=True, jitter_factors=factors, jitter_order=orders)
    ours = _unnormalise(A.apply(images, params, cfg, chunk=5, fused=fused))
    functional = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i, order in enumerate(orders.tolist()):
        ref = images[i].float() / 255
        for op in order:
            ref = functional[op](ref, float(factors[i, op]))
        assert (ours[i] - ref).abs().max() < 2e-5, order
    assert (ours[0] - ours[23]).abs().max() > 0.05  # the order matters, so this test can fail


@FUSED
def test_grayscale_and_blur_match_functional(fused: bool) -> None:
    cfg = AugmentationConfig(crop_size=32, flip_p=0.0, jitter_p=0.0, grayscale_p=0.5, blur_p=0.5)
    images = _images(4, 32, 32, seed=2)
    params = _fixed(
        4, cfg, (32, 32), crop=[0, 0, 32, 32], gray=[True, False, True, False], blur=[True, True, False, False]
    )
    params.sigma = torch.tensor([0.3, 1.7, 1.0, 1.0])
    ours = _unnormalise(A.apply(images, params, cfg, fused=fused))
    for i in range(4):
        ref = images[i].float() / 255
        if params.gray[i]:
            ref = TF.rgb_to_grayscale(ref, num_output_channels=3)
        if params.blur[i]:
            ref = TF.gaussian_blur(ref, [9, 9], [float(params.sigma[i])] * 2)
        assert (ours[i] - ref).abs().max() < 1e-5, i
    assert (ours[1] - images[1].float() / 255).abs().max() > 0.05  # blur did something


@FUSED
def test_full_pipeline_matches_functional_composition(fused: bool) -> None:
    cfg = AugmentationConfig(crop_size=40)
    images = _images(6, 56, 72, seed=7)
    params = A.sample_params(12, cfg, (56, 72), torch.Generator().manual_seed(8))
    params.jitter[:] = True
    params.gray[:3] = True
    ours = _unnormalise(A.apply(images, params, cfg, fused=fused))
    functional = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for r in range(12):
        d = params.describe(r)
        x = images[r % 6].float() / 255
        x = TF.hflip(x) if d["flip"] else x
        box = d["crop"]
        x = TF.resized_crop(x, box["top"], box["left"], box["height"], box["width"], [40, 40], antialias=True)
        for name in d["jitter_order"]:
            x = functional[A.JITTER_OPS.index(name)](x, d["jitter_factors"][name])
        x = TF.rgb_to_grayscale(x, num_output_channels=3) if d["grayscale"] else x
        x = TF.gaussian_blur(x, [9, 9], [d["sigma"]] * 2) if d["blur"] else x
        assert (ours[r] - x).abs().max() < 5e-5, r


@pytest.mark.parametrize(("preset", "in_size", "out"), [("tutorial", 96, 96), ("tutorial", 96, 32), ("simclr", 40, 64)])
def test_fused_kernel_matches_the_torch_ops(preset: str, in_size: int, out: int) -> None:
    """The CPU kernel and the batched torch ops (the CUDA path) make the same views from the same draws."""
    cfg = augmentation_preset(preset, crop_size=out)
    images = _images(16, in_size, in_size, seed=21)
    params = A.sample_params(64, cfg, (in_size, in_size), torch.Generator().manual_seed(22))
    fused = A.apply(images, params, cfg, fused=True)
    torch_ops = A.apply(images, params, cfg, fused=False)
    assert (fused - torch_ops).abs().max() < 1e-4
    assert fused.std() > 0.1  # real views, not a constant


def test_fused_kernel_refuses_a_blur_wider_than_the_view() -> None:
    cfg = AugmentationConfig(crop_size=96, blur_p=1.0, blur_kernel=9)
    images = _images(2, 32, 32)
    params = A.sample_params(2, cfg, (32, 32), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="too large"):
        A.apply(images, params, cfg, out_size=4)


# ---------------------------------------------------------------- batching, views, stages, grid


@pytest.mark.parametrize("n_views", [2, 3])
def test_make_views_is_view_major(n_views: int) -> None:
    """Constant-colour images stay constant under every op but jitter/grayscale: row v*B + b is image b."""
    cfg = AugmentationConfig(crop_size=16, jitter_p=0.0, grayscale_p=0.0)
    colours = torch.tensor([[250, 10, 10], [10, 250, 10], [10, 10, 250], [200, 200, 30], [90, 40, 160]])
    images = colours[:, :, None, None].expand(5, 3, 20, 28).to(torch.uint8).contiguous()
    views = A.make_views(images, cfg, n_views=n_views, generator=torch.Generator().manual_seed(0))
    assert views.shape == (n_views * 5, 3, 16, 16) and views.dtype == torch.float32
    expected = (colours.float() / 255 - 0.5) / 0.5
    for v in range(n_views):
        got = views[v * 5 : (v + 1) * 5].mean(dim=(2, 3))
        assert torch.allclose(got, expected, atol=1e-5)


def test_seed_reproduces_views_and_chunks_do_not_matter() -> None:
    cfg = AugmentationConfig(crop_size=24)
    images = _images(10, 32, 32, seed=3)
    a = A.make_views(images, cfg, generator=torch.Generator().manual_seed(11))
    b = A.make_views(images, cfg, generator=torch.Generator().manual_seed(11))
    c = A.make_views(images, cfg, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    params = A.sample_params(30, cfg, (32, 32), torch.Generator().manual_seed(13))
    one = A.apply(images, params, cfg, chunk=1000, threads=1)
    many = A.apply(images, params, cfg, chunk=4, threads=2)
    assert torch.equal(one, many)
    one_ops = A.apply(images, params, cfg, chunk=1000, threads=1, fused=False)
    many_ops = A.apply(images, params, cfg, chunk=4, threads=2, fused=False)
    assert torch.allclose(one_ops, many_ops, atol=1e-6)
    assert one.min() >= -1 - 1e-5 and one.max() <= 1 + 1e-5


def test_augment_stages_share_the_engine() -> None:
    cfg = AugmentationConfig(crop_size=24)
    image = _images(1, 32, 40, seed=4)[0]
    params = _fixed(1, cfg, (32, 40), flip=True, jitter=True, gray=False, blur=True)
    stages = A.augment_stages(image, cfg, params=params)
    assert [name for name, _ in stages] == list(A.STAGES)
    assert all(t.dtype == torch.uint8 for _, t in stages)
    assert torch.equal(stages[0][1], image)
    assert torch.equal(stages[1][1], TF.hflip(image))
    assert all(t.shape == (3, 24, 24) for _, t in stages[2:])
    final = A.denormalise(A.apply(image[None], params, cfg), cfg)[0]
    assert (final.int() - stages[-1][1].int()).abs().max() <= 1
    assert not torch.equal(stages[2][1], stages[3][1])  # jitter changed the crop


def test_preview_grid_layout() -> None:
    cfg = augmentation_preset("tutorial", crop_size=32)
    images = _images(6, 40, 40, seed=5)
    grid = A.preview_grid(images, cfg, n_views=2, seed=0, per_row=3, gap=2, group_gap=10)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 32 + 3 * 10, 3 * (2 * 32 + 2) + 4 * 10, 3)
    views = A.denormalise(A.make_views(images, cfg, 2, torch.Generator().manual_seed(0)), cfg)
    tile = lambda r, c, v: grid[10 + r * 42 : 10 + r * 42 + 32, 10 + c * 76 + v * 34 : 10 + c * 76 + v * 34 + 32]  # noqa: E731
    assert np.array_equal(tile(1, 2, 1), views[6 + 5].permute(1, 2, 0).numpy())  # image 5, second view
    assert np.array_equal(tile(0, 1, 0), views[1].permute(1, 2, 0).numpy())  # image 1, first view
    assert (grid[:10] == 230).all() and (grid[10:42, 42:44] == 230).all()  # margins and the gap between views


def test_bad_input_is_refused() -> None:
    cfg = AugmentationConfig(crop_size=16)
    params = A.sample_params(3, cfg, (16, 16))
    with pytest.raises(ValueError, match="uint8"):
        A.apply(torch.rand(2, 3, 16, 16), params, cfg)
    with pytest.raises(ValueError, match="divide"):
        A.apply(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), params, cfg)


# ---------------------------------------------------------------- config and presets


def test_presets_are_the_seeds_values() -> None:
    t = PRESETS["tutorial"]
    assert (t.flip_p, t.crop_size, t.crop_scale, t.crop_ratio) == (0.5, 96, (0.08, 1.0), (3 / 4, 4 / 3))
    assert (t.jitter_brightness, t.jitter_contrast, t.jitter_saturation, t.jitter_hue, t.jitter_p) == (
        0.5,
        0.5,
        0.5,
        0.1,
        0.8,
    )
    assert (t.grayscale_p, t.blur_kernel, t.blur_sigma, t.blur_p) == (0.2, 9, (0.1, 2.0), 1.0)
    assert t.mean == (0.5, 0.5, 0.5) and t.std == (0.5, 0.5, 0.5)
    s = PRESETS["simclr"]
    assert (s.jitter_brightness, s.jitter_contrast, s.jitter_saturation, s.jitter_hue) == (0.8, 0.8, 0.8, 0.2)
    b = PRESETS["baseline"]
    assert (b.crop_scale, b.jitter_p, b.grayscale_p, b.blur_kernel, b.blur_sigma, b.blur_p) == (
        (0.8, 1.0),
        0.0,
        0.2,
        9,
        (0.1, 0.5),
        1.0,
    )
    images = _images(4, 24, 24)
    none = augmentation_preset("none", crop_size=24)
    views = A.make_views(images, none, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_unnormalise(views), images.float().repeat(2, 1, 1, 1) / 255, atol=1e-6)


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name: str, tmp_path) -> None:
    cfg = augmentation_preset(name)
    again = AugmentationConfig.from_json(cfg.to_json())
    assert again == cfg
    path = tmp_path / "aug.json"
    path.write_text(cfg.to_json())
    assert load_augmentation(str(path), crop_size=48) == augmentation_preset(name, crop_size=48)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flip_p": 1.5}, "flip_p is a probability"),
        ({"jitter_p": -0.1}, "jitter_p is a probability"),
        ({"grayscale_p": "0.2"}, "grayscale_p must be a finite number"),
        ({"blur_kernel": 8}, "positive odd integer"),
        ({"blur_kernel": 9.5}, "whole number"),
        ({"blur_kernel": 41, "crop_size": 16}, "too large for crop_size"),
        ({"crop_scale": [0.9, 0.2]}, "low <= high"),
        ({"crop_scale": [0.0, 1.0]}, r"\(0, 1\]"),
        ({"crop_scale": 0.5}, "pair of finite numbers"),
        ({"crop_ratio": [-1, 2]}, "must be positive"),
        ({"jitter_hue": 0.7}, r"\[0, 0.5\]"),
        ({"jitter_contrast": -1}, ">= 0"),
        ({"blur_sigma": [0, 1]}, "blur_sigma must be positive"),
        ({"crop_size": 4}, "at least 8"),
        ({"mean": [0.5, 0.5]}, "one number per RGB channel"),
        ({"std": [0.5, 0.0, 0.5]}, "std must be positive"),
        ({"colour": 1}, "unknown AugmentationConfig field"),
    ],
)
def test_validation_errors(change: dict, message: str) -> None:
    data = {**AugmentationConfig().to_dict(), **change}
    with pytest.raises(ConfigError, match=message):
        AugmentationConfig.from_json(json.dumps(data))


def test_bad_json_and_unknown_preset(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        AugmentationConfig.from_json("{flip_p: 1")
    with pytest.raises(ConfigError, match="neither a preset"):
        load_augmentation(str(tmp_path / "missing.json"))


# ---------------------------------------------------------------- CLI


def test_preview_cli_writes_the_grid(tmp_path, capsys) -> None:
    from simclr_core.__main__ import main

    out = tmp_path / "grid.png"
    args = ["preview", "--data", "shapes:train?n=2", "--aug", "baseline", "--images", "4", "--views", "3"]
    assert main([*args, "--image-size", "32", "--per-row", "2", "--seed", "3", "--out", str(out)]) == 0
    grid = np.array(Image.open(out))
    assert grid.shape == (2 * 32 + 3 * 10, 2 * (3 * 32 + 2 * 2) + 3 * 10, 3)
    assert "4 images x 3 views" in capsys.readouterr().out
    assert main([*args, "--image-size", "32", "--per-row", "2", "--seed", "3", "--out", str(tmp_path / "b.png")]) == 0
    assert np.array_equal(grid, np.array(Image.open(tmp_path / "b.png")))  # the seed reproduces it


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--aug", "strong"], "neither a preset"),
        (["--views", "0"], "--views must be at least 1"),
        (["--out", "/nonexistent/x.png"], "does not exist"),
    ],
)
def test_preview_cli_user_errors(extra: list[str], message: str, tmp_path, capsys) -> None:
    from simclr_core.__main__ import main

    argv = ["preview", "--data", "shapes:train?n=2", "--image-size", "32", "--out", str(tmp_path / "g.png"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_augmentation_pool_leaves_later_threads_all_their_intra_op_threads() -> None:
    """A pool's workers run torch single-threaded, but a thread started afterwards (the dashboard's next
    training) must still get the process's thread count: it used to get 1 and train at half the speed."""
    import threading

    from simclr_core import augment as augment_module

    before = torch.get_num_threads()
    if before < 2:
        pytest.skip("one intra-op thread here: nothing to lose")
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    cfg = augmentation_preset("simclr", 8)
    seen: dict[str, int] = {}

    def first_training() -> None:
        augment_module.apply(images, augment_module.sample_params(8, cfg, (16, 16)), cfg, threads=7)  # a new pool

    def next_training() -> None:
        seen["threads"] = torch.get_num_threads()

    for target in (first_training, next_training):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert seen["threads"] == before
    assert torch.get_num_threads() == before
