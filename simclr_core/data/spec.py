"""Dataset spec strings: one syntax for the CLI, the dashboard and config files.

``shapes[:split][?n=N&seed=S]``, ``stl10[:split]``, ``cifar10[:split]`` or a path to a folder /
archive with an optional ``?split=train|test&test_fraction=F&seed=S`` carving a held-out split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode


class DatasetError(ValueError):
    """A dataset problem a user can fix; the message says what happened and what to do."""


# name -> (splits, default split)
BUILTIN_SPLITS: dict[str, tuple[tuple[str, ...], str]] = {
    "shapes": (("unlabeled", "train", "test"), "unlabeled"),
    "stl10": (("unlabeled", "train", "test", "train+unlabeled"), "unlabeled"),
    "cifar10": (("train", "test"), "train"),
}
_QUERY_KEYS = {"shapes": ("n", "seed"), "stl10": (), "cifar10": (), "path": ("split", "test_fraction", "seed")}
PATH_SPLITS = ("all", "train", "test")
# shapes images per split: unlabeled is a total, train/test are per class (STL10's 500 / 800)
SHAPES_DEFAULT_SIZES = {"unlabeled": 10000, "train": 500, "test": 800}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def data_root(root: str | Path | None = None) -> Path:
    """Where downloads and decoded caches live: ``root`` if given, else ``$SIMCLR_STUDIO_DATA`` or
    ``~/.cache/simclr-studio``. The one definition every reader (CLI, dashboard, features) uses."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("SIMCLR_STUDIO_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "simclr-studio"


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec. ``kind`` is a built-in name or ``"path"``; ``params`` holds typed query values."""

    kind: str
    split: str
    params: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def canonical(self) -> str:
        """Normalised spec string (defaults filled in), used as the cache identity."""
        query = urlencode(sorted(self.params.items()))
        if self.kind == "path":
            base = str(self.path)
            extra = {"split": self.split} if self.split != "all" else {}
            query = urlencode(sorted({**self.params, **extra}.items()))
            return f"{base}?{query}" if query else base
        return f"{self.kind}:{self.split}" + (f"?{query}" if query else "")

    @property
    def is_archive(self) -> bool:
        return self.path is not None and self.path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _int(value: str, key: str, spec: str, minimum: int) -> int:
    try:
        out = int(value)
    except ValueError:
        raise DatasetError(f"in dataset spec {spec!r}: {key} must be an integer, got {value!r}") from None
    if out < minimum:
        raise DatasetError(f"in dataset spec {spec!r}: {key} must be >= {minimum}, got {out}")
    return out


def _parse_query(query: str, kind: str, spec: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise DatasetError(
            f"dataset spec {spec!r}: cannot read the query {query!r}; write it as ?key=value&key=value"
        ) from None
    allowed = _QUERY_KEYS[kind]
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise DatasetError(f"dataset spec {spec!r}: unknown option {key!r} for {kind} (known options: {known})")
        out[key] = value
    return out


def _looks_builtin(base: str) -> str | None:
    name = base.split(":", 1)[0].lower()
    return name if name in BUILTIN_SPLITS else None


def parse_spec(spec: str) -> DataSpec:
    """Parse a spec string; raises DatasetError naming the problem (unknown split, bad option...)."""
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError("empty dataset spec; use e.g. 'shapes', 'stl10:train' or a folder path")
    spec = spec.strip()
    base, _, query = spec.partition("?")
    name = _looks_builtin(base)
    if name is not None and not base.startswith(("./", "/")):
        splits, default = BUILTIN_SPLITS[name]
        split = base.split(":", 1)[1].lower() if ":" in base else default
        if split not in splits:
            raise DatasetError(f"dataset {name!r} has no split {split!r}; choose one of {', '.join(splits)}")
        raw = _parse_query(query, name, spec)
        params: dict = {}
        if name == "shapes":
            if "n" in raw:
                params["n"] = _int(raw["n"], "n", spec, 1)
                if params["n"] == SHAPES_DEFAULT_SIZES[split]:
                    del params["n"]  # same images as the default: same cache entry
            params["seed"] = _int(raw.get("seed", "0"), "seed", spec, 0)
        return DataSpec(kind=name, split=split, params=params)
    raw = _parse_query(query, "path", spec)
    path = Path(base).expanduser()
    split = raw.pop("split", "all").lower()
    if split not in PATH_SPLITS:
        raise DatasetError(f"dataset spec {spec!r}: split must be one of {', '.join(PATH_SPLITS)}, got {split!r}")
    params = {}
    if split != "all" or "test_fraction" in raw or "seed" in raw:
        try:
            fraction = float(raw.get("test_fraction", "0.2"))
        except ValueError:
            raise DatasetError(f"dataset spec {spec!r}: test_fraction must be a number in (0, 1)") from None
        if not 0.0 < fraction < 1.0:
            raise DatasetError(
                f"dataset spec {spec!r}: test_fraction must lie strictly between 0 and 1, got {fraction}"
            )
        params = {"test_fraction": fraction, "seed": _int(raw.get("seed", "0"), "seed", spec, 0)}
    if not path.exists():
        raise DatasetError(
            f"dataset {spec!r}: no such file or folder {str(path)!r}. Use 'shapes', 'stl10', 'cifar10' "
            "or the path of an image folder / .zip / .tar / .tar.gz"
        )
    if path.is_file() and not path.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise DatasetError(
            f"dataset {spec!r} is a file but not an archive; give a folder of images or a "
            f"{' / '.join(ARCHIVE_SUFFIXES)} archive"
        )
    return DataSpec(kind="path", split=split, params=params, path=path.resolve())


def sibling_spec(spec: str, split: str) -> str:
    """The same source with another split, e.g. the labelled ``train`` split of ``shapes:unlabeled``."""
    parsed = parse_spec(spec)
    if parsed.kind == "path":
        params = {**parsed.params, "split": split}
        params.setdefault("test_fraction", 0.2)
        params.setdefault("seed", 0)
        return f"{parsed.path}?{urlencode(sorted(params.items()))}"
    query = urlencode(sorted(parsed.params.items()))
    # n means "total" for unlabeled but "per class" for train/test: do not carry it across.
    if parsed.kind == "shapes" and "n" in parsed.params and split != parsed.split:
        query = urlencode({"seed": parsed.params["seed"]})
    out = f"{parsed.kind}:{split}" + (f"?{query}" if query else "")
    parse_spec(out)
    return out
