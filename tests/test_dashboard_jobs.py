"""The dashboard's background jobs (dashboard/jobs.py) outside a page: what Resume may read, and how a
served training job ends when the server is signalled.

Streamlit runs "bare" here (no ScriptRunContext): ``st.error`` is captured, ``st.spinner`` is a no-op.
Budget: a few seconds, plus one real server with a tiny training job (~30-60 s on 2 busy cores).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import streamlit as st

from simclr_core.config import TrainConfig
from simclr_core.jobs import Job
from simclr_core.path_policy import ROOTS_ENV
from simclr_core.run_open import open_for_resume
from simclr_core.safe_load import resume_step
from simclr_core.store import Run, create_run

ROOT = Path(__file__).resolve().parents[1]

REFUSED = "outside the folders this server may read"


@pytest.fixture
def messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The dashboard's runs root in ``tmp_path/runs``; the page's error messages, collected."""
    monkeypatch.setenv("SIMCLR_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    shown: list[str] = []
    monkeypatch.setattr(st, "error", lambda body, **_: shown.append(str(body)))
    return shown


def _resume(run_id: str) -> object:
    from dashboard.jobs import jobs, resume_training

    before = jobs().training_job()
    job = resume_training(run_id)
    assert jobs().training_job() is before  # nothing took the training slot
    return job


def test_resume_checks_the_runs_data_against_the_roots_as_a_new_run_does(tmp_path: Path, messages: list[str]) -> None:
    outside = tmp_path / "elsewhere" / "pics"  # not under the data, runs or working-directory roots
    outside.mkdir(parents=True)
    runs = tmp_path / "runs"
    # runs a CLI user (or anyone with the runs folder) left with server paths in config.json
    for name, cfg in {
        "cli-data": TrainConfig(data=str(outside)),
        "cli-val": TrainConfig(data="shapes:unlabeled", val_data=f"{outside}?split=train"),
    }.items():
        run = create_run(runs, cfg.to_dict(), name=name, run_id=name)
        log_before = run.log_path.read_text() if run.log_path.exists() else ""
        messages.clear()
        assert _resume(name) is None
        assert len(messages) == 1 and REFUSED in messages[0], messages
        assert (run.log_path.read_text() if run.log_path.exists() else "") == log_before  # run untouched
    # a run id cannot lead out of the runs folder
    messages.clear()
    assert _resume("../elsewhere") is None
    assert len(messages) == 1 and REFUSED in messages[0], messages
    # a run whose data lies in the roots passes the check (and fails later for its own reason)
    ok = create_run(runs, TrainConfig(data="shapes:unlabeled").to_dict(), name="fine", run_id="fine")
    messages.clear()
    assert _resume(ok.path.name) is None
    assert len(messages) == 1 and REFUSED not in messages[0], messages  # e.g. "still queued"


SERVED = """
import sys
from pathlib import Path

from dashboard.jobs import jobs
from simclr_core.config import TrainConfig, augmentation_preset
from simclr_core.train import TrainingJob

runs, script, port = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = TrainConfig(
    data="shapes:unlabeled", image_size=32, small_input=True, limit_images=192, val_limit=100, batch_size=64,
    epochs=500, aug=augmentation_preset("tutorial", 32), precision="32", seed=0, monitor_share=1.0,
)
# a job in the server's training slot, as the Train page starts it (a background thread of the server)
jobs().start_training("a served run", lambda: TrainingJob(cfg, runs, name="served").start())
import streamlit.web.cli as cli

sys.argv = ["streamlit", "run", script, "--server.headless", "true", "--server.port", port,
            "--browser.gatherUsageStats", "false"]
cli.main()  # a real Streamlit server: its own SIGTERM/SIGINT handlers in the main thread
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("signum", [signal.SIGTERM])  # SIGINT takes the same path (Streamlit handles both alike)
def test_a_served_training_job_stops_cleanly_when_the_server_is_signalled(tmp_path: Path, signum: int) -> None:
    """A real `streamlit run` server with a real (tiny) training job in its training slot gets SIGTERM:
    the run ends `stopped` with a last.ckpt, resumable, as a CLI run does. Budget: ~30-60 s on 2 busy cores."""
    runs, script = tmp_path / "runs", tmp_path / "page.py"
    script.write_text("import streamlit as st\nst.write('up')\n")
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIMCLR_STUDIO_RUNS": str(runs)}
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVED, str(runs), str(script), str(_free_port())],
            cwd=ROOT,
            env=env,
            stdout=o,
            stderr=e,
        )
    try:
        deadline = time.monotonic() + 150
        trained = None
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = list(runs.glob("*/metrics.jsonl"))
            if metrics and "train_loss" in metrics[0].read_text() and "URL:" in out.read_text():
                trained = metrics[0].parent
                break
            time.sleep(0.5)
        assert trained is not None, f"no training step while the server ran:\n{out.read_text()}\n{err.read_text()}"
        assert Run(trained).raw_status().get("state") == "running"
        proc.send_signal(signum)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = err.read_text()
    assert rc == 0, log
    assert "SimCLR Studio is shutting down: stopping served" in log and "stopped." in log, log
    run = Run(trained)
    assert run.raw_status().get("state") == "stopped", (run.raw_status(), log)
    ckpt = run.checkpoint_dir / "last.ckpt"
    assert ckpt.is_file(), log
    resumed, _, found = open_for_resume(run.path)  # resumable: not alive, not done, lock free, checkpoint readable
    assert found == ckpt and resume_step(ckpt) >= 1
    steps = [r["step"] for r in run.metrics() if "train_loss" in r]
    assert steps == sorted(set(steps))  # no step written twice


def test_an_ending_server_refuses_new_jobs_and_stops_its_tasks(messages: list[str]) -> None:
    from dashboard.jobs import CLOSING, Jobs, stop_jobs_at_exit

    slot = Jobs()

    def work(job: Job[int]) -> int:
        while not job.stopping:
            time.sleep(0.01)
        return 7

    task = slot.start_task("probe", "a probe", work)
    # Only this slot: closing every slot of the process would close the AppTest server's for the tests after this.
    assert stop_jobs_at_exit(timeout=10, slots=[slot]) == [] and not task.is_alive() and task.result == 7
    assert slot.busy() == CLOSING  # the queue worker waits instead of failing its next entry
    with pytest.raises(RuntimeError, match=CLOSING):
        slot.start_training("late", lambda: pytest.fail("must not start"))
    with pytest.raises(RuntimeError, match=CLOSING):
        slot.start_task("probe", "late", work)
