"""The run queue in the dashboard: the worker that executes it while the server is up, and the Train page's panel.

The queue itself is a file in the runs folder (``simclr_core.run_queue``), so every tab and a
restarted server see the same entries, and ``python -m simclr_core queue ...`` edits it too. One
worker thread per runs folder executes it, through this server's training slot: an entry starts
only while no run started by hand trains here, and a queued run shows on the Train page (with
its Stop button) like any other. When a CLI executor holds the queue, the worker waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from dashboard.errors import attempt, describe_error, log
from dashboard.jobs import Jobs, jobs
from dashboard.state import runs_root, select_run
from simclr_core.run_queue import WAITING, DeviceBusy, Entry, QueueExecutor, RunQueue

if TYPE_CHECKING:
    from simclr_core.config import TrainConfig
    from simclr_core.run_queue import StartedJob

ICONS = {
    "queued": ":material/schedule:",
    "running": ":green[:material/directions_run:]",
    "finished": ":blue[:material/check_circle:]",
    "stopped": ":orange[:material/stop_circle:]",
    "cancelled": ":gray[:material/cancel:]",
    "failed": ":red[:material/error:]",
    "interrupted": ":orange[:material/warning:]",
}
SHOW_ENDED = 12  # ended entries listed under the waiting ones


class QueueWorker:
    """A daemon thread that runs the queue of one runs folder whenever entries wait."""

    def __init__(self, root: Path, slot: Jobs) -> None:
        self.root = root
        self.slot = slot
        self.executor = QueueExecutor(root, launch=self._launch, poll_s=1.0)
        self.thread = threading.Thread(target=self._loop, name=f"simclr-queue-{root.name}", daemon=True)
        self.thread.start()

    def _launch(self, entry: Entry, root: Path) -> StartedJob:
        from simclr_core.train import TrainingJob

        if self.slot.busy():
            raise DeviceBusy(self.slot.busy())
        try:
            return self.slot.start_training(
                f"queued run {entry.name}", lambda: TrainingJob(entry.train_config(), root, name=entry.name).start()
            )
        except RuntimeError as err:
            if self.slot.busy():  # a run was started by hand in between
                raise DeviceBusy(str(err)) from err
            raise

    def _loop(self) -> None:
        idle = threading.Event()
        while True:
            try:
                self.executor.run()
            except Exception:  # a damaged queue file: shown by the panel; keep polling
                log.exception("the queue worker of %s failed; retrying", self.root)
            idle.wait(2.0)

    def who(self) -> str:
        """Who executes the queue now, in words."""
        if self.executor.lock.held:
            return "this dashboard runs the queue"
        holder = self.executor.lock.holder()
        running = [e for e in RunQueue(self.root).entries() if e.state == "running"]
        if running and running[0].executor and running[0].executor.get("pid") != holder.get("pid"):
            holder = running[0].executor
        if running:
            return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} runs the queue"
        return "this dashboard runs the queue when an entry waits"


@st.cache_resource(show_spinner=False)
def _worker(root: str) -> QueueWorker:
    # pandas whole before a training thread exists: plotly imports it lazily while building a figure, and a
    # half-imported pandas (Lightning importing it in the worker at the same moment) fails that figure.
    import pandas  # noqa: F401

    return QueueWorker(Path(root), jobs())


def ensure_worker() -> QueueWorker:
    """The worker of the session's runs folder (started on first use, one per folder per server)."""
    return _worker(str(runs_root().resolve()))


def add(cfg: TrainConfig, name: str) -> Entry | None:
    """Queue a run from the Train page's form; a message instead of a traceback when it cannot be."""
    from dashboard.paths import check_config

    def queue_it() -> Entry:
        check_config(cfg)
        return RunQueue(runs_root()).add(cfg, name)

    entry = attempt("queue the run", queue_it)
    if entry is not None:
        ensure_worker()
        st.toast(f"Queued {name} ({entry.id}).", icon=":material/playlist_add:")
    return entry


def _act(what: str, fn: Callable[[], object]) -> None:
    """A button callback: do it, or say why not on the next run."""
    try:
        fn()
    except Exception as err:
        st.session_state["_notice_error"] = f"Could not {what}: {describe_error(err)}"


def _what(entry: Entry) -> str:
    cfg = entry.config
    text = f"{cfg.get('data')} · {cfg.get('backbone')} · {cfg.get('image_size')} px"
    if cfg.get("max_minutes"):
        text += f" · {cfg['max_minutes']:g} min"
    if entry.result and entry.result.get("knn_acc") is not None:
        text += f" · kNN {entry.result['knn_acc']:.1%}"
    return text


def _row(queue: RunQueue, entry: Entry, position: int | None, waiting: int) -> None:
    name, what, b1, b2, b3, b4 = st.columns([2.4, 3.2, 0.6, 0.6, 1, 1], vertical_alignment="center")
    name.markdown(f"{ICONS.get(entry.state, '')} **{entry.name}** `{entry.id}`")
    what.caption(_what(entry) + (f" — {entry.message}" if entry.message else ""))
    if position is not None:
        b1.button(
            "↑",
            key=f"queue.up.{entry.id}",
            disabled=position == 0,
            help="Earlier",
            on_click=_act,
            args=("move it", lambda: queue.move(entry.id, position - 1)),
        )
        b2.button(
            "↓",
            key=f"queue.down.{entry.id}",
            disabled=position == waiting - 1,
            help="Later",
            on_click=_act,
            args=("move it", lambda: queue.move(entry.id, position + 1)),
        )
    if entry.state in WAITING and not entry.cancel_requested:
        b3.button(
            "Cancel",
            key=f"queue.cancel.{entry.id}",
            icon=":material/close:",
            help="A waiting run never starts; a running one stops (resumable).",
            on_click=_act,
            args=("cancel it", lambda: queue.cancel(entry.id)),
        )
    elif entry.cancel_requested and entry.state == "running":
        b3.caption("stopping …")
    if entry.run and b4.button("Open", key=f"queue.open.{entry.id}", icon=":material/open_in_new:"):
        select_run(entry.run)
        st.session_state["_show_run_tab"] = True
        st.rerun(scope="app")


@st.fragment(run_every=2.0)
def queue_panel() -> None:
    """The queue of the runs folder, live: waiting and running entries first, then the last ones that ended."""
    worker = ensure_worker()
    queue = RunQueue(worker.root)
    entries = attempt("read the queue", queue.entries)
    if entries is None:
        return
    st.caption(f"Runs one at a time from `{worker.root}/queue.json`; {attempt('ask', worker.who) or ''}.")
    waiting = [e for e in entries if e.state in WAITING]
    ended = [e for e in entries if e.state not in WAITING][-SHOW_ENDED:][::-1]
    if not entries:
        st.info(
            "The queue is empty. Add runs with *Add to queue* under *New run*, from the Augment page's lab, "
            "or with `python -m simclr_core queue add`.",
            icon=":material/queue:",
        )
        return
    queued = [e for e in waiting if e.state == "queued"]
    for entry in waiting:
        _row(queue, entry, queued.index(entry) if entry in queued else None, len(queued))
    if ended:
        st.markdown("**Ended**")
        for entry in ended:
            _row(queue, entry, None, 0)
        st.button(
            "Clear ended entries",
            key="queue.clear",
            icon=":material/clear_all:",
            help="Their run directories stay.",
            on_click=_act,
            args=("clear the queue", queue.clear),
        )
