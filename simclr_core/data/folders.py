"""User image collections: a folder, .zip, .tar, .tar.gz or .tgz, labelled or flat.

Layout: one subfolder per class (ImageFolder, labelled) or images directly inside (flat,
unlabelled). A single wrapper folder (``train/`` in ``train.tar.gz``) is looked through; note
that a lone class folder therefore reads as a flat, unlabelled set. Hidden files and
``__MACOSX`` are ignored. Everything else that cannot be used is reported in
``ImageSet.warnings`` (which file, why) and skipped; a class left with fewer than 2 images is
dropped (it can be neither split nor learnt). Reads are bounded (``bounded.py``): only regular
files inside the source, capped bytes per file and per source, checked before and while reading.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simclr_core.data.bounded import (
    MAX_FILE_BYTES,
    MAX_PENDING_BYTES,
    MAX_TOTAL_BYTES,
    Refused,
    check_folder_file,
    check_totals,
    read_folder_file,
    read_limited,
    too_large,
)
from simclr_core.data.decode import IMAGE_EXTENSIONS, DecodeError, decode_image
from simclr_core.data.spec import DatasetError

MAX_WARNINGS = 40
_JUNK_NAMES = {"thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class _Member:
    name: str  # path inside the source, '/'-separated
    key: object  # what the reader needs to fetch the bytes
    order: int  # read order (archive offset) so compressed tars are read in one pass
    size: int = 0  # bytes as declared by the folder or the archive's header (enforced while reading)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].lower() in _JUNK_NAMES


class _Source:
    """Lists the files and folders of a folder or archive and reads file bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[_Member] = []
        self.dirs: set[str] = set()
        self.skipped: list[str] = []  # "skipped NAME: reason" for entries refused before reading
        lower = path.name.lower()
        try:
            if path.is_dir():
                self.kind = "folder"
                self._list_dir()
            elif lower.endswith(".zip"):
                self.kind = "zip"
                self._list_zip()
            else:
                self.kind = "tar"
                self._list_tar()
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise DatasetError(
                f"cannot read {self.kind} {str(path)!r}: {err}. Is the archive complete and not damaged?"
            ) from None
        refused = check_totals(len(self.files), sum(m.size for m in self.files), f"{self.kind} {str(path)!r}")
        if refused:
            raise DatasetError(refused)

    def _keep(self, name: str, reason: str | None) -> bool:
        """Whether to list ``name``; a refused image file is reported, anything else ignored silently."""
        if reason is None:
            return True
        if not _is_junk(name) and name.lower().endswith(IMAGE_EXTENSIONS):
            self.skipped.append(f"skipped {name}: {reason}")
        return False

    def _list_dir(self) -> None:
        root = Path(os.path.realpath(self.path))
        for dirpath, dirnames, filenames in os.walk(self.path):  # links to folders are not descended
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.path).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            if prefix:
                self.dirs.add(prefix.rstrip("/"))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if self._keep(prefix + name, check_folder_file(path, root)):
                    self.files.append(_Member(prefix + name, path, len(self.files), path.stat().st_size))

    def _list_zip(self) -> None:
        with zipfile.ZipFile(self.path) as zf:
            for i, info in enumerate(zf.infolist()):
                name = info.filename.rstrip("/")
                if info.is_dir():
                    self.dirs.add(name)
                elif self._keep(name, too_large(info.file_size) if info.file_size > MAX_FILE_BYTES else None):
                    self.files.append(_Member(name, info.filename, i, info.file_size))
                    self.dirs.update("/".join(name.split("/")[:k]) for k in range(1, name.count("/") + 1))

    def _list_tar(self) -> None:
        with tarfile.open(self.path, "r:*") as tf:
            for m in tf.getmembers():
                name = m.name.removeprefix("./").rstrip("/")
                if not name or name == ".":
                    continue
                if m.isdir():
                    self.dirs.add(name)
                elif not m.isfile():
                    self._keep(name, "not a regular file (a link, FIFO or device member is never read)")
                elif self._keep(name, too_large(m.size) if m.size > MAX_FILE_BYTES else None):
                    self.files.append(_Member(name, m, m.offset_data, m.size))
                    self.dirs.update("/".join(name.split("/")[:k]) for k in range(1, name.count("/") + 1))

    def read(self, members: list[_Member]) -> Iterator[tuple[_Member, bytes | OSError]]:
        """Bytes of each member, in the source's efficient order; each bounded, and the sum too."""
        total = 0
        for m, data in self._read(sorted(members, key=lambda m: m.order)):
            if isinstance(data, bytes):
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    data = Refused(f"the source passed {MAX_TOTAL_BYTES / 2**30:.0f} GiB while reading; not read")
            yield m, data

    def _read(self, ordered: list[_Member]) -> Iterator[tuple[_Member, bytes | OSError]]:
        if self.kind == "folder":
            for m in ordered:
                try:
                    yield m, read_folder_file(Path(m.key))  # type: ignore[arg-type]
                except OSError as err:
                    yield m, err
        elif self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                for m in ordered:
                    try:
                        with zf.open(m.key) as fh:  # type: ignore[arg-type]
                            yield m, read_limited(fh, m.size)
                    except Refused as err:
                        yield m, err
                    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as err:
                        yield m, OSError(str(err))
        else:
            with tarfile.open(self.path, "r:*") as tf:
                for m in ordered:
                    try:
                        handle = tf.extractfile(m.key)  # type: ignore[arg-type]
                        yield m, read_limited(handle, m.size) if handle is not None else Refused("not a regular file")
                    except Refused as err:
                        yield m, err
                    except (OSError, tarfile.TarError, EOFError) as err:
                        yield m, OSError(str(err))


