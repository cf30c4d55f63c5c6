"""Share links carry the whole view: the sidebar's dataset and run, and the open tabs (Train, Augment, the lab).

Each is bound to the address (``bind="query-params"``), so a link opens the same view. The run is named bare
(``?run_id=<run name>``): its label says the run's state, and a link made while the run trained stopped matching
once it had finished. Runs here are made by the run store (no training): a few seconds in all.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_pages import SMALL, app, like_a_running_server  # noqa: F401  (fixture)


@pytest.fixture
def two_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An older finished run and a newer one still training (this process writes its status: alive)."""
    from simclr_core.config import TrainConfig
    from simclr_core.store import create_run

    root = tmp_path / "runs"
    monkeypatch.setenv("SIMCLR_STUDIO_RUNS", str(root))
    monkeypatch.setenv("SIMCLR_STUDIO_DEFAULT_DATA", SMALL)
    create_run(root, TrainConfig(data="shapes:unlabeled").to_dict(), run_id="older").write_status(state="finished")
    time.sleep(0.02)  # newest first, by creation time
    create_run(root, TrainConfig(data="shapes:unlabeled").to_dict(), run_id="training").write_status(state="running")
    return root


def test_a_bare_run_name_selects_that_run_before_and_after_it_finishes(two_runs: Path) -> None:
    from simclr_core.store import Run

    def opened(run_id: str):  # a fresh session from a link: /?run_id=<run_id>
        at = app()
        at.query_params["run_id"] = run_id
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    at = opened("older")  # not the newest run, which a session without a link would show
    picker = at.sidebar.selectbox(key="run_id")
    assert picker.value == "older"
    assert picker.options == ["training", "older"]  # bare names: the address holds what the picker shows
    assert any(c.value.endswith("simclr · finished") for c in at.sidebar.caption)  # the state, below the picker
    assert at.query_params["run_id"] == "older"

    at = opened("training")  # a link made while the run trained ...
    assert at.sidebar.selectbox(key="run_id").value == "training"
    assert any(c.value.endswith("simclr · running") for c in at.sidebar.caption)
    Run(two_runs / "training").write_status(state="finished")
    at = opened("training")  # ... still opens it once it has finished
    assert at.sidebar.selectbox(key="run_id").value == "training"
    assert any(c.value.endswith("simclr · finished") for c in at.sidebar.caption)
    assert at.query_params["run_id"] == "training"

    at = opened("training · simclr · finished")  # a label is no run name: the newest run, the value dropped
    assert at.sidebar.selectbox(key="run_id").value == "training"
    assert "·" not in str(at.query_params.get("run_id", ""))


def test_the_address_names_the_run_and_dataset_even_when_they_are_the_defaults(two_runs: Path) -> None:
    """Streamlit leaves a bound default out of the address; the newest run (or the current spec) as the default would
    leave a link without them, and whoever opens it later, after newer runs, would see another run."""
    at = app().run()
    at.run()  # Streamlit writes values set from code into the address from the second run on
    assert not at.exception
    assert at.query_params["run_id"] == "training" and at.query_params["data_spec"] == SMALL
    at.sidebar.selectbox(key="run_id").set_value("older").run()
    assert at.query_params["run_id"] == "older"
    at.sidebar.selectbox(key="data_spec").set_value("shapes:test").run()
    assert at.query_params["data_spec"] == "shapes:test"


def test_a_link_opens_the_train_pages_tab_and_starting_a_run_still_opens_the_run_tab(two_runs: Path) -> None:
    at = app()
    at.query_params.update({"run_id": "older", "nav.train_tab": "Compare runs"})
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["nav.train_tab"] == "Compare runs"  # not Run, the tab a session opens on otherwise
    assert at.query_params["nav.train_tab"] == "Compare runs"
    at.run()
    assert at.session_state["nav.train_tab"] == "Compare runs"  # a rerun keeps it
    # What Start, the Home demo, the queue's Open and a lab cell do: the Run tab, taken out of the address (default).
    at.session_state["_show_run_tab"] = True
    at.run()
    assert not at.exception
    assert at.session_state["nav.train_tab"] == "Run"
    assert "nav.train_tab" not in at.query_params and at.query_params["run_id"] == "older"


def test_a_link_opens_the_augment_pages_tabs_and_a_bad_tab_is_dropped(two_runs: Path) -> None:
    at = app()
    at.query_params.update({"nav.aug_tab": "Difficulty", "nav.lab_tab": "Try these augmentations"})
    at.run()
    at.switch_page("pages/augment.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["nav.aug_tab"] == "Difficulty"
    assert at.session_state["nav.lab_tab"] == "Try these augmentations"

    at = app()
    at.query_params["nav.train_tab"] = "No such tab"
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.session_state["nav.train_tab"] == "Run"  # a run is selected: its tab
    assert "nav.train_tab" not in at.query_params


def test_a_link_opens_the_maps_points_even_the_sliders_first_option(two_runs: Path) -> None:
    """The Points slider's default is 2000 by the widget itself: a default by session state left the slider's first
    option (500) as the widget's default, which Streamlit leaves out of the address, so a link with 500 showed 2000."""
    at = app()
    at.query_params.update({"run_id": "older", "emb_points": "500", "keep.emb_method": "PCA 3-D"})
    at.run()
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.select_slider(key="emb_points").value == 500
    assert at.selectbox(key="keep.emb_method").value == "PCA 3-D"

    at = app().run()  # no link: the default, and a change kept across pages (by the binding: not a keep.* key)
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception
    assert at.select_slider(key="emb_points").value == 2000
    at.select_slider(key="emb_points").set_value(4000).run()
    at.switch_page("pages/probe.py").run()
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception
    assert at.select_slider(key="emb_points").value == 4000
