"""Scalars of any TensorBoard event file (this project's, the tutorial's published runs, anyone's), as metric rows.

Why not TensorBoard's own reader: ``tensorboard`` is an optional extra (the viewer; it pulls grpc and a
web server), and importing ``tensorboardX`` (which writes the files) loads torch, seconds the dashboard
should not spend on a chart. The format is small: TFRecord framing (length, masked CRC-32C of the
length, payload, CRC of the payload) around ``Event`` protobufs, of which a scalar needs five fields. A truncated last record (a file
still being written) ends the read quietly, as TensorBoard does; anything that is not an event file
is refused in one line.

Tags are matched to this project's metric names (``simclr_core.metrics``): a group prefix is dropped
(``train/train_loss`` -> ``train_loss``) and Lightning's ``lr-<Optimizer>`` is ``lr``, so the tutorial's
``train_loss`` and ours land on the same curve.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from simclr_core.regular_files import Refused, read_regular

MAX_BYTES = 64 << 20  # one event file; the tutorial's 500-epoch run is 1.1 MB, our 100-epoch runs well under
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
EPOCH_TAG = "epoch"  # Lightning logs the epoch as a scalar with every logged step


class EventFileError(ValueError):
    """Not a readable TensorBoard event file (a user error: one line, no traceback)."""


@dataclass(frozen=True)
class Scalar:
    step: int
    wall_time: float  # seconds since the epoch
    value: float


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset ("masked")."""
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def records(stream: BinaryIO, name: str = "the file") -> list[bytes]:
    """The payloads of a TFRecord stream; a cut-off last record is dropped, a damaged one refused."""
    out: list[bytes] = []
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return out
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            raise EventFileError(
                f"{name} is not a TensorBoard event file (record {len(out) + 1} has a bad length checksum)"
            )
        payload = stream.read(length)
        footer = stream.read(_FOOTER.size)
        if len(payload) < length or len(footer) < _FOOTER.size:
            return out  # still being written
        if masked_crc32c(payload) != _FOOTER.unpack(footer)[0]:
            raise EventFileError(f"{name} is damaged: record {len(out) + 1} fails its checksum")
        out.append(payload)


# ------------------------------------------------------------------ protobuf wire format, the few fields needed
# Event: wall_time 1 (double), step 2 (varint), file_version 3 (string), summary 5. Summary: value 1.
# Summary.Value: tag 1, simple_value 2 (float), tensor 8. TensorProto: dtype 1, tensor_shape 2 (dims: its
# field 2), tensor_content 4, float_val 5, double_val 6, int_val 7, int64_val 10 (packed or not).
_NUMERIC = {1: "<f", 2: "<d", 3: "<i", 9: "<q"}  # DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise EventFileError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise EventFileError("varint too long")


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: ints for varints, bytes for the rest."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise EventFileError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise EventFileError("truncated field")
        out.append((number, wire, value))
    return out


def _first_number(number: int, wire: int, value: Any) -> float:
    """The first element of a repeated numeric field: packed floats/doubles, or (packed) signed varints."""
    if number in (5, 6):
        return float(struct.unpack_from("<f" if number == 5 else "<d", value)[0])
    raw = value if wire == 0 else _varint(value, 0)[0]
    return float(raw - (1 << 64) if raw >= 1 << 63 else raw)


def _tensor_scalar(buf: bytes) -> float | None:
    """A scalar numeric TensorProto's value (TF2-style summaries); None for shaped or non-numeric tensors."""
    dtype, content, first = 0, b"", None
    for number, wire, value in fields(buf):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and any(n == 2 for n, _, _ in fields(value)):
            return None  # has dimensions: not a scalar
        elif number == 4:
            content = value
        elif number in (5, 6, 7, 10) and first is None:
            first = _first_number(number, wire, value)
    if dtype not in _NUMERIC:
        return None
    if first is not None:
        return float(first)
    if content:
        return float(struct.unpack_from(_NUMERIC[dtype], content)[0])
    return None


def _summary_scalars(buf: bytes) -> list[tuple[str, float]]:
    out = []
    for number, _, value in fields(buf):
        if number != 1:
            continue
        tag, scalar = "", None
        for n, wire, v in fields(value):
            if n == 1:
                tag = v.decode("utf-8", "replace")
            elif n == 2 and wire == 5:
                scalar = struct.unpack("<f", v)[0]
            elif n == 8 and wire == 2:
                scalar = _tensor_scalar(v)
        if tag and scalar is not None:
            out.append((tag, float(scalar)))
    return out