def _stat_or_lstat(path: str) -> os.stat_result:
    """A dangling link has no target to stat; its own entry still fingerprints (and is skipped when read)."""
    try:
        return os.stat(path)
    except OSError:
        return os.lstat(path)


def fingerprint(path: Path) -> str:
    """Changes when the content changes: (name, size, mtime) of every file of a folder, or the archive's own."""
    h = hashlib.sha1()
    try:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    st = _stat_or_lstat(os.path.join(dirpath, name))
                    h.update(f"{dirpath}/{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        else:
            st = path.stat()
            h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
    except OSError as err:
        raise DatasetError(f"cannot read {str(path)!r}: {err}") from None
    return h.hexdigest()


@dataclass
class Layout:
    """Which files to decode, their classes, and what was set aside before decoding."""

    members: list[_Member]  # in output order
    labels: np.ndarray  # (N,) int64 into classes, or -1 for a flat folder
    classes: list[str]
    warnings: list[str]
    source: _Source


def _strip_wrapper(names: list[str]) -> str:
    """The common wrapper prefix ('train/') to look through, or ''."""
    prefix = ""
    rest = names
    while rest and all("/" in n for n in rest):
        first = {n.split("/", 1)[0] for n in rest}
        if len(first) != 1:
            break
        top = first.pop()
        prefix += top + "/"
        rest = [n.split("/", 1)[1] for n in rest]
    return prefix


def plan(path: Path) -> Layout:
    """List a folder/archive and decide labelled vs flat, classes and what to skip (no decoding yet)."""
    src = _Source(path)
    files = [m for m in src.files if not _is_junk(m.name)]
    images = [m for m in files if m.name.lower().endswith(IMAGE_EXTENSIONS)]
    warnings = list(src.skipped) + [
        f"skipped {m.name}: not an image file (extension {Path(m.name).suffix or 'none'})"
        for m in files
        if not m.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    what = "folder" if src.kind == "folder" else "archive"
    if not images:
        others = f" (found {len(files)} other file(s), e.g. {files[0].name})" if files else " (it is empty)"
        if src.skipped:
            others = f" ({len(src.skipped)} refused, e.g. {src.skipped[0].removeprefix('skipped ')})"
        raise DatasetError(
            f"no images found in {what} {str(path)!r}{others}. Expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}, either directly inside or in one subfolder per class"
        )
    prefix = _strip_wrapper([m.name for m in images])
    rel = {m: m.name[len(prefix) :] for m in images}
    labelled = any("/" in r for r in rel.values())
    if not labelled:
        ordered = sorted(images, key=lambda m: rel[m])
        return Layout(ordered, np.full(len(ordered), -1, dtype=np.int64), [], warnings, src)
    loose = [m for m in images if "/" not in rel[m]]
    warnings += [f"skipped {m.name}: image outside any class folder in a labelled layout" for m in loose]
    kept = sorted((m for m in images if "/" in rel[m]), key=lambda m: rel[m])
    classes = sorted({rel[m].split("/", 1)[0] for m in kept})
    class_dirs = {d[len(prefix) :] for d in src.dirs if d.startswith(prefix) and d[len(prefix) :].count("/") == 0}
    for empty in sorted(class_dirs - set(classes) - {""}):
        if not _is_junk(empty):
            warnings.append(f"ignored class folder {prefix + empty}/: it contains no images")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[rel[m].split("/", 1)[0]] for m in kept], dtype=np.int64)
    return Layout(kept, labels, classes, warnings, src)


