"""The tutorial's pretrained SimCLR.ckpt on the Embeddings and Probe pages: downloaded as the seed downloads it,
loaded as an uploaded SimCLR.ckpt is; offline, one message saying how to upload it instead."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from simclr_core import tutorial_files as tf
from simclr_core.model import SimCLRNet, load_checkpoint
from tests.test_pages import like_a_running_server, page, runs_root  # noqa: F401  (fixtures)


def tutorial_layout_checkpoint(path: Path) -> None:
    """A checkpoint in the tutorial's layout (``convnet.*``, fc = Linear, ReLU, Linear; weights only)."""
    net = SimCLRNet("resnet18", 128, False)
    state = {}
    for key, value in net.state_dict().items():
        if key.startswith("backbone."):
            state["convnet." + key[len("backbone.") :]] = value
        else:  # head.0 / head.2
            state["convnet.fc." + key[len("head.") :]] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": {"hidden_dim": 128, "max_epochs": 500}, "epoch": 499}, path)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"  # no copy of SimCLR.ckpt left by another test
    monkeypatch.setenv("SIMCLR_STUDIO_DATA", str(root))
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(tf.URL_ENV, f"http://127.0.0.1:{port}/")  # nothing listens there


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The tutorial's saved-models folder served on loopback, holding a SimCLR.ckpt in the tutorial's layout."""
    served = tmp_path / "served"
    tutorial_layout_checkpoint(served / "SimCLR.ckpt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(tf.URL_ENV, f"http://127.0.0.1:{server.server_port}/")
    yield served / "SimCLR.ckpt"
    server.shutdown()
    server.server_close()


def test_the_checkpoint_follows_the_seeds_url_scheme() -> None:
    assert tf.BASE_URL + tf.FILES["simclr_ckpt"].name == (
        "https://raw.githubusercontent.com/phlippe/saved_models/main/tutorial17/SimCLR.ckpt"
    )


def test_a_tutorial_layout_checkpoint_loads_as_an_upload_would(tmp_path: Path) -> None:
    tutorial_layout_checkpoint(tmp_path / "SimCLR.ckpt")
    loaded = load_checkpoint(tmp_path / "SimCLR.ckpt")
    assert loaded.source == "tutorial" and loaded.epoch == 499


@pytest.mark.parametrize(
    ("name", "state", "button"),
    [
        ("embeddings", {"keep.emb_source": "Checkpoint file"}, "btn.emb_tutorial_ckpt"),
        ("probe", {"keep.probe_source": "Checkpoint file"}, "btn.probe_tutorial_ckpt"),
    ],
)
def test_offline_one_message_says_how_to_upload_it_instead(
    name: str,
    state: dict[str, str],
    button: str,
    runs_root: Path,  # noqa: F811
    data: Path,
    offline: None,
) -> None:
    at = page(name, **state)
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.error]  # one message
    assert "offline" in message and "upload the file here" in message and "SimCLR.ckpt" in message
    assert str(tf.local_path("simclr_ckpt", data)) in message and "\n" not in message
    assert "_tutorial_ckpt" not in at.session_state
    assert not list(data.rglob("*.part"))


def test_embeddings_downloads_the_tutorials_encoder_and_maps_it(
    runs_root: Path,  # noqa: F811
    data: Path,
    mirror: Path,
) -> None:
    state = {
        "keep.emb_source": "Checkpoint file",
        "keep.emb_split": "other",
        "keep.emb_other": "shapes:test?n=2",
        "keep.emb_method": "PCA 2-D",
    }
    at = page("embeddings", **state)
    assert not at.get("plotly_chart")  # nothing chosen yet
    at.button(key="btn.emb_tutorial_ckpt").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    local = tf.local_path("simclr_ckpt", data)
    assert at.session_state["_tutorial_ckpt"] == str(local) and local.read_bytes() == mirror.read_bytes()
    assert at.get("plotly_chart"), "no map of the tutorial's encoder"
    at.run()  # a later rerun keeps using it without a download
    assert at.get("plotly_chart") and not at.error


def test_probe_page_probes_the_tutorials_encoder(
    runs_root: Path,  # noqa: F811
    data: Path,
    mirror: Path,
) -> None:
    from dashboard import probing
    from dashboard.jobs import jobs

    state = {
        "keep.probe_source": "Checkpoint file",
        "keep.probe_sizes": [1, 2],
        "keep.probe_repeats": 1,
        "keep.probe_train": "shapes:train?n=2",
        "keep.probe_test": "shapes:test?n=2",
    }
    at = page("probe", **state)
    at.button(key="btn.probe_tutorial_ckpt").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("No probe results yet for tutorial SimCLR.ckpt" in c.value for c in at.caption)
    at.button(key="btn.probe").click().run()
    assert not at.exception
    task = jobs().tasks["probe"]
    assert task.join(timeout=120), "the probe did not end"
    assert task.error is None, task.error
    assert task.result == ["tutorial SimCLR.ckpt"]
    report = probing.checkpoint_report(tf.local_path("simclr_ckpt", data))
    assert report is not None and report["source"]["format"] == "tutorial" and report["sizes"] == [1, 2]
    at.run()
    assert not at.exception
    assert at.get("plotly_chart"), "no probe figure"
    assert at.dataframe[0].value["images per class"].tolist() == [1, 2]
