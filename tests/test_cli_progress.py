"""CLI progress: one shared download loop (datasets, tutorial files) and tqdm bars on stderr for downloads, decoding,
feature encoding and probing, driven by the engine's ``progress(message, fraction)`` callbacks."""

from __future__ import annotations

import functools
import http.server
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from torchvision.datasets import CIFAR10

from simclr_core import downloads
from simclr_core import tutorial_files as tf
from simclr_core.__main__ import main
from simclr_core.cli_progress import Bars, split_message
from simclr_core.data import DatasetError, load_dataset


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the bars draw (they are off in logs and pipes)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on loopback, and its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_split_message_separates_the_step_from_its_counts() -> None:
    assert split_message("downloading CIFAR-10 (12.0 MB of 170.5 MB)") == (
        "downloading CIFAR-10",
        "12.0 MB of 170.5 MB",
    )
    assert split_message("downloading the tutorial's SimCLR run (500 epochs) (1.0 MB)") == (
        "downloading the tutorial's SimCLR run (500 epochs)",
        "1.0 MB",
    )
    assert split_message("preparing STL-10 train") == ("preparing STL-10 train", "")
    assert split_message("the seed's run (tutorial)") == ("the seed's run (tutorial)", "")


def test_bars_draw_one_bar_per_step_and_clear_the_ones_that_never_moved() -> None:
    out = Terminal()
    with Bars(file=out) as bars:
        bars("verifying a.tar.gz", 0.0)
        bars("decoding imgs (5/10 images)", 0.5)
        bars("decoding imgs (10/10 images)", 1.0)
        bars("drawing shapes (1/2)", 0.5)
    text = out.getvalue()
    lines = [line.split("\r")[-1] for line in text.split("\n") if line.strip("\r ")]
    assert lines[0].startswith("decoding imgs (10/10 images): 100%|")  # kept, with its last counts
    assert lines[1].startswith("drawing shapes (1/2):  50%|")
    assert "verifying a.tar.gz" in text and not any("verifying" in line for line in lines)  # shown, then cleared
    quiet = io.StringIO()  # not a terminal: nothing drawn
    with Bars(file=quiet) as bars:
        bars("decoding (1/1)", 1.0)
    assert quiet.getvalue() == ""


def test_both_downloaders_share_one_loop_with_their_own_messages(
    served: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, url = served
    calls: list[str] = []
    real = downloads.download

    def spy(u: str, *args, **kwargs):
        calls.append(u)
        return real(u, *args, **kwargs)

    monkeypatch.setattr(downloads, "download", spy)
    # The tutorial's file: fetched, with progress.
    name = tf.FILES["simclr_events"].name
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_bytes(b"x" * 300_000)
    monkeypatch.setenv(tf.URL_ENV, url)
    seen: list[tuple[str, float]] = []
    path = tf.fetch("simclr_events", tmp_path / "data", lambda m, f: seen.append((m, f)))
    assert path.read_bytes() == b"x" * 300_000
    assert seen[-1] == ("downloading the tutorial's SimCLR run (500 epochs) (300.0 kB of 300.0 kB)", 1.0)
    # A dataset archive: downloaded by the same loop, then refused by its md5 (not the real CIFAR-10).
    (folder / "cifar-10-python.tar.gz").write_bytes(b"y" * 1000)
    monkeypatch.setattr(CIFAR10, "url", url + "cifar-10-python.tar.gz")
    seen.clear()
    with pytest.raises(DatasetError, match="incomplete or damaged"):
        load_dataset("cifar10:test", image_size=32, root=tmp_path / "data", progress=lambda m, f: seen.append((m, f)))
    assert ("downloading CIFAR-10 (1.0 kB of 1.0 kB)", 1.0) in seen
    assert calls == [url + name, url + "cifar-10-python.tar.gz"]
    # Offline: each caller's own message, no half file.
    monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz")
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10:test", image_size=32, root=tmp_path / "offline")
    assert (
        "could not download CIFAR-10" in str(err.value) and "offline" in str(err.value) and "shapes" in str(err.value)
    )
    assert not list((tmp_path / "offline").rglob("*.part"))
    # A missing file: the HTTP status, in the dataset's words.
    monkeypatch.setattr(CIFAR10, "url", url + "missing.tar.gz")
    with pytest.raises(DatasetError, match="HTTP 404.*by hand"):
        load_dataset("cifar10:test", image_size=32, root=tmp_path / "missing")


def test_data_command_draws_its_decoding_as_a_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert main(["data", "--data", "shapes:train?n=3&seed=11", "--image-size", "32", "--data-root", str(tmp_path)]) == 0
    err = sys.stderr.getvalue()
    assert "drawing shapes:train at 32x32: 100%|" in err and "\r" in err
    assert "dataset     shapes:train" in capsys.readouterr().out


def test_probe_json_stays_clean_while_bars_draw_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_DATA", str(tmp_path))  # nothing cached: every step runs
    monkeypatch.setattr(sys, "stderr", Terminal())
    code = main(
        ["probe", "--random-init", "--image-size", "32", "--train-data", "shapes:train?n=6&seed=5",
         "--test-data", "shapes:test?n=3&seed=5", "--sizes", "2,4", "--repeats", "1", "--epochs", "5",
         "--device", "cpu", "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)  # stdout is the JSON object and nothing else
    assert report["n_train"] == 60
    err = sys.stderr.getvalue()
    for bar in (
        "drawing shapes:train at 32x32: 100%|",
        "encoding the training split (60/60 images): 100%|",
        "encoding the test split (30/30 images): 100%|",
        "probing (2/2 sizes): 100%|",
    ):
        assert bar in err, bar
    assert "] encoding the training split\n" in err and "] probing\n" in err  # the stage lines stay


def test_embed_draws_encoding_as_a_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_DATA", str(tmp_path))
    monkeypatch.setattr(sys, "stderr", Terminal())
    args = ["embed", "--random-init", "--image-size", "32", "--data", "shapes:test?n=2&seed=9", "--method", "pca"]
    assert main([*args, "--device", "cpu", "--out", str(tmp_path / "e.csv")]) == 0
    assert "encoding shapes:test?n=2&seed=9 (20/20 images): 100%|" in sys.stderr.getvalue()


def test_train_forwards_data_progress_and_still_stops_while_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from simclr_core import train as train_module
    from simclr_core.config import TrainConfig

    seen: list[tuple[str, float]] = []

    def prepare(config, data_progress):  # the data load's first report, then a stop request arrives
        data_progress("drawing shapes:unlabeled at 32x32", 0.25)
        stop.set()
        data_progress("drawing shapes:unlabeled at 32x32", 0.5)
        raise AssertionError("the stop request should have ended the load")

    stop = threading.Event()
    monkeypatch.setattr(train_module, "prepare", prepare)
    with pytest.raises(train_module.StoppedBeforeStart, match="stopped while drawing"):
        train_module.train(TrainConfig(), stop_event=stop, data_progress=lambda m, f: seen.append((m, f)))
    assert seen == [("drawing shapes:unlabeled at 32x32", 0.25)]
