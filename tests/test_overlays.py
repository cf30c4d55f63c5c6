"""Compare runs: a TensorBoard event file's scalars overlaid on the runs (upload, server path, the tutorial's run)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from dashboard import figures
from simclr_core import tutorial_files
from simclr_core.tensorboard_events import metric_rows, read_scalars
from tests.test_pages import like_a_running_server, page, runs_root  # noqa: F401  (fixtures)

TUTORIAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tutorial17" / "events.out.tfevents.SimCLR"
needs_tutorial = pytest.mark.skipif(not TUTORIAL.is_file(), reason=f"the tutorial's event file is not at {TUTORIAL}")


def compare_chart(at):  # noqa: ANN001, ANN201
    import json

    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if s["layout"].get("yaxis", {}).get("title", {}).get("text"))


@needs_tutorial
def test_the_tutorials_curves_share_the_axes_with_a_run_by_metric_name() -> None:
    tutorial = metric_rows(read_scalars(TUTORIAL))
    mine = [{"step": s, "epoch": s // 3, "time": 100.0 + s, "train_loss": 5 - s / 10} for s in range(1, 7)]
    mine += [{"step": s, "epoch": s // 3 - 1, "time": 100.0 + s, "val_acc_top5": 0.1 * s} for s in (3, 6)]
    runs = {"mine": mine}
    fig = figures.compare_figure(runs, "val_acc_top5", "epoch", {"tutorial": tutorial}, log_x=False)
    assert [t.name for t in fig.data] == ["mine", "tutorial"]
    assert fig.data[1].line.dash == "dot" and len(fig.data[1].x) == 500 and max(fig.data[1].x) == 499
    knn = figures.compare_figure(runs, "knn_acc", "step", {"tutorial": tutorial})
    assert [t.name for t in knn.data] == ["mine"] and "no knn_acc in tutorial" in knn.layout.annotations[0].text
    assert fig.data[0].line.dash is None  # a run's own curve stays solid
    logged = figures.compare_figure(runs, "train_loss", "step", {"tutorial": tutorial}, log_x=True)
    assert logged.layout.xaxis.type == "log" and min(min(t.x) for t in logged.data) > 0


def event_folder(root: Path) -> Path:
    """A folder holding one event file written by tensorboardX (the writer of every run), grouped tags."""
    from tensorboardX import SummaryWriter

    folder = root / "some-run" / "tensorboard"
    writer = SummaryWriter(str(folder))
    for step in range(1, 30):
        writer.add_scalar("train/train_loss", 6.0 - step / 10, step)
    writer.close()
    return folder


def test_a_runs_event_folder_by_path_is_overlaid(runs_root: Path) -> None:  # noqa: F811
    from simclr_core.data import data_root

    at = page("train", **{"keep.overlay_path": str(event_folder(data_root()))})
    at.button(key="btn.overlay_path").click().run()
    assert not at.error, [e.value for e in at.error]
    assert list(at.session_state["keep.compare_overlays"]) and at.get("plotly_chart")
    spec = compare_chart(at)
    (trace,) = spec["data"]
    assert trace["name"].startswith("events.out.tfevents") and len(trace["x"]) == 29


def test_a_path_outside_the_roots_is_refused_without_saying_whether_it_exists(runs_root: Path) -> None:  # noqa: F811
    for probe in ("/etc/passwd", "/no/such/events.out.tfevents.x"):
        at = page("train", **{"keep.overlay_path": probe})
        at.button(key="btn.overlay_path").click().run()
        assert any("outside the folders this server may read" in e.value for e in at.error), probe
        assert "keep.compare_overlays" not in at.session_state or not at.session_state["keep.compare_overlays"]


def test_offline_the_tutorial_button_says_what_to_do(
    runs_root: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_DATA", str(tmp_path / "data"))  # no copy of the file left by another test
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(tutorial_files.URL_ENV, f"http://127.0.0.1:{port}/")
    at = page("train")
    at.button(key="btn.overlay_tutorial").click().run()
    text = " ".join(e.value for e in at.error)
    assert "offline" in text and "upload the file here" in text and "Traceback" not in text


@needs_tutorial
def test_the_tutorial_button_uses_a_copy_in_the_data_root(runs_root: Path) -> None:  # noqa: F811
    from simclr_core.data import data_root

    target = tutorial_files.local_path("simclr_events", data_root())
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TUTORIAL, target)
    try:
        at = page("train")
        at.button(key="btn.overlay_tutorial").click().run()
        assert not at.error, [e.value for e in at.error]
        overlays = at.session_state["keep.compare_overlays"]
        (label,) = overlays
        assert "SimCLR" in label and len(overlays[label]) == 4800
    finally:
        target.unlink()
