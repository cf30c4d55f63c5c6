"""Share links (``?setup=``) and setup files: the augmentation and training settings as one small object.

A setup holds only what differs from the defaults, so links stay short; applying one validates
all of it first, so a bad link or file changes nothing.
"""

from __future__ import annotations

import base64
import json
import zlib

import streamlit as st

from dashboard.state import current_augmentation, current_training, set_augmentation, set_training
from simclr_core.config import AugmentationConfig, ConfigError, TrainConfig

Setup = dict[str, dict[str, object]]  # {"aug": {...}, "train": {...}, "train_aug": {...}}
SECTIONS = ("aug", "train", "train_aug")


def setup_dict() -> Setup:
    """The current augmentation + training setup (only what differs from the defaults)."""
    aug = current_augmentation().to_dict()
    train = current_training().to_dict()
    train.pop("aug", None)
    base_aug, base_train = AugmentationConfig().to_dict(), TrainConfig().to_dict()
    train_aug = dict(st.session_state.get("train_aug") or {})
    return {
        "aug": {k: v for k, v in aug.items() if base_aug[k] != v},
        "train": {k: v for k, v in train.items() if base_train[k] != v},
        "train_aug": {k: v for k, v in train_aug.items() if base_aug.get(k) != v},
    }


def encode_setup(setup: Setup) -> str:
    raw = zlib.compress(json.dumps(setup, separators=(",", ":")).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_setup(text: str) -> Setup:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        data = json.loads(raw)
    except (ValueError, zlib.error) as err:
        raise ConfigError(f"not a SimCLR Studio setup ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError("not a SimCLR Studio setup (expected an object)")
    return data


def apply_setup(setup: Setup) -> None:
    """Validate a whole setup first, then put it into the controls: a bad file changes nothing."""
    unknown = sorted(set(setup) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown setup section(s): {', '.join(unknown)}; expected aug, train, train_aug")
    aug = AugmentationConfig.from_dict({**AugmentationConfig().to_dict(), **dict(setup.get("aug") or {})})
    train_aug = dict(setup.get("train_aug") or {})
    train = TrainConfig.from_dict(
        {
            **TrainConfig().to_dict(),
            **dict(setup.get("train") or {}),
            "aug": {**AugmentationConfig().to_dict(), **train_aug},
        }
    ).validate()
    set_augmentation(aug)
    set_training(train)


def apply_shared_link() -> None:
    """Apply ``?setup=`` whenever it names a setup not yet applied in this session.

    A second link pasted into the same tab must win too, but a link is not applied again on
    every rerun (that would undo the user's changes).
    """
    ss = st.session_state
    encoded = st.query_params.get("setup")
    if encoded and ss.get("_setup_applied") != encoded:
        ss["_setup_applied"] = encoded
        try:
            apply_setup(decode_setup(encoded))
            ss["_notice"] = "Loaded the augmentation and training setup from the shared link."
        except (ValueError, TypeError) as err:
            ss["_notice_error"] = f"The shared link's setup could not be read: {err}"


def share_link_query() -> str:
    return "?setup=" + encode_setup(setup_dict())
