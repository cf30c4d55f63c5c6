"""The dashboard's background jobs (dashboard/jobs.py) outside a page: what Resume may read.

Streamlit runs "bare" here (no ScriptRunContext): ``st.error`` is captured, ``st.spinner`` is a no-op.
Budget: a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from simclr_core.config import TrainConfig
from simclr_core.path_policy import ROOTS_ENV
from simclr_core.store import create_run

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
