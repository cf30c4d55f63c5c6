"""Shared test setup: an isolated data root so tests never touch the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores: keep torch from oversubscribing when several processes run.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decoded datasets are cached here for the whole session (shapes are generated once)."""
    root = Path(os.environ.get("SIMCLR_STUDIO_TEST_DATA") or tmp_path_factory.mktemp("data_root"))
    os.environ["SIMCLR_STUDIO_DATA"] = str(root)
    return root
