"""The tutorial's published files: downloaded as the seed does (base URL + name), with progress; offline, one message."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simclr_core import tutorial_files as tf
from simclr_core.tensorboard_events import read_scalars


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real HTTP server on loopback laid out like the tutorial's saved-models folder; the base URL points at it."""
    from tensorboardX import SummaryWriter

    served = tmp_path / "served"
    writer = SummaryWriter(str(tmp_path / "tb"))
    for step in range(200):
        writer.add_scalar("train_loss", 5.0 - step / 100, step)
    writer.close()
    target = served / tf.FILES["simclr_events"].name
    target.parent.mkdir(parents=True)
    target.write_bytes(next((tmp_path / "tb").glob("events.out.tfevents.*")).read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(tf.URL_ENV, f"http://127.0.0.1:{server.server_port}/")
    yield target
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_seeds_url_scheme() -> None:
    assert tf.BASE_URL + tf.FILES["simclr_events"].name == (
        "https://raw.githubusercontent.com/phlippe/saved_models/main/tutorial17/"
        "tensorboards/SimCLR/events.out.tfevents.SimCLR"
    )


def test_a_download_reports_progress_and_lands_in_the_data_root(mirror: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    root = tmp_path / "data"
    path = tf.fetch("simclr_events", root, lambda text, frac: seen.append((text, frac)))
    assert path == root / "tutorial17" / "tensorboards" / "SimCLR" / "events.out.tfevents.SimCLR"
    assert path.read_bytes() == mirror.read_bytes() and not list(path.parent.glob("*.part"))
    assert seen and seen[-1][1] == pytest.approx(1.0) and "downloading the tutorial's SimCLR run" in seen[-1][0]
    assert len(read_scalars(path)["train_loss"]) == 200
    mirror.unlink()  # a second call finds the local copy and asks nothing
    assert tf.fetch("simclr_events", root) == path


def test_offline_says_what_to_do_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tf.URL_ENV, f"http://127.0.0.1:{closed_port()}/")
    with pytest.raises(tf.DownloadError) as err:
        tf.fetch("simclr_events", tmp_path)
    message = str(err.value)
    assert "offline" in message and "upload the file here" in message
    assert str(tf.local_path("simclr_events", tmp_path)) in message and "\n" not in message
    assert not list(tmp_path.rglob("*.part"))


def test_a_missing_file_on_the_server_names_the_http_status(mirror: Path, tmp_path: Path) -> None:
    mirror.unlink()
    with pytest.raises(tf.DownloadError, match="HTTP 404"):
        tf.fetch("simclr_events", tmp_path / "data")


def test_the_real_address_from_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without internet (developer machines, CI) the offline message; with it, the tutorial's real run."""
    monkeypatch.delenv(tf.URL_ENV, raising=False)
    try:
        path = tf.fetch("resnet_events", tmp_path)
    except tf.DownloadError as err:
        assert "offline" in str(err) or "HTTP" in str(err)
    else:
        assert {"train_acc", "val_acc"} <= set(read_scalars(path))
