"""Every dashboard page through streamlit.testing's AppTest: renders without exception, main controls work.

Budget: under 60 s on 2 busy cores, plus the shared ``tiny_run`` fixture (trained once per session).
Datasets are kept tiny (``shapes:...?n=5``) so the pages never wait on data generation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
SMALL = "shapes:train?n=3"  # 30 images: what the sidebar's dataset defaults to in these tests


@pytest.fixture(autouse=True)
def like_a_running_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every AppTest run through app.py's navigation, as a server does once app.py has run.

    AppTest re-detects the ``pages/`` folder before each run, so without this every run would
    start as a legacy pages-folder app, which a real server is only until its first
    ``st.navigation`` (see dashboard/routing.py; ``test_a_page_run_on_its_own_...`` covers that case).
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class Running(PagesManager):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", Running)


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMCLR_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SIMCLR_STUDIO_DEFAULT_DATA", SMALL)
    return tmp_path / "runs"


@pytest.fixture
def with_run(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the tiny run in its own runs folder."""
    root = tmp_path / "runs"
    shutil.copytree(tiny_run, root / tiny_run.name)
    monkeypatch.setenv("SIMCLR_STUDIO_RUNS", str(root))
    monkeypatch.setenv("SIMCLR_STUDIO_DEFAULT_DATA", SMALL)
    return root / tiny_run.name