def _too_large(size: int | None) -> str:
    over = f"over the {MAX_BYTES >> 20} MiB an event file may have"
    return f"{size >> 20} MiB, {over}" if size is not None else f"it grew {over} while being read"


def _read_path(path: Path, label: str) -> bytes:
    """An event file's bytes through the bounded reader: a regular file (no FIFO, device or socket), capped."""
    try:
        if path.is_dir():
            raise EventFileError(f"{label} is a folder; name one events.out.tfevents.* file in it")
        return read_regular(path, MAX_BYTES, _too_large)
    except Refused as err:
        raise EventFileError(f"{label} is not read: {err}") from None
    except OSError as err:
        raise EventFileError(f"could not read {label}: {err.strerror or err}") from None


def read_scalars(source: str | Path | bytes, name: str | None = None) -> dict[str, list[Scalar]]:
    """Every scalar series of an event file (a path or its bytes), by tag, in file order."""
    label = name or (Path(source).name if isinstance(source, str | Path) else "the upload")
    data = source if isinstance(source, bytes) else _read_path(Path(source), label)
    if len(data) > MAX_BYTES:
        raise EventFileError(f"{label} is over {MAX_BYTES >> 20} MiB; event files that large are not read")
    payloads = records(io.BytesIO(data), label)
    if not payloads:
        raise EventFileError(f"{label} is not a TensorBoard event file (no complete record)")
    series: dict[str, list[Scalar]] = {}
    for i, payload in enumerate(payloads):
        try:
            event = fields(payload)
        except EventFileError as err:
            raise EventFileError(f"{label} is not a TensorBoard event file (record {i + 1}: {err})") from None
        wall_time, step, version = 0.0, 0, b""
        summaries = []
        for number, wire, value in event:
            if number == 1 and wire == 1:
                wall_time = struct.unpack("<d", value)[0]
            elif number == 2 and wire == 0:
                step = value - (1 << 64) if value >= 1 << 63 else value
            elif number == 3 and wire == 2:
                version = value
            elif number == 5 and wire == 2:
                summaries.append(value)
        if i == 0 and not version.startswith(b"brain.Event"):
            raise EventFileError(f"{label} is not a TensorBoard event file (its first record has no file version)")
        for summary in summaries:
            try:
                scalars = _summary_scalars(summary)
            except EventFileError as err:
                raise EventFileError(f"{label} is damaged (record {i + 1}: {err})") from None
            for tag, value in scalars:
                series.setdefault(tag, []).append(Scalar(step, wall_time, value))
    return series


def metric_name(tag: str) -> str:
    """The store's metric name for a TensorBoard tag: the group prefix dropped, ``lr-AdamW`` as ``lr``."""
    name = tag.rsplit("/", 1)[-1]
    return "lr" if name.startswith("lr-") else name


def metric_rows(series: dict[str, list[Scalar]]) -> list[dict[str, Any]]:
    """Rows shaped like ``metrics.jsonl``'s (step, epoch, time, metrics), one per logged step.

    The epoch of a step comes from the file's ``epoch`` scalar (the last one logged at or before it);
    a file without one has ``epoch`` None.
    """
    import bisect

    epochs = sorted((s.step, s.value) for s in series.get(EPOCH_TAG, []))
    epoch_steps = [s for s, _ in epochs]
    rows: dict[int, dict[str, Any]] = {}
    for tag, points in series.items():
        if tag == EPOCH_TAG:
            continue
        metric = metric_name(tag)
        for p in points:
            row = rows.get(p.step)
            if row is None:
                k = bisect.bisect_right(epoch_steps, p.step) - 1
                epoch = int(epochs[k][1]) if k >= 0 else None
                row = rows[p.step] = {"step": p.step, "epoch": epoch, "time": p.wall_time}
            row["time"] = min(row["time"], p.wall_time)
            row[metric] = p.value
    return [rows[s] for s in sorted(rows)]


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    """The metrics the rows hold, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in ("step", "epoch", "time"):
                seen.setdefault(key, None)
    return list(seen)
