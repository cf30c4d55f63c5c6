"""The tutorial's published files (UvA DL tutorial 17, the seed): its pretrained SimCLR.ckpt and the event files
of its SimCLR and ResNet runs.

Fetched the way the seed fetches them: ``base_url + file_name`` from the tutorial's saved-models repository,
into ``<data root>/tutorial17/<file_name>`` (the seed's own ``CHECKPOINT_PATH`` layout), once. Downloads
report progress through a callback and end in one clear message when the machine is offline, saying
where to put a copy brought by hand (found there from then on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from simclr_core import downloads

# The seed's base_url; $SIMCLR_STUDIO_TUTORIAL_URL points at a mirror (or a test server) instead.
BASE_URL = "https://raw.githubusercontent.com/phlippe/saved_models/main/tutorial17/"
URL_ENV = "SIMCLR_STUDIO_TUTORIAL_URL"
TIMEOUT_S = 30.0

Progress = downloads.Progress


@dataclass(frozen=True)
class TutorialFile:
    name: str  # path below the base URL and below <data root>/tutorial17/
    title: str
    size: str  # as the user should expect it


FILES = {
    # The seed's own pretrained encoder (ResNet-18, 500 epochs on STL-10's unlabelled split; weights only,
    # as the tutorial's ModelCheckpoint(save_weights_only=True) wrote it): model.load_checkpoint reads it.
    "simclr_ckpt": TutorialFile("SimCLR.ckpt", "the tutorial's pretrained SimCLR encoder (SimCLR.ckpt)", "46 MB"),
    "simclr_events": TutorialFile(
        "tensorboards/SimCLR/events.out.tfevents.SimCLR", "the tutorial's SimCLR run (500 epochs)", "1.1 MB"
    ),
    "resnet_events": TutorialFile(
        "tensorboards/classification/ResNet/events.out.tfevents.ResNet",
        "the tutorial's supervised ResNet-18 run",
        "33 kB",
    ),
}


class DownloadError(ValueError):
    """A download that could not finish; the message says what to do instead (one line). A ValueError: the
    dashboard shows user errors as a message, not as an unexpected bug."""


def base_url() -> str:
    url = os.environ.get(URL_ENV) or BASE_URL
    return url if url.endswith("/") else url + "/"


def local_path(key: str, root: Path) -> Path:
    """Where the file lives on this machine: ``<root>/tutorial17/<name>``."""
    return root / "tutorial17" / FILES[key].name


def fetch(key: str, root: Path, progress: Progress = None) -> Path:
    """The file's local path, downloaded first if it is not there yet."""
    item = FILES[key]
    target = local_path(key, root)
    if target.is_file() and target.stat().st_size > 0:
        return target
    url = base_url() + item.name
    try:
        return downloads.download(url, target, item.title, progress, timeout=TIMEOUT_S)
    except downloads.HTTPStatus as err:
        raise DownloadError(
            f"could not download {item.title} from {url}: the server answered HTTP {err.code} {err.reason}. "
            f"Download it elsewhere and upload it here, or put it at {target}"
        ) from None
    except downloads.Offline as err:
        raise DownloadError(
            f"could not download {item.title} ({item.size}) from {url} ({err.reason}): this machine seems to be "
            f"offline. On a machine with internet, download that address and upload the file here, or copy it "
            f"to {target} (it is found there from then on)"
        ) from None
    except downloads.Incomplete as err:
        raise DownloadError(
            f"the download of {item.title} from {url} stopped at {err.got} of {err.total} bytes; try again"
        ) from None
    except downloads.NotSaved as err:
        raise DownloadError(f"could not save {item.title} to {target}: {err}") from None
