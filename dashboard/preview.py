"""The Augment page's computations: its source images, the grid of views, the step-through, the code snippet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from dashboard.errors import attempt
from dashboard.services import dataset
from dashboard.state import data_spec

if TYPE_CHECKING:
    import torch

    from simclr_core.config import AugmentationConfig


def to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 tensor/array -> (H, W, 3) uint8 array for st.image."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def upload_types() -> list[str]:
    """The file types the uploader takes: the data layer's image extensions, without the dot."""
    from simclr_core.data.decode import IMAGE_EXTENSIONS

    return [e.lstrip(".") for e in IMAGE_EXTENSIONS]


@st.cache_data(max_entries=32, show_spinner=False)
def _decode_upload(data: bytes, size: int) -> np.ndarray:
    from simclr_core.data.decode import decode_image

    return decode_image(data, size)


def preview_images(source: str, n: int, size: int, pick: int) -> torch.Tensor | None:
    """(n, 3, size, size) uint8 images from the sidebar's dataset or the uploads; None if there are none."""
    import torch

    if source == "Upload":
        files = st.session_state.get("upload.aug_images") or []
        tiles, skipped = [], []
        for f in files:
            try:
                tiles.append(_decode_upload(f.getvalue(), size))
            except Exception as err:  # DecodeError and Pillow's many error types: report and skip the file
                skipped.append(f"{f.name} ({err or type(err).__name__})")
        if skipped:
            st.warning("Skipped files that are not readable images: " + "; ".join(skipped), icon=":material/warning:")
        if not tiles:
            return None
        return torch.from_numpy(np.stack(tiles[:n])).permute(0, 3, 1, 2).contiguous()
    spec = data_spec()
    with st.spinner(f"Loading {spec} ..."):
        data = attempt(f"load the dataset {spec!r}", dataset, spec, size)
    if data is None or len(data) == 0:
        return None
    return data.images[preview_indices(len(data), n, pick)].contiguous()


def preview_indices(total: int, n: int, pick: int) -> torch.Tensor:
    """Which of ``total`` dataset images the preview shows: the first ``n``, or a draw seeded by ``pick``."""
    import torch

    gen = torch.Generator().manual_seed(int(pick))
    return torch.randperm(total, generator=gen)[:n] if pick else torch.arange(min(n, total))


def views_grid(images: torch.Tensor, cfg: AugmentationConfig, n_views: int, seed: int) -> np.ndarray | None:
    """The grid of ``n_views`` views per image, views of one image side by side (None: the error is shown)."""
    from simclr_core import augment

    per_row = 3 if n_views <= 2 else 2
    return attempt("draw the views", augment.preview_grid, images, cfg, n_views=n_views, seed=seed, per_row=per_row)


def step_through(image: torch.Tensor, cfg: AugmentationConfig, seed: int) -> list[tuple[str, np.ndarray, str]] | None:
    """Each stage of one view of ``image: (3, H, W) uint8``: (stage, picture, what was drawn for it)."""
    import torch

    from simclr_core import augment

    gen = torch.Generator().manual_seed(seed)
    params = augment.sample_params(1, cfg, (image.shape[-2], image.shape[-1]), gen)
    stages = attempt("step through the operations", augment.augment_stages, image, cfg, params=params)
    if not stages:
        return None
    notes = stage_notes(params.describe(0))
    return [(name, to_hwc(tile), notes.get(name, "")) for name, tile in stages]


def stage_notes(params: dict[str, Any]) -> dict[str, str]:
    """One line per step-through stage saying what was drawn for it (``params``: ``AugParams.describe(i)``)."""
    c = params["crop"]
    jf = params["jitter_factors"]
    jitter = (
        ("order " + " → ".join(params["jitter_order"]) + "; " + ", ".join(f"{k[:3]} {v:.2f}" for k, v in jf.items()))
        if params["jitter"]
        else "not drawn"
    )
    return {
        "original": "input image",
        "flip": "flipped" if params["flip"] else "not flipped",
        "crop": f"{c['width']}×{c['height']} px at ({c['left']}, {c['top']})",
        "colour jitter": jitter,
        "grayscale": "converted" if params["grayscale"] else "not drawn",
        "blur": f"sigma {params['sigma']:.2f}" if params["blur"] else "not drawn",
    }


def python_snippet(cfg: AugmentationConfig) -> str:
    """Code that reproduces this preview and trains with it, outside the dashboard."""
    from simclr_core.config import AugmentationConfig

    base = AugmentationConfig().to_dict()
    changed = [f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in cfg.to_dict().items() if base[k] != v]
    aug = (
        ("aug = AugmentationConfig(\n    " + ",\n    ".join(changed) + ",\n).validate()")
        if changed
        else "aug = AugmentationConfig()  # the tutorial's pipeline"
    )
    return (
        "from simclr_core.augment import make_views\n"
        "from simclr_core.config import AugmentationConfig, TrainConfig\n"
        "from simclr_core.data import load_dataset\n\n"
        f"{aug}\n"
        f"images = load_dataset({data_spec()!r}, image_size=96).images[:6]  # (6, 3, 96, 96) uint8\n"
        "views = make_views(images, aug, n_views=2)  # (12, 3, S, S) float: all first views, then all second\n"
        "config = TrainConfig(aug=aug)  # or: python -m simclr_core train --aug augmentation.json\n"
    )
