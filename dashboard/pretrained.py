"""A checkpoint file for the Embeddings and Probe pages: an upload, or the tutorial's pretrained SimCLR.ckpt.

The tutorial's encoder (ResNet-18, 500 epochs on STL-10) is fetched as the seed fetches it
(``simclr_core.tutorial_files``: the saved-models repository's URL scheme, into the data cache,
once) with a progress bar, so a user without a GPU can explore a fully trained encoder. Offline,
one message says how to upload the file instead. Both routes end in the same loader
(``simclr_core.model.load_checkpoint``, which reads the tutorial's ``convnet.*`` layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from dashboard.errors import attempt

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

KEY = "simclr_ckpt"  # simclr_core.tutorial_files.FILES
FETCHED = "_tutorial_ckpt"  # session key: the local path once fetched (shared by both pages)
# The tutorial evaluates its encoder on STL-10's labelled splits (downloaded by torchvision, 2.6 GB).
TUTORIAL_SPECS = ("stl10:train", "stl10:test")


@dataclass(frozen=True)
class Choice:
    """What the user chose: an upload (validated when read) or the tutorial's local file."""

    upload: UploadedFile | None = None
    tutorial: Path | None = None

    @property
    def label(self) -> str:
        return self.upload.name if self.upload is not None else "tutorial SimCLR.ckpt"

    def checkpoint(self) -> Path | None:
        """The checkpoint's path on the server (an upload is saved and checked first; None: a message was shown)."""
        if self.upload is not None:
            from dashboard.evaluation import uploaded_checkpoint

            return uploaded_checkpoint(self.upload)
        return self.tutorial


def fetch_tutorial_checkpoint() -> Path | None:
    """The tutorial's SimCLR.ckpt: found in the data cache, else downloaded with a progress bar; None after a message."""
    from simclr_core.data import data_root
    from simclr_core.model import load_checkpoint
    from simclr_core.tutorial_files import FILES, DownloadError, fetch

    item = FILES[KEY]
    bar = st.progress(0.0, text=f"looking for {item.title} ...")
    try:
        path = fetch(KEY, data_root(), lambda text, frac: bar.progress(min(max(frac, 0.0), 1.0), text=text))
    except DownloadError as err:  # offline or refused: one message, how to upload it instead
        text = str(err)
        st.error(text[:1].upper() + text[1:], icon=":material/cloud_off:")
        return None
    finally:
        bar.empty()
    if attempt("use the tutorial's SimCLR.ckpt", load_checkpoint, path) is None:
        return None
    return path


def checkpoint_input(upload_key: str, button_key: str) -> Choice | None:
    """An upload beside the tutorial's download button; the upload wins when both are there. None: nothing yet."""
    from simclr_core.tutorial_files import FILES

    ss = st.session_state
    left, right = st.columns([3, 2], vertical_alignment="center")
    upload = left.file_uploader("Checkpoint (.ckpt)", type=["ckpt", "pt", "pth"], key=upload_key)
    pressed = right.button(
        "The tutorial's pretrained SimCLR",
        icon=":material/download:",
        key=button_key,
        help="ResNet-18 trained for 500 epochs on STL-10 by the tutorial this project follows.",
    )
    right.caption(
        f"{FILES[KEY].size}, downloaded once from the tutorial's saved-models repository into the data cache."
    )
    if pressed:  # the bar and any message across the page, below both
        path = fetch_tutorial_checkpoint()
        if path is not None:
            ss[FETCHED] = str(path)
    if upload is not None:
        return Choice(upload=upload)
    fetched = ss.get(FETCHED)
    if fetched and Path(fetched).is_file():
        st.caption(":material/check_circle: Using the tutorial's SimCLR.ckpt (an upload replaces it).")
        return Choice(tutorial=Path(fetched))
    return None
