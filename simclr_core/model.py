"""Encoder f and projection head g of SimCLR: ``net(x) -> (h, z)``.

"We use a MLP with one hidden layer to obtain z = g(h) = W2 ReLU(W1 h)" (Chen et al. 2020);
the seed widens the hidden layer to 4 * hidden_dim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from simclr_core.tiny_maps import use_tiny_map_convs

FEATURE_DIMS = {"resnet10": 512, "resnet18": 512, "resnet34": 512, "resnet50": 2048}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says why."""


def make_backbone(name: str = "resnet18", small_input: bool = False) -> nn.Module:
    """A torchvision ResNet with its classifier removed, so it returns h: (B, feat); state dicts as torchvision's."""
    if name not in FEATURE_DIMS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(FEATURE_DIMS)}")
    if name == "resnet10":
        # ResNet-18 with one basic block per stage instead of two: ~2x its views/s on a CPU.
        net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    else:
        net = getattr(torchvision.models, name)(weights=None)
    if small_input:
        # 32x32 images lose too much to a 7x7 stride-2 conv plus max-pool (as in the SimCLR paper's CIFAR setup).
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return use_tiny_map_convs(net)  # 32 px views through the standard stem end in 2x2 and 1x1 maps


def make_head(feat_dim: int, hidden_dim: int, batch_norm: bool = False) -> nn.Sequential:
    """g: Linear-ReLU-Linear (SimCLR's); ``batch_norm`` puts BatchNorm1d before the ReLU, as BYOL's, Barlow Twins'
    and VICReg's projectors have (without it BYOL's target tends to collapse)."""
    wide = 4 * hidden_dim
    norm = [nn.BatchNorm1d(wide)] if batch_norm else []
    return nn.Sequential(nn.Linear(feat_dim, wide), *norm, nn.ReLU(inplace=True), nn.Linear(wide, hidden_dim))


class SimCLRNet(nn.Module):
    """Backbone f and head g; ``forward`` returns (h: (B, feat), z: (B, hidden_dim))."""

    def __init__(
        self,
        backbone: str = "resnet18",
        hidden_dim: int = 128,
        small_input: bool = False,
        head_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.feat_dim = FEATURE_DIMS[backbone]
        self.backbone = make_backbone(backbone, small_input)
        self.head = make_head(self.feat_dim, hidden_dim, head_batch_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.head(h)


@dataclass
class LoadedCheckpoint:
    net: SimCLRNet
    hparams: dict[str, Any]  # TrainConfig fields where known (image_size, aug, backbone, ...)
    source: str  # "simclr_studio" or "tutorial"
    epoch: int | None
    global_step: int | None


def _tutorial_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the seed's ``convnet.*`` (ResNet with fc = Sequential(Linear, ReLU, Linear)) onto ours."""
    out = {}
    for key, value in state.items():
        if not key.startswith("convnet."):
            continue
        key = key[len("convnet.") :]
        if key.startswith("fc.0."):
            out["head.0." + key[5:]] = value
        elif key.startswith("fc.2."):
            out["head.2." + key[5:]] = value
        else:
            out["backbone." + key] = value
    return out


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load this project's or the tutorial's Lightning checkpoint, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign/unsafe files
        raise CheckpointError(
            f"{path.name} is not a readable PyTorch checkpoint ({type(err).__name__}: {str(err)[:200]}). "
            "Use a last.ckpt/best.ckpt from a run directory or the tutorial's SimCLR.ckpt."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path.name} holds no Lightning state_dict; it is not a SimCLR checkpoint")
    state = ckpt["state_dict"]
    hp = dict(ckpt.get("hyper_parameters") or {})
    if any(k.startswith("convnet.") for k in state):
        source = "tutorial"
        hidden = int(hp.get("hidden_dim", state["convnet.fc.2.weight"].shape[0]))
        hp = {"backbone": "resnet18", "small_input": False, "image_size": 96, "hidden_dim": hidden, **hp}
        weights = _tutorial_state_dict(state)
    else:
        source = "simclr_studio"
        weights = {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
        if not weights:
            raise CheckpointError(f"{path.name} has neither 'net.*' (SimCLR Studio) nor 'convnet.*' (tutorial) weights")
    cfg = hp.get("config", hp)
    try:
        net = SimCLRNet(
            cfg.get("backbone", "resnet18"),
            int(cfg.get("hidden_dim", 128)),
            bool(cfg.get("small_input", False)),
            head_batch_norm="head.1.running_mean" in weights,  # BYOL, Barlow Twins and VICReg runs' heads
        )
        net.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path.name}: weights do not fit the model they describe ({str(err)[:300]})") from None
    net.eval()
    return LoadedCheckpoint(net, dict(cfg), source, ckpt.get("epoch"), ckpt.get("global_step"))
