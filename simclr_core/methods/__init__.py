"""One loss module per method on the shared encoder and head; ``make_method`` picks one by name.

simclr (NT-Xent), byol (predictor + momentum target), barlowtwins (cross-correlation to identity),
vicreg (invariance, variance, covariance), supcon (supervised contrastive: needs labels).
"""

from __future__ import annotations

from torch import nn

from simclr_core.config import BYOL_BASE_MOMENTUM, METHODS
from simclr_core.methods.barlowtwins import BarlowTwins
from simclr_core.methods.base import RANK_METRICS, Method
from simclr_core.methods.byol import BYOL
from simclr_core.methods.simclr import SimCLR
from simclr_core.methods.supcon import SupCon
from simclr_core.methods.vicreg import VICReg

# The papers' projectors normalise their hidden layer (BYOL, Barlow Twins, VICReg); SimCLR's seed head does not.
BATCH_NORM_HEAD = ("byol", "barlowtwins", "vicreg")


def uses_head_batch_norm(method: str, choice: bool | None = None) -> bool:
    """The config's explicit choice, else what the method's paper does."""
    return method in BATCH_NORM_HEAD if choice is None else choice


def make_method(name: str, net: nn.Module, dim: int, target_momentum: float = BYOL_BASE_MOMENTUM) -> Method:
    """The method ``name`` for the online network ``net`` (``model.SimCLRNet``) with projections of ``dim``."""
    if name == "byol":
        return BYOL(net, dim, target_momentum)
    classes = {"simclr": SimCLR, "barlowtwins": BarlowTwins, "vicreg": VICReg, "supcon": SupCon}
    if name not in classes:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return classes[name]()


__all__ = ["BATCH_NORM_HEAD", "METHODS", "RANK_METRICS", "Method", "make_method", "uses_head_batch_norm"]
