"""The ablation grid and augmentation tries: explicit "off" configs, the kNN score, ``ablate`` end to end.

``ablate`` runs 4 real cells (reference, crop, colour, crop + colour) of a few seconds on generated
data at 16 px. Budget: ~1.5 min on 2 busy cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simclr_core import ablation, tries
from simclr_core.__main__ import main as cli_main
from simclr_core.config import PRESETS, ConfigError, augmentation_preset, fast_recipe
from simclr_core.run_queue import RunQueue


def test_an_operation_off_is_explicit_and_on_is_the_recipes() -> None:
    recipe = fast_recipe().aug
    none = ablation.aug_for((), recipe)
    assert (none.flip_p, none.jitter_p, none.grayscale_p, none.blur_p) == (0, 0, 0, 0)
    assert none.crop_scale == (1.0, 1.0) and none.crop_ratio == (1.0, 1.0)  # the whole image, resized
    pair = ablation.aug_for(("crop", "blur"), recipe)
    assert pair.crop_scale == recipe.crop_scale and pair.jitter_p == 0 and pair.flip_p == 0
    assert pair.blur_p == ablation.DEFAULT_P["blur_p"] and pair.blur_kernel == recipe.blur_kernel  # fast never blurs
    color = ablation.aug_for(("color",), recipe)
    assert color.jitter_p == recipe.jitter_p and color.crop_scale == (1.0, 1.0)
    assert ablation.cells(["crop", "color", "blur"]) == [
        (),
        ("crop",),
        ("color",),
        ("blur",),
        ("crop", "color"),
        ("crop", "blur"),
        ("color", "blur"),
    ]
    assert ablation.parse_ops("crop, colour,grayscale") == ["crop", "color", "gray"]
    for bad, why in (("crop", "2 to 5"), ("crop,crop", "twice"), ("crop,zoom", "unknown")):
        with pytest.raises(ConfigError, match=why):
            ablation.parse_ops(bad)


def test_a_try_says_its_settings_in_words_and_as_a_diff_from_its_preset() -> None:
    aug = augmentation_preset("tutorial", 32)
    aug.jitter_p, aug.blur_p = 0.0, 0.5
    words = tries.describe(aug)
    assert "no colour jitter" in words and "blur p=0.5" in words and "crop 8 %–100 % of the area" in words
    assert tries.diff(aug, "tutorial") == ["jitter_p 0.8 → 0", "blur_p 1 → 0.5"]
    assert tries.diff(PRESETS["simclr"], "simclr") == []
    assert "no crop" in tries.describe(PRESETS["none"])


def test_the_score_is_probes_knn_at_all_labels(tmp_path: Path) -> None:
    from simclr_core.knn_eval import evaluate_run, read_result
    from simclr_core.probe_run import probe_report
    from simclr_core.train import train
    from tests.test_run_queue import tiny

    run = train(tiny(), tmp_path, name="scored")
    bank, scored = "shapes:train?n=10", "shapes:test?n=5"
    result = evaluate_run(run.path, bank, scored)
    report = probe_report(
        run.path / "checkpoints" / "last.ckpt", bank, scored, sizes=[10], repeats=1, random_baseline=False
    )
    assert result["knn_acc"] == pytest.approx(report["table"][-1]["knn_acc_mean"])
    assert (result["n_bank"], result["n_scored"]) == (100, 50)
    assert read_result(run.path)["knn_acc"] == result["knn_acc"]


def test_a_benchmark_test_split_is_never_scored_by_default() -> None:
    from simclr_core.knn_eval import eval_specs

    assert eval_specs("shapes:unlabeled") == ("shapes:train?seed=0", "shapes:test?seed=0")
    with pytest.raises(ConfigError, match="test set"):
        eval_specs("cifar10:train")
    assert eval_specs("cifar10:train", scored="/data/c.tar.gz?split=test")[1].endswith("split=test")


def test_ablate_runs_the_grid_and_writes_the_matrix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ablation.json"
    argv = ["ablate", "--data", "shapes:train?n=10", "--ops", "crop,color", "--minutes-per-run", "0.03"]
    argv += ["--eval-data", "shapes:test?n=5", "--batch-size", "32", "--image-size", "16", "--val-limit", "50"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--out", str(out)]
    assert cli_main(argv) == 0, capsys.readouterr()
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["ops"] == ["crop", "color"] and result["labels"] == ["crop", "colour"]
    grid = result["matrix"]
    assert all(isinstance(v, float) and 0 <= v <= 1 for row in grid for v in row)
    assert grid[0][1] == grid[1][0]  # the pair, both halves
    assert isinstance(result["reference"]["knn_acc"], float)
    cells = {tuple(c["ops"]): c for c in result["cells"]}
    assert set(cells) == {(), ("crop",), ("color",), ("crop", "color")}
    assert cells[("crop",)]["aug"]["jitter_p"] == 0 and cells[("color",)]["aug"]["crop_scale"] == [1.0, 1.0]
    for c in cells.values():
        assert Path(c["run"], "knn_eval.json").is_file() and c["state"] == "finished"
        assert json.loads(Path(c["run"], "config.json").read_text())["config"]["seed"] == result["seed"]
    assert result["runs"][0][1] == cells[("crop", "color")]["run"]
    assert "crop" in text and "colour" in text and "no augmentation (reference)" in text
    assert [e.state for e in RunQueue(tmp_path / "runs").entries()] == ["finished"] * 4
    assert len(ablation.list_ablations(tmp_path / "runs")) == 1


def test_ablate_refuses_bad_operations_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["ablate", "--data", "shapes:train?n=10", "--ops", "crop", "--runs-dir", str(tmp_path)]
    assert cli_main(argv) == 2
    assert "2 to 5 operations" in capsys.readouterr().err
    assert RunQueue(tmp_path).entries() == []


def test_cells_and_tries_train_the_chosen_method(tmp_path: Path) -> None:
    plan = ablation.queue_ablation(tmp_path, "shapes:train?n=10", "crop,color", 0.5, method="byol")
    queue = RunQueue(tmp_path)
    assert plan["method"] == "byol"
    assert {e.train_config().method for e in queue.entries()} == {"byol"}
    assert {e.train_config().val_limit for e in queue.entries()} == {ablation.LAB_VAL_LIMIT}  # a cheap live monitor
    result = ablation.matrix(tmp_path, plan)
    assert result["method"] == "byol" and "BYOL" in ablation.table(result)
    entry = tries.queue_try(tmp_path, "shapes:train?n=10", PRESETS["simclr"], "simclr", 0.5, method="vicreg")
    assert entry.train_config().method == "vicreg"
    assert [r["method"] for r in tries.leaderboard(tmp_path)] == ["vicreg"]
    with pytest.raises(ConfigError, match="unknown method"):
        tries.queue_try(tmp_path, "shapes:train?n=10", PRESETS["simclr"], "simclr", 0.5, method="moco")
