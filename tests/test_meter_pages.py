"""The Augment page's difficulty meter and the Embeddings page's replay through streamlit.testing's AppTest.

Real engine underneath: a random-init ResNet-10 at 32 px for the meter, and a run trained here (ResNet-10,
4 steps, 3 snapshots) for the replay.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_pages import like_a_running_server  # noqa: F401  (autouse: app.py's navigation, as on a server)

APP = str(Path(__file__).resolve().parents[1] / "app.py")
SMALL = "shapes:train?n=3"  # 30 images


@pytest.fixture(scope="module")
def snapshot_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simclr_core.config import TrainConfig, augmentation_preset
    from simclr_core.train import train

    root = tmp_path_factory.mktemp("meter_page_runs")
    config = TrainConfig(
        data="shapes:unlabeled",
        val_data=SMALL,
        image_size=32,
        backbone="resnet10",
        limit_images=64,
        batch_size=32,
        epochs=2,
        aug=augmentation_preset("tutorial", 32),
        precision="32",
        snapshots=3,
        seed=0,
    )
    run = train(config, root, name="replay")
    assert len(run.snapshots()) == 3
    return root


def page(name: str, monkeypatch: pytest.MonkeyPatch, runs: Path, **state: object) -> AppTest:
    monkeypatch.setenv("SIMCLR_STUDIO_RUNS", str(runs))
    monkeypatch.setenv("SIMCLR_STUDIO_DEFAULT_DATA", SMALL)
    # A loaded 2-core host: the first run imports torch and starts the warm-up.
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def readings(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_meter_reads_a_random_encoder_and_follows_a_slider(monkeypatch, tmp_path) -> None:
    small_model = {"train.backbone": "resnet10", "train.small_input": False, "train.image_size": 32}
    at = page("augment", monkeypatch, tmp_path / "runs", **small_model)
    assert at.selectbox(key="keep.aug_encoder").value == "Off"
    assert "InfoNCE loss" not in readings(at)  # nothing computed until an encoder is picked
    at.selectbox(key="keep.aug_encoder").set_value("Random init").run()
    assert not at.exception, [e.value for e in at.exception]
    first = readings(at)
    assert set(first) >= {"InfoNCE loss", "Top-1", "Top-5", "Mean rank of the positive"}
    assert float(first["InfoNCE loss"]) > 0
    assert any("What the network sees" in s.value for s in at.subheader)
    captions = [c for el in at.main.get("image") for c in el.captions]
    assert any(c.startswith("its other view") for c in captions) and sum(c.startswith("#") for c in captions) == 8
    at.slider(key="aug.crop_scale").set_value((1.0, 1.0))
    at.slider(key="aug.jitter_p").set_value(0.0)
    at.slider(key="aug.grayscale_p").set_value(0.0)
    at.slider(key="aug.blur_p").set_value(0.0)
    at.slider(key="aug.flip_p").set_value(0.0).run()
    assert not at.exception
    identical = readings(at)
    assert identical["Top-1"] == "100.0%" and float(identical["InfoNCE loss"]) < float(first["InfoNCE loss"])
    assert at.success and "Solved" in at.success[0].value


def test_the_replay_animates_the_snapshots_of_a_run(monkeypatch, snapshot_runs: Path) -> None:
    run_id = next(p.name for p in snapshot_runs.iterdir() if p.is_dir())
    at = page(
        "embeddings",
        monkeypatch,
        snapshot_runs,
        run_id=run_id,
        **{"keep.emb_method": "PCA 2-D", "keep.emb_split": "other", "keep.emb_other": "shapes:test?n=3"},
    )
    assert any("Clusters forming" in s.value for s in at.subheader)
    at.toggle(key="keep.emb_replay").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    animated = [c for c in charts if c.get("frames")]
    assert len(animated) == 1 and len(animated[0]["frames"]) == 3
    layout = animated[0]["layout"]
    assert [b["label"] for b in layout["updatemenus"][0]["buttons"]] == ["▶ Play", "❚❚ Pause"]
    assert len(layout["sliders"][0]["steps"]) == 3
    frames = animated[0]["frames"]
    assert frames[0]["data"][0]["x"] != frames[-1]["data"][0]["x"]  # the points move
