"""``python -m simclr_core queue add|list|cancel|move|clear|run``: the run queue of a runs folder.

The queue is ``<runs-dir>/queue.json``, shared with the dashboard (its Train page shows and
edits it, and its worker runs it while the dashboard is up). ``queue run`` executes it here, one
run at a time; while another executor (a dashboard, another ``queue run``) holds the queue it waits.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from simclr_core.run_queue import Entry, QueueExecutor, RunQueue


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from simclr_core.commands.train import add_config_arguments

    p = subparsers.add_parser("queue", help="runs waiting their turn: add, list, cancel, reorder, run them")
    sub = p.add_subparsers(dest="queue_command", required=True, metavar="ACTION")

    def action(name: str, about: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=about, description=about)
        q.add_argument("--runs-dir", default="runs", metavar="DIR", help="the runs folder whose queue (default ./runs)")
        return q

    add = action("add", "queue a training run (the flags of `train`); it starts when its turn comes")
    add_config_arguments(add)
    add.add_argument("--name", default=None, help="run name (default simclr)")
    add.add_argument(
        "--knn",
        action="store_true",
        help="score the finished run with the kNN of bench quality (bank: the labelled train split, scored: the "
        "held-out split) into <run>/knn_eval.json",
    )
    add.set_defaults(func=_add)
    listing = action("list", "the entries in order: id, state, name, run directory, message")
    listing.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    listing.set_defaults(func=_list)
    cancel = action("cancel", "drop a waiting entry, or stop a running one (its run reads stopped, resumable)")
    cancel.add_argument("entry", help="entry id (a unique prefix is enough)")
    cancel.set_defaults(func=_cancel)
    move = action("move", "put a waiting entry at another place among the waiting ones")
    move.add_argument("entry", help="entry id (a unique prefix is enough)")
    move.add_argument("position", type=int, help="0: next to start")
    move.set_defaults(func=_move)
    clear = action("clear", "remove the entries that ended (their run directories stay)")
    clear.set_defaults(func=_clear)
    run = action("run", "execute the queue here, one run at a time, until nothing waits")
    run.add_argument("--follow", action="store_true", help="keep waiting for new entries (stop with Ctrl-C)")
    run.set_defaults(func=_run)
    return p


def _add(args: argparse.Namespace) -> int:
    from simclr_core.commands.train import config_from_args
    from simclr_core.knn_eval import eval_specs

    config = config_from_args(args)
    evaluate = None
    if args.knn:
        bank, scored = eval_specs(config.data)
        evaluate = {"bank": bank, "scored": scored}
    entry = RunQueue(args.runs_dir).add(config, args.name or "simclr", evaluate=evaluate)
    print(f"queued {entry.id} ({entry.name}); position {_position(args.runs_dir, entry.id)}")
    return 0


def _position(runs_dir: str, entry_id: str) -> int:
    waiting = [e.id for e in RunQueue(runs_dir).entries() if e.state == "queued"]
    return waiting.index(entry_id) if entry_id in waiting else -1


def describe(entry: Entry) -> str:
    """One line per entry, as ``queue list`` prints it."""
    cfg = entry.config
    what = f"{cfg.get('data')} {cfg.get('backbone')} {cfg.get('image_size')}px"
    if cfg.get("max_minutes"):
        what += f" {cfg['max_minutes']:g} min"
    score = f" kNN {entry.result['knn_acc']:.1%}" if entry.result and "knn_acc" in entry.result else ""
    tail = f" -> {entry.run}" if entry.run else ""
    return f"{entry.id}  {entry.state:<11} {entry.name:<20} {what}{score}{tail}" + (
        f"  ({entry.message})" if entry.message else ""
    )


def _list(args: argparse.Namespace) -> int:
    entries = RunQueue(args.runs_dir).entries()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
    elif not entries:
        print(f"the queue of {args.runs_dir} is empty")
    else:
        for e in entries:
            print(describe(e))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    entry = RunQueue(args.runs_dir).cancel(args.entry)
    print(
        f"{entry.id}: " + ("cancelled" if entry.state == "cancelled" else "stop requested; its executor stops the run")
    )
    return 0


def _move(args: argparse.Namespace) -> int:
    entry = RunQueue(args.runs_dir).move(args.entry, args.position)
    print(f"{entry.id} is now at position {_position(args.runs_dir, entry.id)}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    print(f"removed {RunQueue(args.runs_dir).clear()} ended entries")
    return 0


def announce(entry: Entry) -> None:
    """An executor's line per started/ended entry."""
    stamp = time.strftime("%H:%M:%S")
    if entry.state == "running":
        print(f"{stamp} started {entry.id} {entry.name} -> {entry.run}", flush=True)
    else:
        print(f"{stamp} {entry.state} {entry.id} {entry.name}: {entry.message}", flush=True)


def execute(runs_dir: str, until: Any = None, follow: bool = False) -> int:
    """Run the queue here until ``until()`` (default: nothing waits; with ``follow`` until a signal)."""
    from simclr_core.signals import StopSignals

    signals = StopSignals().install()
    try:
        executor = QueueExecutor(runs_dir, on_event=announce)
        if not executor.lock.try_acquire():
            print(f"waiting: {executor.lock.holder_text()}", flush=True)
        else:
            executor.lock.release()
        executor.run(signals.event, until=(lambda: False) if follow else until)
        return signals.exit_code(0)
    finally:
        signals.restore()


def _run(args: argparse.Namespace) -> int:
    return execute(args.runs_dir, follow=args.follow)
