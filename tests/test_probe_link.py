"""Share links carry the Probe page's sizes: the multiselect is bound to the address (?keep.probe_sizes=...)."""

from __future__ import annotations

from pathlib import Path

from tests.test_pages import app, like_a_running_server, with_run  # noqa: F401  (fixtures)


def test_a_query_string_restores_the_probe_sizes(with_run: Path) -> None:  # noqa: F811
    at = app()
    at.query_params["keep.probe_sizes"] = ["1", "50", "1000"]  # what a shared /probe?... link carries
    at.run()
    at.switch_page("pages/probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="keep.probe_sizes").value == [1, 50, 1000]
    assert at.session_state["keep.probe_sizes"] == [1, 50, 1000]
    # A change goes back into the address, so the link of the page shows it.
    at.multiselect(key="keep.probe_sizes").set_value([2, 5]).run()
    assert not at.exception
    assert at.query_params["keep.probe_sizes"] == ["2", "5"]
