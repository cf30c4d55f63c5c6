"""Checkpoint files read without trusting them, and torch's load errors worded for a user.

``torch.load(weights_only=True)`` refuses pickled Python objects, which is what keeps a
malicious checkpoint from running code. Its error message then advises re-running with
``weights_only=False``: advice we must never pass on, so every message that reaches a user
goes through ``clean_message`` (torch-free, so the CLI and the dashboard can word any error).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
# torch's refusal text, up to the end of the sentence that quotes it (model.py wraps it in "(...). ")
_WEIGHTS_ONLY = re.compile(r"Weights only load failed\..*?(?=\)\. |\)$|$)", re.S)
# Lightning keys a resume needs besides the weights; a weights-only best.ckpt or a foreign file lacks them.
RESUME_KEYS = ("state_dict", "global_step", "optimizer_states", "loops")


def _refusal(text: str) -> str:
    found = _GLOBAL.search(text)
    what = f"the Python object {found.group(1)}" if found else "Python objects besides tensors"
    return f"it holds {what}, which is never loaded because loading it could run code"


def clean_message(text: str) -> str:
    """``text`` without terminal colours and without torch's advice to load untrusted pickles."""
    text = _ANSI.sub("", text)
    if "Weights only load failed" in text:
        text = _WEIGHTS_ONLY.sub(lambda m: _refusal(m.group(0)), text)
    return re.sub(r"\s*\n\s*", " ", text).strip()


def load_reason(err: BaseException) -> str:
    """One short clause saying why torch could not load a file."""
    text = str(err)
    if "Weights only load failed" in text:
        return _refusal(text)
    if "central directory" in text or "zip archive" in text:
        return "the file is truncated or is not a PyTorch zip checkpoint"
    return clean_message(f"{type(err).__name__}: {text}")[:200]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, tensors memory-mapped (cheap for a look at its keys). Raises CheckpointError."""
    import torch

    from simclr_core.model import CheckpointError

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises many types for truncated, foreign or unsafe files
        raise CheckpointError(f"{path} cannot be read: {load_reason(err)}; use a good copy or start anew") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it holds a {type(ckpt).__name__})")
    return ckpt


def resume_step(path: str | Path) -> int:
    """The optimiser step a full ``last.ckpt`` resumes from; refuses files Lightning could not resume."""
    from simclr_core.model import CheckpointError

    ckpt = read_checkpoint(path)
    missing = [k for k in RESUME_KEYS if k not in ckpt]
    if missing or not isinstance(ckpt.get("global_step"), int):
        raise CheckpointError(
            f"{path} is not a full training checkpoint of this project (missing {', '.join(missing) or 'global_step'}); "
            "resume needs the run's own last.ckpt. Start a new run instead"
        )
    return int(ckpt["global_step"])
