"""The GPU section's logic on CPU at tiny sizes: phase timing, busy fraction, the product epoch, report and exit codes.

The figures mean nothing here (2 steps of batch 8 at 32 px); what is tested is that every piece runs,
returns what the report reads, and that the report and BENCHMARKS.md block are well formed.
Budget: about a minute on 2 shared cores (one fresh-process measurement, a tiny Lightning epoch).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.autograd import DeviceType

from simclr_core.bench import gpu_bench as G
from simclr_core.bench import report


def test_union_of_kernel_intervals_counts_overlaps_once() -> None:
    assert G.union_us([]) == 0
    assert G.union_us([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25
    assert G.union_us([(3, 4), (0, 1)]) == 2


def test_device_busy_reads_only_device_events() -> None:
    def event(kind: DeviceType, lo: float, hi: float) -> SimpleNamespace:
        return SimpleNamespace(device_type=kind, time_range=SimpleNamespace(start=lo, end=hi))

    prof = SimpleNamespace(
        events=lambda: [event(DeviceType.CPU, 0, 100), event(DeviceType.CUDA, 10, 20), event(DeviceType.CUDA, 15, 30)]
    )
    assert G.device_busy_us(prof) == 20
    assert G.device_busy_us(SimpleNamespace(events=lambda: [event(DeviceType.CPU, 0, 5)])) is None


def test_phase_clock_on_cpu_gives_one_span_per_phase() -> None:
    clock = G.PhaseClock(torch.device("cpu"))
    for _ in range(4):
        clock.mark()
    spans = clock.spans()
    assert len(spans) == 3 and all(s >= 0 for s in spans)


def test_step_breakdown_on_cpu() -> None:
    out = G.step_breakdown(image_size=32, batch=8, steps=2, warmup=1, precision="32", device="cpu")
    assert set(out["phases_s"]) == set(G.PHASES)
    assert all(v > 0 for v in out["phases_s"].values())
    assert math.isclose(sum(out["shares"].values()), 1.0, rel_tol=1e-9)
    assert out["wall_step_s"] > 0 and out["views"] == 16
    assert out["busy"] is None and out["kernel_s_per_step"] is None  # a profile of kernels needs CUDA


def test_synthetic_images_repeat_a_random_base() -> None:
    x = G.synthetic_images(10, 16, seed=1, distinct=4)
    assert x.shape == (10, 3, 16, 16) and x.dtype == torch.uint8
    assert torch.equal(x[0], x[4]) and not torch.equal(x[0], x[1])
    assert torch.equal(x, G.synthetic_images(10, 16, seed=1, distinct=4))


def test_bench_quick_on_cpu_runs_the_product_epoch_in_a_fresh_process(tmp_path: Path, data_root: Path) -> None:
    assert G.main(["bench", "--quick", "--device", "cpu", "--batches", "8", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / G.JSON_BENCH).read_text())
    (run,) = res["runs"]
    assert "error" not in run, run.get("error")
    epoch = run["epoch"]
    assert epoch["steps"] == epoch["steps_per_epoch"] == 5 and epoch["complete"]  # 40 synthetic images / batch 8
    assert epoch["epoch_s"] > 0 and epoch["first_epoch_s"] > 0 and math.isfinite(epoch["final_loss"])
    assert set(run["breakdown"]["shares"]) == set(G.PHASES)
    assert res["machine"]["device"] == "cpu"


def _fake_bench(epoch_s: float, busy: float | None) -> dict:
    def one(batch: int, scale: float) -> dict:
        phases = dict(zip(G.PHASES, (0.002, 0.004, 0.0005, 0.008, 0.001), strict=True))
        total = sum(phases.values())
        return {
            "batch": batch,
            "busy_product": busy,
            "breakdown": {
                "phases_s": phases,
                "shares": {k: v / total for k, v in phases.items()},
                "phase_total_s": total,
                "wall_step_s": total,
                "kernel_s_per_step": None if busy is None else busy * total,
                "busy": busy,
                "steps": 20,
                "top_kernels": "kernel table",
            },
            "epoch": {
                "images": 100_000,
                "image_size": 96,
                "step_s": 0.0128 * scale,
                "epoch_s": epoch_s * scale,
                "first_epoch_s": epoch_s * scale + 1,
                "views_per_s": 40000 / scale,
                "cuda_peak_mib": 5000.0,
            },
        }

    machine = {"device": "cuda", "gpu": "NVIDIA H200, 140 GiB, 132 SMs"}
    return {"machine": machine, "quick": False, "measured_at": 0.0, "runs": [one(256, 1.0), one(1024, 0.8)]}


def test_checks_targets_and_exit_codes() -> None:
    passed = {"rc": 0, "summary": "9 passed in 40.1s"}
    good = G.checks(_fake_bench(5.0, 0.9), passed, None)
    assert [c.met for c in good] == [True, True, True, True]
    assert good[2].name == "GPU: STL10-sized epoch (100,000 images, 96 px) (batch 1024)"  # the best batch size
    assert good[2].measured == "4.00 s"
    assert G.exit_code(good) == 0
    slow = G.checks(_fake_bench(9.0, 0.5), passed, None)
    assert G.exit_code(slow) == 3  # every check passed, a target missed
    assert G.exit_code(G.checks(_fake_bench(4.0, None), passed, None)) == 3  # busy not measured
    failed = G.checks(_fake_bench(4.0, 0.9), {"rc": 1, "summary": "1 failed, 8 passed"}, None)
    assert G.exit_code(failed) == 1
    skipped = G.checks(None, {"rc": 0, "summary": "9 skipped in 1.0s"}, None)
    assert [c.met for c in skipped] == [None]  # no CUDA here: not measured, not failed
    broken = _fake_bench(4.0, 0.9)
    broken["runs"][1] = {"batch": 1024, "error": "CUDA out of memory"}
    assert G.exit_code(G.checks(broken, passed, None)) == 1
    recipe_bad = {"problems": ["status.json says 'failed'"], "state": "failed"}
    assert G.exit_code(G.checks(_fake_bench(4.0, 0.9), passed, recipe_bad)) == 1
    assert G.checks(None, None, {"skipped": "no CIFAR-10 archive"}) == []


def test_next_step_is_epochs_times_epoch_time() -> None:
    fast = G.next_step(5.0)
    assert "500 epochs x 5.00 s = 42 min: under an hour" in fast and "an hour holds 720 epochs" in fast
    assert "<= 7.2 s per epoch" in fast
    assert "1.4 h, over the hour" in G.next_step(10.0)
    assert "No epoch time" in G.next_step(None)


def test_section_and_report_render(tmp_path: Path) -> None:
    recipe = {
        "state": "finished",
        "steps": 900,
        "epochs": 5,
        "views_per_s": 20000.0,
        "final_loss": 2.1,
        "knn_monitor": 0.61,
        "knn": {"k": 20, "trained": 0.64, "random_init": 0.38, "bank": 40000, "queries": 10000},
        "problems": [],
        "command": "-m simclr_core train --data x --recipe fast",
        "config": {"max_minutes": 3.0},
    }
    sec = G.section(_fake_bench(4.5, 0.85), {"rc": 0, "summary": "9 passed"}, recipe)
    assert sec.key == "gpu" and "H200" in sec.title
    assert len(sec.rows) == 2 and sec.rows[0][0] == "256" and sec.rows[0][3] == "4.50 s"
    assert [c.met for c in sec.checks] == [True, True, True, True, True]
    text = G.render(sec, None, _fake_bench(4.5, 0.85))
    assert text.startswith("# GPU check") and "64.0 %" in text and "38.0 %" in text and "kernel table" in text
    (tmp_path / G.JSON_BENCH).write_text(json.dumps(_fake_bench(4.5, 0.85)))
    (tmp_path / G.JSON_RECIPE).write_text(json.dumps(recipe))
    log = tmp_path / "cuda_tests.txt"
    log.write_text("....\n========== 9 passed in 41.00s ==========\n")
    code = G.main(["report", "--out", str(tmp_path), "--tests-rc", "0", "--tests-log", str(log)])
    assert code == 0
    assert "9 passed in 41.00s" in (tmp_path / G.REPORT).read_text()


def test_write_benchmarks_replaces_only_the_gpu_block(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    cpu_machine = {"cpu": "AMD EPYC", "device": "cpu"}
    loss = report.Section("loss", "2. Loss alone", ["a"], [["1"]])
    report.write(path, [loss], cpu_machine, ["train", "loss"], quick=False)
    path.write_text(path.read_text() + "\nhand-written note 42\n")
    G.write_benchmarks(path, G.section(_fake_bench(4.5, 0.85)))
    G.write_benchmarks(path, G.section(_fake_bench(4.0, 0.85)))  # a second run replaces the block
    text = path.read_text()
    assert text.count("<!-- bench:section gpu -->") == 1 and "4.00 s" in text and "4.50 s" not in text
    assert "| cpu | AMD EPYC |" in text and "NVIDIA H200" in text  # header keeps the CPU machine
    assert "## 2. Loss alone" in text and text.rstrip().endswith("hand-written note 42")
    assert "GPU: STL10-sized epoch" in text.split("<!-- bench:section")[0]  # in the Targets table


def test_run_dir_check_and_knn_on_splits(tiny_run: Path, tmp_path: Path) -> None:
    assert G.run_dir_problems(tiny_run) == []
    out = G.knn_on_splits(tiny_run, "shapes:train?n=6", "shapes:test?n=3", device="cpu", k=5)
    assert out["bank"] == 60 and out["queries"] == 30
    assert 0 <= out["trained"] <= 1 and 0 <= out["random_init"] <= 1
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    problems = G.run_dir_problems(empty)
    assert any("last.ckpt" in p for p in problems) and any("train_loss" in p for p in problems)


@pytest.mark.parametrize("argv", [["recipe", "--skip", "no archive"]])
def test_recipe_step_can_be_recorded_as_skipped(argv: list[str], tmp_path: Path) -> None:
    code = G.main([*argv, "--out", str(tmp_path), "--train-spec", "x", "--test-spec", "y"])
    assert code == 0
    assert json.loads((tmp_path / G.JSON_RECIPE).read_text()) == {"skipped": "no archive"}


def test_report_writes_benchmarks_only_from_a_full_gpu_run(tmp_path: Path) -> None:
    bench_md = tmp_path / "BENCHMARKS.md"
    quick = _fake_bench(4.0, 0.9) | {"quick": True}
    (tmp_path / G.JSON_BENCH).write_text(json.dumps(quick))
    G.main(["report", "--out", str(tmp_path), "--write-benchmarks", str(bench_md)])
    assert not bench_md.exists()  # a smoke test never lands in BENCHMARKS.md
    (tmp_path / G.JSON_BENCH).write_text(json.dumps(_fake_bench(4.0, 0.9)))
    (tmp_path / G.TESTS_LOG).write_text("== 14 passed in 50s ==\ngpu_check: pytest exit status 0\n")
    assert G.main(["report", "--out", str(tmp_path), "--write-benchmarks", str(bench_md)]) == 0
    assert "<!-- bench:section gpu -->" in bench_md.read_text() and "14 passed in 50s" in bench_md.read_text()
