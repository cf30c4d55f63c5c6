"""Fault injection, inputs: bad flags, JSON values, checkpoints and run files give one clear line, never a traceback.

Every case runs the real CLI entry (``main``) in-process and asserts exit status 2, a one-line
``error:`` message naming the culprit, and that no run directory was created or changed.
Each bad input is counted (``bad_input``); the module ends with the issue's figure, "bad inputs tried,
how many gave a traceback" (goal 0), printed (``-s``) and asserted.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from simclr_core.__main__ import main as cli_main
from simclr_core.config import AugmentationConfig, ConfigError, TrainConfig
from simclr_core.safe_load import clean_message, read_checkpoint
from simclr_core.store import create_run, list_runs

QUICK = ["--data", "shapes:unlabeled", "--image-size", "32", "--limit-images", "64", "--batch-size", "32"]


@dataclass
class Tally:
    """The bad inputs tried in this module, and those that gave a traceback (an exception escaping, or one in the
    CLI's output)."""

    tried: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    current: str = ""


TALLY = Tally()


@contextmanager
def bad_input(name: str) -> Iterator[None]:
    """Count one bad input; an exception other than a failed assertion escaping it is a traceback."""
    TALLY.tried.append(name)
    TALLY.current = name
    try:
        yield
    except AssertionError:
        raise
    except Exception:
        TALLY.tracebacks.append(name)
        raise
    finally:
        TALLY.current = ""


@pytest.fixture(scope="module", autouse=True)
def figure(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts the module's bad inputs; at its end reports how many were tried and gave a traceback (goal 0)."""
    TALLY.tried.clear()
    TALLY.tracebacks.clear()
    yield TALLY
    line = f"bad inputs tried: {len(TALLY.tried)}; gave a traceback: {len(TALLY.tracebacks)} (goal 0)"
    print(f"\n{line}" + (f": {', '.join(TALLY.tracebacks)}" if TALLY.tracebacks else ""))
    assert not TALLY.tracebacks, line


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI, assert a clean refusal, return its one line."""
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    if "Traceback" in err and TALLY.current and TALLY.current not in TALLY.tracebacks:
        TALLY.tracebacks.append(TALLY.current)
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 0 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--lr", "nan"], "lr must be a finite number"),
        (["--lr", "inf"], "lr must be a finite number"),
        (["--temperature", "nan"], "temperature must be a finite number"),
        (["--warmup-epochs", "nan"], "warmup_epochs must be a finite number"),
        (["--warmup-epochs", "-1"], "warmup_epochs must be >= 0"),
        (["--max-minutes", "nan"], "max_minutes must be a finite number"),
        (["--weight-decay", "nan"], "weight_decay must be a finite number"),
        (["--monitor-share", "nan"], "monitor_share must be a finite number"),
        (["--seed", "-1"], "seed must be a whole number in [0, 2**32 - 1]"),
        (["--seed", str(2**32)], "seed must be a whole number"),
        (["--strategy", "bogus"], "unknown strategy 'bogus'"),
    ],
)
def test_bad_flags_are_refused_before_a_run_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], words: str
) -> None:
    with bad_input(" ".join(flags)):
        err = refused(["train", *QUICK, "--runs-dir", str(tmp_path), *flags], capsys)
    assert words in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"blur_kernel": Infinity}', "blur_kernel must be a whole number, got inf"),
        ('{"crop_size": NaN}', "crop_size must be a whole number, got nan"),
        ('{"jitter_p": NaN}', "jitter_p must be a finite number"),
        ('{"crop_scale": [NaN, 1]}', "crop_scale must be a pair of finite numbers"),
        ('{"mean": [0.5, Infinity, 0.5]}', "mean must be a finite number"),
        ('{"crop_size": "big"}', "crop_size must be a whole number"),
    ],
)
def test_augmentation_json_with_non_finite_values_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, words: str
) -> None:
    with bad_input(f"--aug {text}"), pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        AugmentationConfig.from_json(text)
    aug = tmp_path / "aug.json"
    aug.write_text(text)
    with bad_input(f"--aug file {text}"):
        err = refused(["train", *QUICK, "--runs-dir", str(tmp_path / "runs"), "--aug", str(aug)], capsys)
    assert words in err
    assert not (tmp_path / "runs").exists()


def test_a_config_file_with_wrong_types_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for bad, words in (({"lr": "fast"}, "lr must be a finite number"), ({"epochs": 2.5}, "epochs must be a whole")):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(bad))
        with bad_input(f"--config {json.dumps(bad)}"):
            err = refused(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs")], capsys)
        assert words in err
    assert TrainConfig(lr=1, max_minutes=2).validate().lr == 1.0  # ints are fine where floats are expected


def _stopped_run(root: Path, ckpt: bytes | None = None) -> Path:
    run = create_run(root, TrainConfig(data="shapes:unlabeled", image_size=32).to_dict(), name="victim")
    run.write_status(state="stopped", message="stopped by request")
    if ckpt is not None:
        (run.checkpoint_dir / "last.ckpt").write_bytes(ckpt)
    return run.path


def _torch_bytes(tmp_path: Path, obj: object) -> bytes:
    path = tmp_path / "obj.pt"
    torch.save(obj, path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["truncated", "foreign_object", "weights_only", "not_a_dict", "empty"])
def test_a_bad_last_checkpoint_on_resume_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    full = _torch_bytes(tmp_path, {"state_dict": {"net.w": torch.zeros(3)}, "global_step": 4, "loops": {}})
    data = {
        "truncated": full[: len(full) // 2],
        "foreign_object": _torch_bytes(tmp_path, {"state_dict": {}, "p": pathlib.PurePosixPath("x")}),
        "weights_only": _torch_bytes(tmp_path, {"state_dict": {"net.w": torch.zeros(3)}}),
        "not_a_dict": _torch_bytes(tmp_path, [torch.zeros(2)]),
        "empty": b"",
    }[kind]
    run_dir = _stopped_run(tmp_path / "runs", data)
    before = (run_dir / "status.json").read_text()
    with bad_input(f"--resume with a {kind} last.ckpt"):
        err = refused(["train", "--resume", str(run_dir)], capsys)
    assert "last.ckpt" in err and "weights_only" not in err and "False" not in err, err
    assert (run_dir / "status.json").read_text() == before  # the run is left as it was


def test_torch_advice_to_unpickle_is_never_passed_on(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "p": pathlib.PurePosixPath("x")}, path)
    with bad_input("a checkpoint holding a pickled object"), pytest.raises(ValueError) as info:
        read_checkpoint(path)
    assert "pathlib.PurePosixPath" in str(info.value) and "could run code" in str(info.value)
    try:
        torch.load(path, weights_only=True)
    except Exception as err:  # the raw torch text, as model.py wraps a 200-character piece of it
        raw = str(err)
    for text in (raw, f"evil.ckpt is not a readable PyTorch checkpoint (UnpicklingError: {raw[:200]}). Use a run's"):
        cleaned = clean_message(text)
        assert "Re-running" not in cleaned and "weights_only" not in cleaned and "\x1b" not in cleaned, cleaned
        assert "could run code" in cleaned


@pytest.mark.parametrize("name", ["config.json", "status.json"])
def test_a_run_file_holding_an_array_reads_as_broken_without_hiding_others(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    good = _stopped_run(tmp_path, None)
    bad = _stopped_run(tmp_path, None)
    (bad / name).write_text("[1, 2, 3]")
    with bad_input(f"{name} holding an array (listing)"):
        runs = {r.path: r for r in list_runs(tmp_path)}
    assert set(runs) == {good, bad}
    assert runs[good].state == "stopped"
    status = runs[bad].status()
    assert status["state"] == "failed" and name in status["message"] and "damaged" in status["message"]
    assert runs[bad].train_config == {} or name == "status.json"
    with bad_input(f"{name} holding an array (--resume)"):
        err = refused(["train", "--resume", str(bad)], capsys)
    assert name in err