def app(**state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def page(name: str, **state: object) -> AppTest:
    at = app(**state).run()
    assert not at.exception, at.exception
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def images(at: AppTest) -> list[str]:
    """Media URLs of the page's pictures (content-addressed, so a changed picture gets a new URL)."""
    return [url for el in at.main.get("image") for url in el.value]


def test_home_shows_device_datasets_and_the_demo_button(runs_root: Path) -> None:
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "SimCLR Studio"
    assert any(b.label == "Start a demo run" for b in at.button)
    text = " ".join(m.value for m in at.markdown)
    assert "CPU" in text or "GPU" in text
    assert "| shapes:train | built\\-in | yes | 5,000 | 10 |" in text and "| cifar10:test |" in text
    assert any("No runs yet" in i.value for i in at.info)


def test_home_dataset_table_is_filled_on_the_first_run_without_the_lazy_grid(runs_root: Path) -> None:
    """The first visit drew the dataset table as an empty grey box: st.dataframe's grid script loads lazily (its
    placeholder stood for seconds on a busy machine). It is markdown now, drawn with the page's text."""
    at = app().run()  # the session's first run
    assert not at.exception
    (table,) = [m.value for m in at.markdown if m.value.startswith("| spec |")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| spec")]
    assert len(rows) >= 9 and all(line.count("|") == 7 for line in rows)  # 6 cells each, none split by a '|'
    assert "- **shapes**: built\\-in, offline" in table  # each source's description once, below the table
    assert not at.dataframe and not at.table  # no lazily loaded grid (no runs yet: the runs table is absent too)


def test_home_lists_runs_with_their_status(with_run: Path) -> None:
    at = app().run()
    runs = at.dataframe[0].value
    assert runs["run"].tolist() == [with_run.name]
    assert runs["state"].tolist() == ["finished"]
    assert at.sidebar.selectbox(key="run_id").value == with_run.name


def test_a_page_run_on_its_own_is_routed_through_app(runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link to a page on a fresh server: Streamlit runs the page without app.py; it reruns through it."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    monkeypatch.setattr(app_test, "PagesManager", PagesManager)  # AppTest's own pages-folder detection
    at = app().run()
    at.switch_page("pages/probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Linear probe"
    assert at.sidebar.selectbox(key="data_spec").value == SMALL  # app.py's sidebar was drawn


def test_every_session_key_is_in_the_state_table() -> None:
    """Keys read, written or given to widgets anywhere in the dashboard are listed in dashboard/state.py."""
    import re

    from dashboard import state

    root = Path(APP).parent
    reads = r"ss\[|ss\.(?:get|setdefault|pop)\(|session_state\[|session_state\.(?:get|setdefault|pop)\("
    pattern = re.compile(rf'(?:key=|{reads})"([^"]+)"')
    files = [root / "app.py", *sorted((root / "pages").glob("*.py")), *sorted((root / "dashboard").glob("*.py"))]
    used = {key for f in files for key in pattern.findall(f.read_text())}
    assert len(used) > 60, used  # the pattern still finds them
    assert sorted(k for k in used if not state.is_known(k)) == []


def test_augment_grid_follows_controls_and_presets(runs_root: Path) -> None:
    at = page("augment")
    before = images(at)
    assert before, "no grid drawn"
    at.slider(key="aug.jitter_brightness").set_value(1.5).run()
    assert not at.exception
    assert images(at) != before
    at.selectbox(key="aug.preset").set_value("none").run()
    assert at.slider(key="aug.flip_p").value == 0.0
    assert at.slider(key="aug.crop_scale").value == (1.0, 1.0)
    assert any("make_views" in c.value for c in at.code)


def test_augment_bad_value_is_a_message_not_a_crash(runs_root: Path) -> None:
    at = page("augment")
    at.text_input(key="aug.std").set_value("0.5, zero, 0.5").run()
    assert not at.exception
    assert any("std" in e.value for e in at.error)


def test_use_for_training_carries_to_the_train_page(runs_root: Path) -> None:
    at = page("augment")
    at.slider(key="aug.grayscale_p").set_value(0.6).run()
    next(b for b in at.button if b.label == "Use for training").click().run()
    assert at.session_state["train_aug"]["grayscale_p"] == 0.6
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert any("gray p=0.6" in c.value for c in at.caption)


def test_shared_link_restores_the_setup(runs_root: Path) -> None:
    from dashboard.sharing import encode_setup

    setup = {"aug": {"jitter_hue": 0.3, "crop_scale": [0.5, 1.0]}, "train": {"temperature": 0.2, "epochs": 7}}
    at = app()
    at.query_params["setup"] = encode_setup(setup)
    at.run()
    assert not at.exception
    assert at.session_state["aug.jitter_hue"] == 0.3
    assert at.session_state["aug.crop_scale"] == (0.5, 1.0)
    assert at.session_state["train.temperature"] == 0.2
    assert at.session_state["train.epochs"] == 7


def test_broken_link_says_so(runs_root: Path) -> None:
    at = app()
    at.query_params["setup"] = "not-a-setup"
    at.run()
    assert not at.exception
    assert any("shared link" in e.value for e in at.error)


def test_train_refuses_impossible_settings_with_a_message(runs_root: Path) -> None:
    at = page("train", **{"train.data": "shapes:unlabeled?n=20", "train.image_size": 32, "train.batch_size": 64})
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert any("larger than the 20 training images" in e.value for e in at.error), [e.value for e in at.error]
    assert not runs_root.exists() or not any(runs_root.iterdir()), "a refused run left a directory behind"


def test_train_says_a_missing_monitoring_path_before_asking_about_a_long_run(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMCLR_STUDIO_ALLOWED_ROOTS", str(runs_root.parent))
    missing = runs_root.parent / "no-such-folder"  # inside the allowed roots: refused for not existing
    at = page("train", **{"train.data": SMALL, "train.val_data": str(missing), "train.epochs": 500})
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert any("no such file or folder" in e.value for e in at.error), [e.value for e in at.error]
    assert not any("would train for about" in m.value for m in at.markdown), "the long-run question came first"
    assert not runs_root.exists() or not any(runs_root.iterdir()), "a refused run left a directory behind"


def test_train_cpu_friendly_keeps_the_data_and_method_with_the_methods_own_settings(runs_root: Path) -> None:
    from simclr_core.config import FAST_METHOD_SETTINGS

    method, settings = next(iter(FAST_METHOD_SETTINGS.items()))
    at = page("train", **{"train.data": SMALL, "train.method": method, "train.hidden_dim": 8})
    next(b for b in at.button if b.label == "CPU-friendly").click().run()
    assert not at.exception
    assert at.selectbox(key="train.method").value == method
    assert at.text_input(key="train.data").value == SMALL
    assert {name: at.session_state[f"train.{name}"] for name in settings} == settings
    assert at.number_input(key="train.image_size").value == 32  # the fast recipe's, not the form's


def test_train_shows_the_memory_need_and_refuses_what_would_not_fit(runs_root: Path) -> None:
    at = page("train", **{"train.data": SMALL, "train.image_size": 32, "train.batch_size": 16})
    assert any(c.value.startswith("Memory: about") for c in at.caption), [c.value for c in at.caption]
    at = page("train", **{"train.data": SMALL, "train.image_size": 512, "train.batch_size": 65536})
    assert any("lower the batch size to at most" in c.value for c in at.caption), [c.value for c in at.caption]
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert any("these settings need" in e.value for e in at.error), [e.value for e in at.error]
    assert not runs_root.exists() or not any(runs_root.iterdir()), "a refused run left a directory behind"


def test_second_job_is_refused_naming_the_first() -> None:
    from types import SimpleNamespace

    from dashboard.jobs import Jobs

    class Busy:
        run = SimpleNamespace(id="first-run")

        def is_alive(self) -> bool:
            return True

    jobs = Jobs()
    jobs.start_training("start the run 'first'", Busy)
    with pytest.raises(RuntimeError, match="first-run"):
        jobs.start_training("start the run 'second'", Busy)


def test_train_page_shows_the_run_live_and_compares(with_run: Path) -> None:
    at = page("train")
    assert any(with_run.name in m.value for m in at.markdown)
    assert at.get("plotly_chart"), "no curves"
    assert any(m.label == "kNN accuracy" for m in at.metric)
    assert at.multiselect(key="keep.compare_runs").value == [with_run.name]


def test_embeddings_map_and_selection(with_run: Path) -> None:
    at = page(
        "embeddings", **{"keep.emb_split": "other", "keep.emb_other": "shapes:test?n=5", "keep.emb_method": "PCA 2-D"}
    )
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "no scatter"
    assert "%" in next(m for m in at.metric if m.label.startswith("kNN")).value


def test_embeddings_draw_a_links_labelled_data_on_its_first_run(with_run: Path) -> None:
    at = app()  # a fresh session opening /embeddings?keep.emb_split=...&keep.emb_other=...
    at.query_params.update(
        {"keep.emb_split": "other labelled data ...", "keep.emb_other": "shapes:test?n=5", "keep.emb_method": "PCA 2-D"}
    )
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.get("plotly_chart"), "the link's map waited for a click"


def test_embeddings_bad_spec_is_a_message(with_run: Path) -> None:
    at = page(
        "embeddings", **{"keep.emb_split": "other", "keep.emb_other": "/no/such/folder", "keep.emb_method": "PCA 2-D"}
    )
    assert any("outside the folders this server may read" in e.value for e in at.error)


def test_path_fields_never_reveal_server_paths(with_run: Path) -> None:
    """Probing: an existing folder, a secret one and a missing one outside the roots read the same."""
    messages = []
    for probe in ("/etc", "~/.ssh", "/no/such/folder", str(with_run.parent / ".." / ".." / "..")):
        at = page("embeddings", **{"keep.emb_split": "other", "keep.emb_other": probe, "keep.emb_method": "PCA 2-D"})
        text = " ".join(e.value for e in at.error)
        assert "outside the folders this server may read" in text and "SIMCLR_STUDIO_ALLOWED_ROOTS" in text, text
        messages.append(text.replace(repr(probe), "PATH"))
    assert len(set(messages)) == 1, messages  # nothing says whether the path exists or what it holds
    at = app(runs_root="/etc").run()
    assert not at.exception
    assert any("'/etc' is outside the folders" in e.value for e in at.sidebar.error)


def test_probe_runs_in_background_and_shows_the_figure(with_run: Path) -> None:
    from dashboard.jobs import jobs

    at = page(
        "probe",
        **{
            "keep.probe_sizes": [1, 2],
            "keep.probe_repeats": 2,
            "keep.probe_train": "shapes:train?n=4",
            "keep.probe_test": "shapes:test?n=5",
        },
    )
    at.button(key="btn.probe").click().run()
    assert not at.exception
    task = jobs().tasks["probe"]
    assert task.join(timeout=120), "the probe did not end"
    assert task.error is None, task.error
    assert task.result == [with_run.name] and task.progress.fraction == 1.0
    at.run()
    assert not at.exception
    assert (with_run / "probe.json").is_file()
    assert at.get("plotly_chart"), "no probe figure"
    table = at.dataframe[0].value
    assert table["images per class"].tolist() == [1, 2]
    assert any(b.label == "Download CSV" for b in at.download_button)


def test_corrupt_checkpoint_upload_is_refused_with_a_message(runs_root: Path) -> None:
    at = page(
        "embeddings",
        **{"keep.emb_source": "Checkpoint file", "keep.emb_split": "other", "keep.emb_other": "shapes:test?n=3"},
    )
    at.file_uploader(key="upload.ckpt").upload("SimCLR.ckpt", b"\x00 definitely not a checkpoint").run()
    assert not at.exception
    assert any("not a readable PyTorch checkpoint" in e.value for e in at.error), [e.value for e in at.error]


def test_upload_that_is_not_an_image_is_reported(runs_root: Path) -> None:
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, format="PNG")
    at = page("augment", **{"keep.aug_source": "Upload"})
    at.file_uploader(key="upload.aug_images").set_value(
        [("red.png", png.getvalue(), "image/png"), ("notes.png", b"hello, not a picture", "image/png")]
    ).run()
    assert not at.exception
    assert any("notes.png" in w.value for w in at.warning)
    assert images(at), "the good image should still be shown"


def test_the_progress_bar_speaks_of_the_budget_on_a_budget_run() -> None:
    from dashboard.widgets import progress_text

    status = {"epoch": 7, "epochs": 1000, "step": 500, "total_steps": 312000, "progress": 0.4}
    assert progress_text(status, None) == "epoch 7/1000 · step 500/312000 · 40%"
    budget = progress_text(status, 5)
    assert budget == "epoch 7 · step 500 · 40% of the 5-minute budget" and "1000" not in budget
