"""The train command's flags: derived from TrainConfig, recipes and --config as starting points, --resume's limits.

Parsing only; nothing trains here (tests/test_train.py runs the command end to end).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from simclr_core.__main__ import get_args_parser
from simclr_core.__main__ import main as cli_main
from simclr_core.commands.train import _HELP_INSTEAD, config_from_args, field_comments
from simclr_core.config import FAST_METHOD_SETTINGS, ConfigError, TrainConfig, recipe_config


def parse(*argv: str) -> TrainConfig:
    return config_from_args(get_args_parser().parse_args(["train", *argv]))


def help_text(capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["train", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_every_field_is_a_flag_explained_by_its_comment(capsys: pytest.CaptureFixture) -> None:
    text = help_text(capsys)
    comments = field_comments(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "aug":
            continue  # --aug PRESET|FILE
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert f.name in comments, f"TrainConfig.{f.name} has no comment to be its --help"
        explained = _HELP_INSTEAD.get(f.name, comments[f.name])  # the few comments --help must not repeat
        assert " ".join(explained.split())[:40] in " ".join(text.split()), f.name
    # The explanations beyond the comments stay: recipes, the global batch, the monitor's time share.
    for words in ("the seed's exact recipe", "split evenly over ALL devices", "1 validates every epoch", "--resume"):
        assert words in text, words


def test_comments_above_a_field_and_on_its_line_are_both_read() -> None:
    comments = field_comments(TrainConfig)
    assert comments["monitor_share"].startswith("Largest share of the training time")
    assert comments["batch_size"].startswith("images per optimiser step across all devices")


def test_explicit_flags_override_the_recipe() -> None:
    assert parse() == recipe_config("tutorial").validate()
    fast = parse("--recipe", "fast", "--device", "cpu", "--lr", "0.01", "--no-channels-last")
    expected = recipe_config("fast")
    assert (fast.lr, fast.channels_last, fast.temperature, fast.max_minutes) == (0.01, False, 0.2, 5.0)
    assert fast.aug == expected.aug and fast.image_size == 32
    assert parse("--small-input", "--image-size", "48").aug.crop_size == 48


def test_the_fast_recipe_of_a_method_has_its_measured_settings_and_flags_still_win(
    capsys: pytest.CaptureFixture,
) -> None:
    assert FAST_METHOD_SETTINGS, "every method trains SimCLR's settings: nothing was tuned per method"
    simclr = parse("--recipe", "fast")
    for method, settings in FAST_METHOD_SETTINGS.items():
        cfg = parse("--recipe", "fast", "--method", method)
        assert cfg.method == method and cfg == recipe_config("fast", method=method).validate()
        assert {name: getattr(cfg, name) for name in settings} == settings
        assert cfg.image_size == simclr.image_size and cfg.backbone == simclr.backbone  # the rest is the recipe's
        name, value = next(iter(settings.items()))
        flag = "--" + name.replace("_", "-")
        other = 64 if isinstance(value, int) else value / 2
        assert getattr(parse("--recipe", "fast", "--method", method, flag, str(other)), name) == other
        assert parse("--method", method) == recipe_config("tutorial", method=method).validate()  # the seed's settings
    text = help_text(capsys)
    assert any(f"with --method {m}:" in text for m in FAST_METHOD_SETTINGS)


def test_config_file_from_a_run_or_bare_and_flags_override_it(tmp_path: Path) -> None:
    saved = recipe_config("fast")
    saved.seed = 7
    run_json = tmp_path / "config.json"
    run_json.write_text(json.dumps({"kind": "simclr", "config": saved.to_dict(), "versions": {}}))
    bare_json = tmp_path / "bare.json"
    bare_json.write_text(json.dumps(saved.to_dict()))
    for path in (run_json, bare_json):
        assert parse("--config", str(path)) == saved
        again = parse("--config", str(path), "--seed", "8", "--aug", "none")
        assert again.seed == 8 and again.lr == saved.lr and again.aug.blur_p == 0.0 and again.aug.crop_size == 32


def test_config_file_errors_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": 1e-3, "colour": 1}))
    with pytest.raises(ConfigError, match="colour"):
        parse("--config", str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        parse("--config", str(tmp_path / "missing.json"))
    with pytest.raises(SystemExit):  # a config or a recipe, not both
        get_args_parser().parse_args(["train", "--config", str(bad), "--recipe", "fast"])
    assert cli_main(["train", "--resume", str(tmp_path), "--config", str(bad)]) == 2
    assert "--config" in capsys.readouterr().err
    assert cli_main(["train", "--resume", str(tmp_path), "--lr", "1"]) == 2
    assert "only --epochs/--max-minutes" in capsys.readouterr().err
