"""The one background job type: progress, result, error and stop, as the dashboard and the CLI read them.

Budget: ~1 s (plain Python work in threads).
"""

from __future__ import annotations

import threading

import pytest

from simclr_core.jobs import Job, Progress, spawn


def test_a_job_reports_progress_and_keeps_its_result() -> None:
    seen: list[Progress] = []
    release = threading.Event()

    def work(job: Job[int]) -> int:
        job.report(0.25, "counting")
        seen.append(job.progress)
        release.wait(10)
        job.report(2.0)  # clamped, and the message stays
        seen.append(job.progress)
        return 42

    job = spawn("count", work)
    assert job.label == "count"
    assert job.is_alive()
    release.set()
    assert job.join(10)
    assert seen == [Progress(0.25, "counting"), Progress(1.0, "counting")]
    assert job.result == 42 and job.error is None and job.progress == Progress(1.0, "done")
    assert job.wait() == 42


def test_an_error_is_kept_and_raised_by_wait() -> None:
    def work(job: Job[None]) -> None:
        job.report(0.5, "half way")
        raise ValueError("bad spec")

    job = spawn("fail", work)
    assert job.join(10)
    assert isinstance(job.error, ValueError) and job.progress == Progress(0.5, "failed")
    with pytest.raises(ValueError, match="bad spec"):
        job.wait()


def test_stop_is_a_request_the_work_polls() -> None:
    steps = []

    def work(job: Job[int]) -> int:
        while not job.stopping:
            steps.append(1)
            job.stop_event.wait(0.01)
        return len(steps)

    job = spawn("loop", work)
    job.stop()
    assert job.join(10) and job.stopping
    assert job.result == len(steps) >= 1


def test_probe_stages_are_values_with_their_share_of_the_work() -> None:
    from simclr_core.probe_run import ProbeStage

    fractions = [s.fraction for s in ProbeStage]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1
    assert ProbeStage.PROBE.label == "probing"
