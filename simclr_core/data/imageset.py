"""The decoded dataset every consumer sees: uint8 images, int64 labels, class names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class ImageSet:
    """``images``: (N, 3, H, W) uint8, memory-mapped from the disk cache when large.
    ``labels``: (N,) int64, -1 for unlabelled images. ``classes``: names indexed by label.
    ``warnings``: files skipped while decoding and why (shown by the CLI and the dashboard).
    ``cached``: True when this load read an existing cache instead of decoding.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    spec: str
    warnings: list[str] = field(default_factory=list)
    cache_path: Path | None = None
    mapped: bool = False
    cached: bool = False

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be (N,) for N={self.images.shape[0]}, got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def nbytes(self) -> int:
        """Bytes of the image tensor (plus labels), whether in RAM or mapped from disk."""
        return self.images.numel() * self.images.element_size() + self.labels.numel() * 8

    @property
    def labelled(self) -> bool:
        return bool(len(self)) and bool((self.labels >= 0).any())

    def per_class_counts(self) -> dict[str, int]:
        """Images per class name (unlabelled images are not counted)."""
        known = self.labels[self.labels >= 0]
        counts = (
            torch.bincount(known, minlength=len(self.classes)).tolist() if known.numel() else [0] * len(self.classes)
        )
        return dict(zip(self.classes, counts, strict=True))

    @property
    def n_unlabelled(self) -> int:
        return int((self.labels < 0).sum())