def decode_into(
    layout: Layout,
    out: np.ndarray,
    image_size: int,
    progress: Callable[[str, float], None] | None = None,
    workers: int | None = None,
) -> list[str | None]:
    """Decode every planned file into ``out`` (N, 3, S, S) uint8 with a thread pool (Pillow releases the GIL).

    Returns, per file, None when it decoded or the reason it was skipped.
    """
    position = {m: i for i, m in enumerate(layout.members)}
    errors: list[str | None] = [None] * len(layout.members)
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    pending: deque[tuple[int, Future, int]] = deque()
    pending_bytes = 0
    done = 0
    total = len(layout.members)
    report_every = max(1, total // 50)

    def finish(i: int, fut: Future, size: int) -> None:
        nonlocal done, pending_bytes
        pending_bytes -= size
        try:
            out[i] = fut.result().transpose(2, 0, 1)
        except DecodeError as err:
            errors[i] = str(err)
        done += 1
        if progress is not None and (done % report_every == 0 or done == total):
            progress(f"decoding {layout.source.path.name} at {image_size}x{image_size}", done / total)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for member, data in layout.source.read(layout.members):
            i = position[member]
            if isinstance(data, OSError):
                errors[i] = str(data) if isinstance(data, Refused) else f"cannot read file ({data})"
                done += 1
                continue
            pending.append((i, pool.submit(decode_image, data, image_size), len(data)))
            pending_bytes += len(data)
            while len(pending) > 4 * workers * 16 or (pending_bytes > MAX_PENDING_BYTES and len(pending) > 1):
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # a stop (progress raised) drops the queued decodes
        raise
    pool.shutdown(wait=True)
    return errors


def settle(layout: Layout, errors: list[str | None]) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Drop failed files and classes with < 2 images: (keep indices, labels, classes, warnings)."""
    warnings = list(layout.warnings)
    ok = np.array([e is None for e in errors], dtype=bool)
    warnings += [f"skipped {m.name}: {e}" for m, e in zip(layout.members, errors, strict=True) if e is not None]
    labels, classes = layout.labels, list(layout.classes)
    if not ok.any():
        reasons = "; ".join(w for w in warnings[:3])
        raise DatasetError(
            f"none of the {len(errors)} image file(s) in {str(layout.source.path)!r} could be decoded ({reasons})"
        )
    if classes:
        counts = Counter(labels[ok].tolist())
        small = [c for c in range(len(classes)) if counts.get(c, 0) < 2]
        for c in small:
            n = counts.get(c, 0)
            warnings.append(
                f"dropped class {classes[c]!r}: only {n} usable image(s); a class needs at least 2 "
                "(one to learn from, one to test on)"
            )
            ok &= labels != c
        if not ok.any():
            raise DatasetError(
                f"no class in {str(layout.source.path)!r} has at least 2 usable images; add images or use a flat "
                "folder (no class subfolders) for unlabelled data"
            )
        remaining = [c for c in range(len(classes)) if c not in small]
        remap = np.full(len(classes), -1, dtype=np.int64)
        remap[remaining] = np.arange(len(remaining))
        labels = remap[labels]
        classes = [classes[c] for c in remaining]
    keep = np.flatnonzero(ok)
    if len(warnings) > MAX_WARNINGS:
        extra = len(warnings) - MAX_WARNINGS
        warnings = warnings[:MAX_WARNINGS] + [f"... and {extra} more skipped file(s)"]
    return keep, labels[keep], classes, warnings


def carve_split(labels: np.ndarray, split: str, test_fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``split`` ('train' or 'test'): per class, a seeded ``test_fraction`` goes to test.

    Stratified and deterministic; every class with >= 2 images keeps at least one image on each side.
    Unlabelled sets (-1) are split as one group.
    """
    chosen: list[np.ndarray] = []
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        rng = np.random.default_rng([seed, int(value) + 1])
        perm = idx[rng.permutation(len(idx))]
        n_test = round(test_fraction * len(idx))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        chosen.append(perm[:n_test] if split == "test" else perm[n_test:])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
