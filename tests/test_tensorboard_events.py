"""TensorBoard event files: a run's grouped tags, and the reader against real files (ours, the tutorial's, TF2-style)."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest

from simclr_core import metrics as M
from simclr_core.regular_files import Refused, read_regular
from simclr_core.store import Run
from simclr_core.tensorboard_events import (
    MAX_BYTES,
    EventFileError,
    masked_crc32c,
    metric_name,
    metric_names,
    metric_rows,
    read_scalars,
)

TUTORIAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tutorial17"
needs_tutorial = pytest.mark.skipif(
    not (TUTORIAL / "events.out.tfevents.SimCLR").is_file(),
    reason=f"the tutorial's published event files are not at {TUTORIAL} (shared material of the developer machines)",
)


def event_file(run_path: Path) -> Path:
    files = sorted((run_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    return files[0]


def test_masked_crc32c_matches_the_published_check_value() -> None:
    # CRC-32C of b"123456789" is 0xE3069283 (RFC 3720); the mask rotates by 15 and adds 0xA282EAD8.
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tags_are_grouped_with_the_seeds_names_inside() -> None:
    assert M.tensorboard_tag("train_loss") == "train/train_loss"
    assert M.tensorboard_tag("lr") == "train/lr"
    assert M.tensorboard_tag("val_acc_top5") == "val/val_acc_top5"
    assert M.tensorboard_tag("knn_acc") == "val/knn_acc"
    assert M.tensorboard_tag("knn_acc_random_init") == "val/knn_acc_random_init"
    for m in M.METRICS:
        assert metric_name(M.tensorboard_tag(m.name)) == m.name
    assert metric_name("lr-AdamW") == "lr" and metric_name("train_acc") == "train_acc"


def test_a_runs_event_file_holds_its_metrics_under_grouped_tags(tiny_run: Path) -> None:
    series = read_scalars(event_file(tiny_run))
    assert {"train/train_loss", "train/lr", "train/views_per_s", "val/val_loss", "val/knn_acc"} <= set(series)
    assert all(tag.split("/")[0] in ("train", "val") for tag in series)
    jsonl = [r for r in Run(tiny_run).metrics() if "train_loss" in r]
    assert [(s.step, s.value) for s in series["train/train_loss"]] == [
        (r["step"], pytest.approx(r["train_loss"], rel=1e-6)) for r in jsonl
    ]
    # metrics.jsonl keeps the flat names the pages read
    assert all(not any("/" in key for key in r) for r in Run(tiny_run).metrics())
    rows = metric_rows(series)
    assert {"train_loss", "val_loss", "knn_acc", "lr"} <= set(metric_names(rows))


def test_our_reader_agrees_with_tensorboards_own(tiny_run: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    path = event_file(tiny_run)
    acc = accumulator.EventAccumulator(str(path), size_guidance={accumulator.SCALARS: 0})
    acc.Reload()
    ours = read_scalars(path)
    assert set(acc.Tags()["scalars"]) == set(ours)
    for tag in ours:
        theirs = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert [(s.step, pytest.approx(s.value)) for s in ours[tag]] == theirs


@needs_tutorial
def test_the_tutorials_simclr_run_reads_as_metric_rows() -> None:
    series = read_scalars(TUTORIAL / "events.out.tfevents.SimCLR")
    assert {"train_loss", "train_acc_top5", "val_acc_top5", "lr-AdamW", "epoch"} <= set(series)
    rows = metric_rows(series)
    names = metric_names(rows)
    assert {"train_loss", "train_acc_top1", "train_acc_top5", "val_acc_top5", "lr"} <= set(names)
    assert "epoch" not in names and "lr-AdamW" not in names
    last = rows[-1]
    assert last["step"] == 194_999 and last["epoch"] == 499
    assert 0.9 < last["val_acc_top5"] <= 1 and last["train_loss"] < 1
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert (rows[-1]["time"] - rows[0]["time"]) / 3600 == pytest.approx(24.5, abs=0.5)  # "24.5 h on a TitanRTX"


@needs_tutorial
def test_the_supervised_baseline_keeps_its_own_names() -> None:
    names = metric_names(metric_rows(read_scalars(TUTORIAL / "events.out.tfevents.ResNet")))
    assert {"train_acc", "val_acc", "train_loss", "val_loss", "lr"} <= set(names)


def test_tf2_style_tensor_scalars_and_a_file_still_being_written(tmp_path: Path) -> None:
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.writer import FileWriter

    writer = FileWriter(str(tmp_path))
    for step in range(3):
        value = Summary.Value(tag="val/val_acc_top5", tensor=TensorProto(dtype=1, float_val=[0.1 * step]))
        writer.add_summary(Summary(value=[value]), global_step=step)
        packed = Summary.Value(tag="loss", tensor=TensorProto(dtype=2, tensor_content=struct.pack("<d", 2.5 - step)))
        writer.add_summary(Summary(value=[packed]), global_step=step)
        shaped = Summary.Value(tag="hist", tensor=TensorProto(dtype=1, float_val=[1, 2]))
        shaped.tensor.tensor_shape.dim.add(size=2)
        writer.add_summary(Summary(value=[shaped]), global_step=step)
    writer.add_summary(Summary(value=[Summary.Value(tag="loss", simple_value=0.25)]), global_step=3)
    writer.close()
    path = next(tmp_path.glob("events.out.tfevents.*"))
    series = read_scalars(path)
    assert [s.value for s in series["val/val_acc_top5"]] == pytest.approx([0.0, 0.1, 0.2])
    assert [s.value for s in series["loss"]] == [2.5, 1.5, 0.5, 0.25]
    assert "hist" not in series  # not a scalar
    cut = read_scalars(path.read_bytes()[:-7], name="live file")  # the last record half written
    assert [s.value for s in cut["loss"]] == [2.5, 1.5, 0.5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no complete record"),
        (b"PK\x03\x04" + b"\0" * 40, "bad length checksum"),
        (b"name,value\nloss,1.0\n" * 5, "bad length checksum"),
    ],
)
def test_what_is_not_an_event_file_is_refused_in_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=message) as err:
        read_scalars(path)
    assert "\n" not in str(err.value)


def test_a_damaged_record_a_folder_and_a_missing_file_are_refused(tiny_run: Path, tmp_path: Path) -> None:
    data = bytearray(event_file(tiny_run).read_bytes())
    second = 12 + struct.unpack("<Q", data[:8])[0] + 4
    data[second + 12 + 2] ^= 0xFF  # inside the second record's payload
    with pytest.raises(EventFileError, match="fails its checksum"):
        read_scalars(bytes(data), name="damaged")
    with pytest.raises(EventFileError, match="is a folder"):
        read_scalars(tmp_path)
    with pytest.raises(EventFileError, match="could not read"):
        read_scalars(tmp_path / "nope.tfevents")


def _read_within(seconds: float, path: Path) -> BaseException | None:
    """read_scalars(path) in a thread; the exception it raised (a hang fails the test instead of hanging it)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            read_scalars(path)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"read_scalars({path.name}) still blocked after {seconds} s"
    return outcome[0]


