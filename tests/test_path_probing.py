"""Path probing through the dashboard (issue 13): every field that takes a server path, typed as a visitor would.

Each path field is set, through its widget, to folders outside the allowed roots: ``/etc`` (exists, readable),
``~/.ssh`` (a fake home's, holding a canary key), a missing folder, a hidden folder inside the runs root and
a link inside the runs root that points at ``/etc``. The button that makes the page use the field is pressed.
Every probe must end in the policy's one refusal (naming ``SIMCLR_STUDIO_ALLOWED_ROOTS``), read the same
for every probe once the path itself is replaced (nothing tells whether it exists or what it holds), show
no file name from inside the probed folders, and leave no run directory or queue entry behind.

The selected run is a fabricated one (config, status, marker and a placeholder ``last.ckpt``): every page
checks the data path before it reads a checkpoint, so no training is needed. Budget: under 60 s on 2 busy cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_pages import SMALL, app, like_a_running_server, page, runs_root  # noqa: F401  (fixtures)

REFUSAL = "outside the folders this server may read"
ROOTS_ENV = "SIMCLR_STUDIO_ALLOWED_ROOTS"
CANARY = "canary7c1e"  # in every file name the test plants inside a probed folder
MISSING = "/no/such/folder"


@dataclass(frozen=True)
class Field:
    """A path field: the page it is on, its session key, the button that makes the page use it (None: rendering
    does), and state that makes the field shown."""

    page: str
    key: str
    button: str | None = None  # a widget key, or "label:<label>" for a form's submit button
    state: dict[str, object] = field(default_factory=dict)


EMB = {"keep.emb_split": "other", "keep.emb_method": "PCA 2-D"}
TRAIN = {"train.data": SMALL, "train.image_size": 32, "train.batch_size": 16}  # quick to estimate, fits in memory
FIELDS = {
    # app.py's sidebar (dashboard/widgets.py): the dataset the Augment page previews (dashboard/preview.py)
    "sidebar-dataset/augment-preview": Field("augment", "data_spec"),
    # the sidebar's Settings > Runs folder (dashboard/widgets.py, dashboard/paths.runs_folder)
    "sidebar-runs-folder": Field("home", "runs_root"),
    # Train > New run form: Start training (dashboard/jobs.start_training) and Add to queue (dashboard/queueing.add)
    "train-data/start": Field("train", "train.data", "label:Start training", state=TRAIN),
    "train-data/queue": Field("train", "train.data", "label:Add to queue", state=TRAIN),
    "train-monitoring-data/start": Field("train", "train.val_data", "label:Start training", state=TRAIN),
    "train-monitoring-data/queue": Field("train", "train.val_data", "label:Add to queue", state=TRAIN),
    # Train > Compare runs > overlay 'path on the server' (dashboard/overlays.py)
    "train-overlay-path/add": Field("train", "keep.overlay_path", "btn.overlay_path"),
    # Probe > Labelled data: Run probe (dashboard/probing.start_probe); the supervised baseline has no field of its
    # own, it trains on these two (dashboard/probing.start_supervised)
    "probe-train-split/run-probe": Field("probe", "keep.probe_train", "btn.probe"),
    "probe-test-split/run-probe": Field("probe", "keep.probe_test", "btn.probe"),
    "probe-train-split/train-baseline": Field("probe", "keep.probe_train", "btn.supervised"),
    "probe-test-split/train-baseline": Field("probe", "keep.probe_test", "btn.supervised"),
    # Embeddings > Split: other labelled data (dashboard/evaluation.feature_set)
    "embeddings-other-data": Field("embeddings", "keep.emb_other", state=EMB),
    # Augment > Augmentation lab (dashboard/lab.py): Queue the ablation and Try these augmentations
    "lab-training-data/ablation": Field("augment", "keep.lab_data", "btn.lab_ablate"),
    "lab-training-data/try": Field("augment", "keep.lab_data", "btn.try"),
    "lab-knn-bank/ablation": Field("augment", "keep.lab_bank", "btn.lab_ablate"),
    "lab-knn-bank/try": Field("augment", "keep.lab_bank", "btn.try"),
    "lab-scored-on/ablation": Field("augment", "keep.lab_scored", "btn.lab_ablate"),
    "lab-scored-on/try": Field("augment", "keep.lab_scored", "btn.try"),
}
KNOWN_UNPROTECTED: dict[str, str] = {}  # field id -> why (pytest.mark.xfail(strict=True) while the product lacks it)


@pytest.fixture
def probes(runs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:  # noqa: F811
    """The probed paths; plants canary files in the secret ones and a fabricated run with a checkpoint."""
    from simclr_core.config import TrainConfig
    from simclr_core.store import create_run

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / f"id_rsa_{CANARY}").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("HOME", str(home))  # '~/.ssh' is this one: an existing secret with a known content
    # Start times a few training steps for its estimate, per settings (so per probe): seconds on busy cores that
    # have nothing to do with paths. A fixed figure keeps the estimate short, so Start goes on to start the run.
    monkeypatch.setattr("dashboard.services.seconds_per_image", lambda config_json: 1e-4)
    run = create_run(runs_root, TrainConfig(data="shapes:unlabeled?n=20", image_size=32).to_dict(), name="fake")
    run.write_status(state="finished", progress=1.0)
    (run.checkpoint_dir / "last.ckpt").write_bytes(b"placeholder: every page checks the data path first")
    hidden = runs_root / ".secret"
    (hidden / "cls").mkdir(parents=True)
    (hidden / f"{CANARY}.png").write_bytes(b"\x89PNG")
    (hidden / "cls" / f"{CANARY}-b.png").write_bytes(b"\x89PNG")
    (hidden / f"events.out.tfevents.{CANARY}").write_bytes(b"")
    (runs_root / "etc-link").symlink_to("/etc")
    return ["/etc", "~/.ssh", MISSING, str(hidden), str(runs_root / "etc-link")]


def rendered(at: AppTest) -> str:
    """Every string the page sent to the browser (the protos of all elements and blocks, sidebar included)."""
    out: list[str] = []

    def walk(node: object) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)  # AppTest keeps the whole tree (main, sidebar, event containers) here
    return "\n".join(out)


def messages(at: AppTest) -> list[str]:
    return [e.value for e in (*at.error, *at.warning)]


def tree(root: Path) -> set[str]:
    """The directories below ``root`` (links not followed)."""
    return {os.path.relpath(d, root) for d, _, _ in os.walk(root)}


def refusal_cases() -> list[object]:
    cases = []
    for name in FIELDS:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_UNPROTECTED[name])] if name in KNOWN_UNPROTECTED else []
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


def press(at: AppTest, button: str) -> None:
    if button.startswith("label:"):
        next(b for b in at.button if b.label == button.removeprefix("label:")).click()
    else:
        at.button(key=button).click()


def assert_refused_alike(seen: dict[str, tuple[list[str], str]]) -> None:
    """``seen``: per probe, the messages shown and everything rendered. One refusal for all, nothing from inside."""
    normalised = {}
    for probe, (texts, shown) in seen.items():
        text = "\n".join(texts)
        assert REFUSAL in text and ROOTS_ENV in text, (probe, texts)
        assert REFUSAL in shown  # the walk over the rendered elements saw the message: the checks below see all
        normalised[probe] = text.replace(repr(probe), "PATH").replace(probe, "PATH")
    assert len(set(normalised.values())) == 1, normalised  # nothing says whether the path exists or what it holds
    baseline = seen[MISSING][1]  # a missing folder holds nothing: a name shown only for another probe leaked
    inside = [n for n in os.listdir("/etc") if len(n) >= 4]
    for probe, (_, shown) in seen.items():
        assert CANARY not in shown, probe
        leaked = [n for n in inside if n in shown and n not in baseline]
        assert not leaked, (probe, leaked)


def assert_nothing_left(root: Path, before: set[str]) -> None:
    from simclr_core.run_queue import RunQueue

    assert tree(root) == before, "a refused path left a directory behind"
    assert not RunQueue(root).entries(), "a refused path was queued"
    assert not Path(MISSING).exists()


@pytest.mark.parametrize("name", refusal_cases())
def test_a_path_field_refuses_every_probe_alike_and_reveals_nothing(
    name: str,
    probes: list[str],
    runs_root: Path,  # noqa: F811
) -> None:
    spec = FIELDS[name]
    at = page(spec.page, **spec.state)
    before = tree(runs_root)
    seen: dict[str, tuple[list[str], str]] = {}
    for probe in probes:
        widgets = [w for w in at.text_input if w.key == spec.key]
        in_form = bool(widgets and widgets[0].form_id)
        if widgets:
            widgets[0].input(probe)
        else:  # the sidebar's dataset: a selectbox taking new options, which the browser sends as the typed text
            box = at.selectbox(key=spec.key)
            box.options.append(probe)  # AppTest's selectbox only sends listed options
            box.set_value(probe)
        shown, texts = "", []
        if not in_form:  # typing reruns the page (a form's field waits for its submit button)
            at.run()
            assert not at.exception, (probe, [e.value for e in at.exception])
            shown, texts = rendered(at), messages(at)
        if spec.button is not None:
            press(at, spec.button)
            at.run()
            assert not at.exception, (probe, [e.value for e in at.exception])
            shown, texts = shown + rendered(at), texts + messages(at)
        seen[probe] = (texts, shown)
    assert_refused_alike(seen)
    assert_nothing_left(runs_root, before)


# Fields bound to the address (bind="query-params"): a link names the path, no typing needed. A bound selectbox
# is named in the address by its option's label.
LINKS = {
    "link-dataset/augment-preview": ("augment", "data_spec", {}),
    "link-embeddings-other-data": ("embeddings", "keep.emb_other", {"keep.emb_split": "other labelled data ..."}),
}


@pytest.mark.parametrize("name", list(LINKS))
def test_a_link_naming_a_path_is_refused_alike(name: str, probes: list[str], runs_root: Path) -> None:  # noqa: F811
    page_name, key, params = LINKS[name]
    before = tree(runs_root)
    seen: dict[str, tuple[list[str], str]] = {}
    for probe in probes:
        at = app()  # a fresh session opening /<page>?<key>=<probe>
        at.query_params.update({**params, key: probe})
        at.switch_page(f"pages/{page_name}.py").run()
        assert not at.exception, (probe, [e.value for e in at.exception])
        shown, texts = rendered(at), messages(at)
        box = at.selectbox(key="data_spec")  # the browser sends the address's dataset back as typed text
        if box.proto.raw_value and box.proto.raw_value not in box.options:
            box.options.append(box.proto.raw_value)
        at.run()  # the next rerun (a field drawn below what reads it takes the address's value from then on)
        assert not at.exception, (probe, [e.value for e in at.exception])
        seen[probe] = (texts + messages(at), shown + rendered(at))
    assert_refused_alike(seen)
    assert_nothing_left(runs_root, before)