def test_a_fifo_and_a_device_link_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "events.out.tfevents.fifo"
    os.mkfifo(fifo)  # no writer: a plain open() would block forever
    err = _read_within(10, fifo)
    assert isinstance(err, EventFileError) and "not a regular file" in str(err) and "\n" not in str(err)
    zero = tmp_path / "events.out.tfevents.zero"
    zero.symlink_to("/dev/zero")  # endless bytes: refused before any is read
    err = _read_within(10, zero)
    assert isinstance(err, EventFileError) and "not a regular file" in str(err)


def test_an_event_file_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    assert MAX_BYTES <= 64 << 20
    big = tmp_path / "events.out.tfevents.big"
    with big.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: no disk, and never read
    with pytest.raises(EventFileError, match=r"events.out.tfevents.big is not read: 64 MiB, over the 64 MiB") as err:
        read_scalars(big)
    assert "\n" not in str(err.value)
    with pytest.raises(EventFileError, match="over 64 MiB"):
        read_scalars(b"\0" * (MAX_BYTES + 1), name="the upload")


def test_the_cap_holds_while_reading_a_file_that_declares_less() -> None:
    # /proc files are regular and declare size 0, yet hold bytes: the cap is enforced on what is read
    with pytest.raises(Refused, match="grew"):
        read_regular("/proc/self/status", 16, lambda size: "declared" if size is not None else "grew")
    assert read_regular("/proc/self/status", 1 << 20, str).startswith(b"Name:")
