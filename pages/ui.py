"""Shared pieces of the dashboard: state defaults, the sidebar, caches, background jobs, error display.

The only module that uses ``st.cache_*``: pages stay thin and call what is here or ``simclr_core``.
Every engine call goes through :func:`attempt`, so a user's mistake becomes a message, never a traceback.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from pages import figures
from simclr_core.config import PRESETS, AugmentationConfig, ConfigError, TrainConfig, cpu_demo_config

log = logging.getLogger("simclr_studio")
T = TypeVar("T")

STATE_ICONS = {  # Material icons: rendered by st.markdown and headings, independent of emoji fonts
    "queued": ":material/schedule:",
    "running": ":green[:material/directions_run:]",
    "finished": ":blue[:material/check_circle:]",
    "stopped": ":orange[:material/stop_circle:]",
    "failed": ":red[:material/error:]",
    "interrupted": ":orange[:material/warning:]",
}
DEFAULT_DATA = "shapes:train"

# ---------------------------------------------------------------------------------------------- errors


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is written for the user (ValueError covers Dataset/Config/CheckpointError)."""
    return (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, OSError)


def describe_error(err: BaseException) -> str:
    if isinstance(err, user_errors()):
        return str(err) or type(err).__name__
    return f"{type(err).__name__}: {err}"


def attempt(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call an engine function; on failure show what went wrong in the page and return None."""
    try:
        return fn(*args, **kwargs)
    except user_errors() as err:
        st.error(f"Could not {what}: {describe_error(err)}", icon=":material/error:")
    except Exception as err:  # anything else is a bug: say so briefly, log the traceback for developers
        log.exception("while trying to %s", what)
        st.error(
            f"Could not {what}: unexpected {type(err).__name__}: {err}. Details are in the terminal log.",
            icon=":material/bug_report:",
        )
    return None


# ---------------------------------------------------------------------------------------------- state


def runs_root() -> Path:
    return Path(st.session_state.get("runs_root") or os.environ.get("SIMCLR_STUDIO_RUNS") or "runs").expanduser()


def aug_key(name: str) -> str:
    return f"aug.{name}"


def train_key(name: str) -> str:
    return f"train.{name}"


TRAIN_FIELDS = [f.name for f in fields(TrainConfig) if f.name != "aug"]
AUG_FIELDS = [f.name for f in fields(AugmentationConfig)]


def _aug_widget_values(cfg: AugmentationConfig) -> dict[str, Any]:
    out = {}
    for name, value in cfg.to_dict().items():
        if name in ("mean", "std"):
            value = ", ".join(f"{v:g}" for v in value)
        elif isinstance(value, list):
            value = tuple(float(v) for v in value)
        out[aug_key(name)] = value
    return out


def set_augmentation(cfg: AugmentationConfig) -> None:
    """Put a config into the Augment page's controls (before they are drawn: callbacks, init)."""
    st.session_state.update(_aug_widget_values(cfg))


def current_augmentation() -> AugmentationConfig:
    """The Augment controls as a validated config; raises ConfigError with the reason."""
    ss = st.session_state
    data: dict[str, Any] = {}
    for name in AUG_FIELDS:
        value = ss.get(aug_key(name))
        if name in ("mean", "std"):
            try:
                value = [float(v) for v in str(value).replace(";", ",").split(",") if v.strip()]
            except ValueError:
                raise ConfigError(f"{name} must be three numbers separated by commas, got {value!r}") from None
        data[name] = value
    return AugmentationConfig.from_dict(data)


def set_training(cfg: TrainConfig) -> None:
    values = cfg.to_dict()
    for name in TRAIN_FIELDS:
        st.session_state[train_key(name)] = values[name]
    st.session_state["train_aug"] = cfg.aug.to_dict()


def current_training() -> TrainConfig:
    """The Train form as a validated config (augmentation from "use for training" or the tutorial's)."""
    ss = st.session_state
    data = {name: ss.get(train_key(name)) for name in TRAIN_FIELDS}
    data["aug"] = dict(ss.get("train_aug") or AugmentationConfig().to_dict())
    return TrainConfig.from_dict(data).validate()


def cpu_friendly(data: str = "shapes:unlabeled") -> TrainConfig:
    """The engine's CPU demo settings (see ``simclr_core.config.cpu_demo_config``)."""
    return cpu_demo_config(data)


def init_state() -> None:
    """Defaults for every shared key; a shared link (``?setup=``) overrides them once per session."""
    ss = st.session_state
    ss.setdefault("runs_root", os.environ.get("SIMCLR_STUDIO_RUNS") or "runs")
    ss.setdefault("data_spec", os.environ.get("SIMCLR_STUDIO_DEFAULT_DATA") or DEFAULT_DATA)
    ss.setdefault("run_id", None)
    ss.setdefault("aug.preset", "tutorial")
    for key, value in _aug_widget_values(PRESETS["tutorial"]).items():
        ss.setdefault(key, value)
    ss.setdefault("train_aug", AugmentationConfig().to_dict())
    for name, value in TrainConfig().to_dict().items():
        if name != "aug":
            ss.setdefault(train_key(name), value)
    # Widget values vanish when their page is not shown; re-assigning keeps them across page switches.
    for key in list(ss.keys()):
        if isinstance(key, str) and key.startswith(("aug.", "train.", "keep.")):
            ss[key] = ss[key]
    # Apply a shared link whenever it names a setup not yet applied in this session (a second link
    # pasted into the same tab must win too), but not again on every rerun.
    encoded = st.query_params.get("setup")
    if encoded and ss.get("_setup_applied") != encoded:
        ss["_setup_applied"] = encoded
        try:
            apply_setup(decode_setup(encoded))
            ss["_notice"] = "Loaded the augmentation and training setup from the shared link."
        except (ValueError, TypeError) as err:
            ss["_notice_error"] = f"The shared link's setup could not be read: {err}"


# ---------------------------------------------------------------------------------------------- routing


def ensure_routed(page_file: str) -> None:
    """Call first in every page. A page opened directly (a shared link to /augment on a freshly started
    server, or streamlit.testing) is run by Streamlit on its own, without app.py: run app.py in its place,
    which draws the sidebar and runs this page through the real navigation, then stop this copy."""
    if st.session_state.pop("_routed", False):
        return
    app = Path(page_file).resolve().parents[1] / "app.py"
    code = compile(app.read_text(), str(app), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(app)})  # noqa: S102 - our own entry script
    st.stop()


# ---------------------------------------------------------------------------------------------- sharing


def setup_dict() -> dict[str, Any]:
    """The current augmentation + training setup (only what differs from defaults, to keep links short)."""
    aug = current_augmentation().to_dict()
    train = current_training().to_dict()
    train.pop("aug", None)
    base_aug, base_train = AugmentationConfig().to_dict(), TrainConfig().to_dict()
    return {
        "aug": {k: v for k, v in aug.items() if base_aug[k] != v},
        "train": {k: v for k, v in train.items() if base_train[k] != v},
        "train_aug": {k: v for k, v in dict(st.session_state.get("train_aug") or {}).items() if base_aug.get(k) != v},
    }


def encode_setup(setup: dict[str, Any]) -> str:
    raw = zlib.compress(json.dumps(setup, separators=(",", ":")).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_setup(text: str) -> dict[str, Any]:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        data = json.loads(raw)
    except (ValueError, zlib.error) as err:
        raise ConfigError(f"not a SimCLR Studio setup ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError("not a SimCLR Studio setup (expected an object)")
    return data


def apply_setup(setup: dict[str, Any]) -> None:
    """Validate a whole setup first, then put it into the controls: a bad file changes nothing."""
    unknown = sorted(set(setup) - {"aug", "train", "train_aug"})
    if unknown:
        raise ConfigError(f"unknown setup section(s): {', '.join(unknown)}; expected aug, train, train_aug")
    aug = AugmentationConfig.from_dict({**AugmentationConfig().to_dict(), **dict(setup.get("aug") or {})})
    train_aug = dict(setup.get("train_aug") or {})
    train = TrainConfig.from_dict(
        {
            **TrainConfig().to_dict(),
            **dict(setup.get("train") or {}),
            "aug": {**AugmentationConfig().to_dict(), **train_aug},
        }
    ).validate()
    set_augmentation(aug)
    set_training(train)


def share_link_query() -> str:
    return "?setup=" + encode_setup(setup_dict())


# ---------------------------------------------------------------------------------------------- sidebar


def notices() -> None:
    ss = st.session_state
    if ss.get("_notice"):
        st.toast(ss.pop("_notice"), icon=":material/link:")
    if ss.get("_notice_error"):
        st.error(ss.pop("_notice_error"))


def sidebar() -> None:
    """Runs folder, dataset and run pickers shared by every page, plus the running job."""
    with st.sidebar:
        job = jobs().training_job()
        if job is not None and job.alive():
            st.fragment(_training_badge, run_every=2.0)(job.name)
        st.selectbox(
            "Dataset",
            dataset_choices(),
            key="data_spec",
            accept_new_options=True,
            help="Built-in `shapes[:split]`, `cifar10`/`stl10` (downloaded), or a folder / .zip / .tar.gz "
            "path. Type a spec or path to use another one.",
        )
        runs = run_names()
        if st.session_state.get("_select_run") in runs:
            st.session_state["run_id"] = st.session_state.pop("_select_run")
        if st.session_state.get("run_id") not in runs:
            st.session_state["run_id"] = runs[0] if runs else None
        st.selectbox(
            "Run",
            runs,
            key="run_id",
            format_func=run_label,
            placeholder="no runs yet",
            help="The run shown on the Train, Embeddings and Probe pages.",
        )
        with st.expander("Settings"):
            st.text_input("Runs folder", key="runs_root", help="Where runs are stored; created on the first run.")
            st.caption(f"Data cache: `{data_root()}`")
    notices()


def _training_badge(name: str) -> None:
    """The background job's badge; polls while it runs, so every page notices when it ends."""
    job = jobs().training_job()
    if job is None or not job.alive():
        st.rerun(scope="app")  # refresh the run's state in the picker and the page's buttons
    st.info(f"Training **{name}** in the background.", icon=":material/model_training:")


def dataset_choices() -> list[str]:
    from simclr_core import data as data_mod

    found = attempt("list the datasets", data_mod.available_datasets, data_root()) or []
    specs = [getattr(d, "spec", d) for d in found]
    specs = [str(s) for s in specs]
    for default in ("shapes:train", "shapes:test", "shapes:unlabeled"):
        if default not in specs:
            specs.append(default)
    current = st.session_state.get("data_spec")
    if current and current not in specs:
        specs.insert(0, current)
    return specs


def data_root() -> Path:
    from simclr_core.features import data_root as root

    return root()


# ---------------------------------------------------------------------------------------------- runs


def list_runs() -> list[Any]:
    from simclr_core import store

    root = runs_root()
    if not root.is_dir():
        return []
    return attempt("list the runs", store.list_runs, root) or []


def run_names() -> list[str]:
    return [r.path.name for r in list_runs()]


def open_run(name: str | None) -> Any:
    if not name:
        return None
    from simclr_core import store

    path = runs_root() / name
    if not path.is_dir():
        return None
    return attempt(f"open run {name}", store.Run, path)


def run_state(run: Any) -> dict[str, Any]:
    status = attempt(f"read the status of {run.path.name}", run.status) or {}
    return status if isinstance(status, dict) else dict(vars(status))


def run_label(name: str | None) -> str:
    if not name:
        return "—"
    run = open_run(name)
    state = run_state(run).get("state", "?") if run is not None else "?"
    return f"{name} · {state}"


# ---------------------------------------------------------------------------------------------- device


@st.cache_resource
def device_summary() -> dict[str, Any]:
    """What the engine will train on: GPU name and memory, else CPU threads."""
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            kind="cuda",
            name=props.name,
            memory_gb=props.total_memory / 2**30,
            count=torch.cuda.device_count(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    else:
        name = "CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        info.update(kind="cpu", name=name)
    return info


# ---------------------------------------------------------------------------------------------- caches


@st.cache_resource(max_entries=6, show_spinner=False)
def dataset(spec: str, image_size: int) -> Any:
    """A decoded ImageSet, shared by every session (uint8 arrays, memory-mapped when large)."""
    from simclr_core.data import load_dataset

    return load_dataset(spec, image_size=image_size)


def to_hwc(image: Any) -> np.ndarray:
    """(3, H, W) uint8 tensor/array -> (H, W, 3) uint8 array for st.image."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


# ---------------------------------------------------------------------------------------------- jobs


@dataclass
class Task:
    """A background computation (probe sweep, embeddings) with progress other reruns can read."""

    name: str
    kind: str
    progress: float = 0.0
    message: str = "starting"
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    thread: threading.Thread | None = None

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def report(self, fraction: float, message: str = "") -> None:
        self.progress = float(min(max(fraction, 0.0), 1.0))
        if message:
            self.message = message


_STARTING = object()  # a job is being set up (data loading) and holds the slot


class Jobs:
    """This server's background work, shared by every browser tab (held by st.cache_resource).

    One training job at a time (SimCLR or the supervised baseline: they compete for the same
    device); evaluation tasks run beside it, one per kind.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._training: Any = None
        self._training_name = ""
        self.tasks: dict[str, Task] = {}

    def rename(self, name: str) -> None:
        self._training_name = name

    def training_job(self) -> Any:
        job = self._training
        return _JobView(job, self._training_name) if job is not None and job is not _STARTING else None

    def start_training(self, name: str, factory: Callable[[], Any]) -> Any:
        """Start a job made by ``factory`` unless one is running; raises RuntimeError naming the running one.

        The slot is reserved under the lock, then ``factory`` (which loads data: seconds) runs outside it.
        """
        with self.lock:
            if self._training is _STARTING or (self._training is not None and _job_alive(self._training)):
                raise RuntimeError(
                    f"'{self._training_name}' is still training. One job runs at a time on this server: "
                    "stop it on the Train page, or wait until it finishes."
                )
            self._training, self._training_name = _STARTING, name
        try:
            job = factory()
        except BaseException:
            with self.lock:
                self._training, self._training_name = None, ""
            raise
        with self.lock:
            self._training = job
        return job

    def start_task(self, kind: str, name: str, work: Callable[[Task], Any]) -> Task:
        """Run ``work(task)`` in a thread; refused while a task of the same kind runs."""
        with self.lock:
            current = self.tasks.get(kind)
            if current is not None and current.alive():
                raise RuntimeError(f"{current.name} is still running ({current.progress:.0%}); wait for it to finish.")
            task = Task(name=name, kind=kind)

            def body() -> None:
                try:
                    task.result = work(task)
                    task.report(1.0, "done")
                except Exception as err:  # shown in the page; a failed task never takes the server down
                    log.error("background task %s failed:\n%s", name, traceback.format_exc())
                    task.error = describe_error(err)
                    task.message = "failed"

            task.thread = threading.Thread(target=body, name=f"simclr-studio-{kind}", daemon=True)
            self.tasks[kind] = task
            task.thread.start()
            return task


def _job_alive(job: Any) -> bool:
    for attr in ("is_alive", "alive", "running"):
        value = getattr(job, attr, None)
        if callable(value):
            return bool(value())
        if isinstance(value, bool):
            return value
    return False


@dataclass
class _JobView:
    job: Any
    name: str

    def alive(self) -> bool:
        return _job_alive(self.job)


@st.cache_resource
def jobs() -> Jobs:
    return Jobs()


# ---------------------------------------------------------------------------------------------- warm-up


@st.cache_resource
def _warm_up_thread() -> threading.Thread | None:
    try:
        from simclr_core import augment_cpu, projection
    except ImportError:
        return None

    def warm_up() -> None:
        _quiet(augment_cpu.warm_up, "the first preview")()
        _quiet(projection.warm_up_umap, "UMAP on first use")()

    thread = threading.Thread(target=warm_up, name="simclr-studio-warm-up", daemon=True)
    thread.start()
    return thread


def _quiet(fn: Callable[[], Any], waits: str) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            log.warning("Warm-up failed; %s will compile instead:\n%s", waits, traceback.format_exc())

    return run


def start_warm_up() -> None:
    """Load (or compile, once per machine) the CPU augmentation kernel and UMAP's numba code in the background."""
    _warm_up_thread()


def umap_ready() -> bool:
    try:
        from simclr_core import projection

        return bool(projection.umap_ready())
    except (ImportError, AttributeError):
        return True


# ---------------------------------------------------------------------------------------------- augment

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@st.cache_data(max_entries=32, show_spinner=False)
def _decode_upload(data: bytes, size: int) -> np.ndarray:
    from simclr_core.data.decode import decode_image

    return decode_image(data, size)


def preview_images(source: str, n: int, size: int, pick: int) -> Any:
    """(n, 3, size, size) uint8 images for the Augment page, from the sidebar's dataset or uploads; None if none."""
    import torch

    if source == "Upload":
        files = st.session_state.get("upload.aug_images") or []
        tiles, skipped = [], []
        for f in files:
            try:
                tiles.append(_decode_upload(f.getvalue(), size))
            except Exception as err:  # DecodeError and Pillow's many error types: report and skip the file
                skipped.append(f"{f.name} ({err or type(err).__name__})")
        if skipped:
            st.warning("Skipped files that are not readable images: " + "; ".join(skipped), icon=":material/warning:")
        if not tiles:
            return None
        return torch.from_numpy(np.stack(tiles[:n])).permute(0, 3, 1, 2).contiguous()
    spec = str(st.session_state.get("data_spec") or DEFAULT_DATA)
    with st.spinner(f"Loading {spec} ..."):
        data = attempt(f"load the dataset {spec!r}", dataset, spec, size)
    if data is None or len(data) == 0:
        return None
    gen = torch.Generator().manual_seed(int(pick))
    idx = torch.randperm(len(data), generator=gen)[:n] if pick else torch.arange(min(n, len(data)))
    return data.images[idx].contiguous()


def stage_notes(params: dict[str, Any]) -> dict[str, str]:
    """One line per step-through stage saying what was drawn for it."""
    c = params["crop"]
    jf = params["jitter_factors"]
    jitter = (
        ("order " + " → ".join(params["jitter_order"]) + "; " + ", ".join(f"{k[:3]} {v:.2f}" for k, v in jf.items()))
        if params["jitter"]
        else "not drawn"
    )
    return {
        "original": "input image",
        "flip": "flipped" if params["flip"] else "not flipped",
        "crop": f"{c['width']}×{c['height']} px at ({c['left']}, {c['top']})",
        "colour jitter": jitter,
        "grayscale": "converted" if params["grayscale"] else "not drawn",
        "blur": f"sigma {params['sigma']:.2f}" if params["blur"] else "not drawn",
    }


def use_for_training(cfg: AugmentationConfig) -> None:
    ss = st.session_state
    ss["train_aug"] = cfg.to_dict()


def python_snippet(cfg: AugmentationConfig) -> str:
    """Code that reproduces this preview and trains with it, outside the dashboard."""
    base = AugmentationConfig().to_dict()
    changed = [f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in cfg.to_dict().items() if base[k] != v]
    aug = (
        ("aug = AugmentationConfig(\n    " + ",\n    ".join(changed) + ",\n).validate()")
        if changed
        else "aug = AugmentationConfig()  # the tutorial's pipeline"
    )
    spec = st.session_state.get("data_spec") or DEFAULT_DATA
    return (
        "from simclr_core.augment import make_views\n"
        "from simclr_core.config import AugmentationConfig, TrainConfig\n"
        "from simclr_core.data import load_dataset\n\n"
        f"{aug}\n"
        f"images = load_dataset({spec!r}, image_size=96).images[:6]  # (6, 3, 96, 96) uint8\n"
        "views = make_views(images, aug, n_views=2)  # (12, 3, S, S) float: all first views, then all second\n"
        "config = TrainConfig(aug=aug)  # or: python -m simclr_core train --aug augmentation.json\n"
    )


# ---------------------------------------------------------------------------------------------- home tables


def dataset_rows() -> list[dict[str, Any]]:
    """The datasets Home lists: whatever the data layer reports, as plain rows."""
    from simclr_core import data as data_mod

    found = attempt("list the datasets", data_mod.available_datasets, data_root()) or []
    rows = []
    for item in found:
        row = dict(item) if isinstance(item, dict) else {k: v for k, v in vars(item).items() if not k.startswith("_")}
        sizes = row.get("cached_sizes") or []
        rows.append(
            {
                "spec": str(row.get("spec", "")),
                "status": str(row.get("status", "")),
                "labelled": bool(row.get("labelled")),
                "images": row.get("images"),
                "classes": row.get("classes"),
                "decoded at": ", ".join(f"{s}px" for s in sizes),
                "about": str(row.get("description", "")),
            }
        )
    return rows


def run_rows() -> list[dict[str, Any]]:
    rows = []
    for run in list_runs():
        status = run_state(run)
        cfg = run.train_config
        rows.append(
            {
                "run": run.id,
                "kind": run.kind,
                "state": status.get("state", "?"),
                "epoch": status.get("epoch"),
                "progress": float(status.get("progress") or 0.0),
                "data": cfg.get("data"),
                "message": status.get("message") or "",
                "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(status["created_at"]))
                if isinstance(status.get("created_at"), int | float)
                else "",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- training

COMPARE_METRICS = [
    "train_loss",
    "knn_acc",
    "val_acc_top1",
    "val_acc_top5",
    "val_loss",
    "train_acc_top1",
    "train_acc_top5",
    "train_acc_mean_pos",
    "val_acc_mean_pos",
    "lr",
    "views_per_s",
]


def select_run(run_id: str) -> None:
    """Select a run in the sidebar on the next rerun (its widget already exists in this one)."""
    st.session_state["_select_run"] = run_id


def start_training(cfg: TrainConfig, name: str) -> Any:
    """Start a SimCLR run in the background (one per server); shows why when it cannot start."""
    from simclr_core.train import TrainingJob

    return _start_job(lambda: TrainingJob(cfg, runs_root(), name=name), what=f"start the run {name!r}")


def resume_training(run_id: str, overrides: dict[str, Any] | None = None) -> Any:
    from simclr_core.train import TrainingJob

    path = runs_root() / run_id
    return _start_job(lambda: TrainingJob(resume=path, overrides=overrides or None), what=f"resume {run_id}")


def _start_job(factory: Callable[[], Any], what: str) -> Any:
    registry = jobs()

    def make() -> Any:
        with st.spinner("Checking the settings and loading the data ..."):
            return factory().start()

    job = attempt(what, registry.start_training, what, make)
    if job is not None and getattr(job, "run", None) is not None:
        registry.rename(job.run.id)
        if job.run.kind == "simclr":
            select_run(job.run.id)
    return job


def stop_training() -> None:
    job = jobs().training_job()
    if job is not None:
        job.job.stop()


def current_run() -> Any:
    return open_run(st.session_state.get("run_id"))


def aug_summary(aug: dict[str, Any]) -> str:
    if not aug:
        return "The tutorial's augmentations."
    cfg = AugmentationConfig.from_dict(aug)
    for name, preset in PRESETS.items():
        if {**preset.to_dict(), "crop_size": cfg.crop_size} == cfg.to_dict():
            return f"Preset **{name}**, crop to {cfg.crop_size} px."
    return (
        f"Custom: crop {cfg.crop_size} px, scale {cfg.crop_scale[0]:g}–{cfg.crop_scale[1]:g}, "
        f"jitter p={cfg.jitter_p:g} ({cfg.jitter_brightness:g}/{cfg.jitter_contrast:g}/"
        f"{cfg.jitter_saturation:g}/{cfg.jitter_hue:g}), gray p={cfg.grayscale_p:g}, blur p={cfg.blur_p:g}."
    )


def metric_rows(run: Any) -> list[dict[str, Any]]:
    """All metric rows of a run, read incrementally (only new bytes of metrics.jsonl on each poll)."""
    cache: dict[str, tuple[int, float, list[dict[str, Any]]]] = st.session_state.setdefault("_metrics_cache", {})
    key = str(run.path)
    offset, size, rows = cache.get(key, (0, 0.0, []))
    try:
        now_size = run.metrics_path.stat().st_size
    except OSError:
        now_size = 0
    if now_size < offset:  # truncated by a resume: read again from the start
        offset, rows = 0, []
    new, offset = run.read_metrics(offset)
    rows = rows + new
    cache[key] = (offset, now_size, rows)
    return rows


def compare_figure(run_ids: list[str], metric: str, x: str) -> Any:
    runs = {run_id: metric_rows(run) for run_id in run_ids if (run := open_run(run_id)) is not None}
    return figures.compare_figure(runs, metric, x)


def _eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m {seconds % 60:02d}s"
    )


def _last(rows: list[dict[str, Any]], metric: str) -> Any:
    for row in reversed(rows):
        if isinstance(row.get(metric), int | float):
            return row[metric]
    return None


@st.fragment(run_every=1.5)
def live_run(run_id: str) -> None:
    """Status, controls and curves of one run; reruns alone every 1.5 s while the page is open."""
    run = open_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} is gone from {runs_root()}.")
        return
    status = run_state(run)
    state = status.get("state", "?")
    job = jobs().training_job()
    ours = job is not None and job.name == run.id and job.alive()
    head, buttons = st.columns([4, 1.4], vertical_alignment="center")
    head.markdown(f"### {STATE_ICONS.get(state, '')} {run.id}")
    if status.get("message"):
        head.caption(str(status["message"]))
    rows = metric_rows(run)
    with buttons:
        if ours and state in ("queued", "running") and job.job.stop_event.is_set():
            st.button(
                "Stopping ...",
                icon=":material/hourglass_top:",
                key="btn.stopping",
                width="stretch",
                disabled=True,
                help="The current step finishes and last.ckpt is saved; then Resume appears.",
            )
        elif ours and state in ("queued", "running"):
            # on_click runs before the fragment's next rerun, so a click during a live refresh is not lost
            st.button(
                "Stop",
                icon=":material/stop:",
                key="btn.stop",
                width="stretch",
                on_click=job.job.stop,
                help="Finishes the current step, saves last.ckpt; resume later.",
            )
        elif state in ("stopped", "interrupted", "failed") and run.kind == "simclr":
            busy = job is not None and job.alive()
            clicked = st.button(
                "Resume",
                icon=":material/play_arrow:",
                key="btn.resume",
                width="stretch",
                disabled=busy,
                help="Another job is running." if busy else "Continue from last.ckpt.",
            )
            if clicked and resume_training(run.id) is not None:
                st.rerun(scope="app")
    progress = float(status.get("progress") or 0.0)
    total = status.get("total_steps")
    st.progress(
        min(max(progress, 0.0), 1.0),
        text=f"epoch {status.get('epoch', 0)}"
        + (f"/{status['epochs']}" if status.get("epochs") else "")
        + f" · step {status.get('step', 0)}"
        + (f"/{total}" if total else "")
        + f" · {progress:.0%}",
    )
    m = st.columns(5)
    views = _last(rows, "views_per_s")
    knn = _last(rows, "knn_acc")
    loss = _last(rows, "train_loss")
    m[0].metric("views / s", f"{views:,.0f}" if views else "—")
    m[1].metric("ETA", _eta(status.get("eta_s")) if state == "running" else "—")
    m[2].metric("train loss", f"{loss:.3f}" if loss is not None else "—")
    m[3].metric("kNN accuracy", f"{knn:.1%}" if knn is not None else "—")
    m[4].metric("points logged", f"{len(rows)}")
    if rows:
        st.plotly_chart(
            figures.curves_figure(rows), width="stretch", key="chart.curves", config={"displayModeBar": False}
        )
    elif state in ("queued", "running"):
        st.caption("Waiting for the first step ... (the first batch includes model set-up)")
    was = st.session_state.get("_last_state", {}).get(run_id)
    st.session_state.setdefault("_last_state", {})[run_id] = state
    if was in ("queued", "running") and state not in ("queued", "running"):
        st.rerun(scope="app")  # the job ended: refresh the sidebar and buttons
    with st.expander("Settings of this run"):
        st.json(run.config, expanded=False)


# ---------------------------------------------------------------------------------------------- embeddings

PROJECTIONS = {
    "UMAP 2-D": ("umap", 2),
    "UMAP 3-D": ("umap", 3),
    "PCA 2-D": ("pca", 2),
    "PCA 3-D": ("pca", 3),
    "t-SNE 2-D": ("tsne", 2),
}


class _Memo:
    """A small LRU of computed results shared by every session (features, maps) so reruns are instant."""

    def __init__(self, size: int = 12) -> None:
        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, key: tuple) -> Any:
        with self.lock:
            if key in self.items:
                self.items[key] = self.items.pop(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.pop(next(iter(self.items)))


@st.cache_resource
def _memo() -> _Memo:
    return _Memo()


def eval_specs(run: Any) -> tuple[str | None, str | None]:
    from simclr_core.features import default_eval_specs

    return attempt("find the labelled splits of this run", default_eval_specs, run.path) or (None, None)


def run_checkpoint(run: Any, which: str) -> Path | None:
    return run.checkpoint(which) or run.checkpoint("best" if which == "last" else "last")


def run_image_size(run: Any) -> int:
    return int(run.train_config.get("image_size") or 96)


def _ckpt_key(ckpt: Path) -> tuple:
    try:
        st_ = Path(ckpt).stat()
        return str(ckpt), st_.st_mtime_ns, st_.st_size
    except OSError:
        return str(ckpt), 0, 0


def feature_set(ckpt: Path, spec: str, which: str) -> Any:
    """Frozen features of a split, with a progress bar the first time (then memory, then the disk cache)."""
    from simclr_core.features import features_for

    key = ("feats", *_ckpt_key(ckpt), spec, which)
    found = _memo().get(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=f"Encoding {spec} with {Path(ckpt).name} ...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Encoding {spec}: {done:,} / {total:,} images")

    fs = attempt(f"encode {spec}", features_for, ckpt, spec, which, progress=progress)
    bar.empty()
    if fs is not None:
        _memo().put(key, fs)
    return fs


def embedding(ckpt: Path, spec: str, which: str, method_label: str, points: int) -> Any:
    from simclr_core.projection import embedding_table

    method, dims = PROJECTIONS[method_label]
    key = ("map", *_ckpt_key(ckpt), spec, which, method, dims, points)
    found = _memo().get(key)
    if found is not None:
        return found
    fs = feature_set(ckpt, spec, which)
    if fs is None:
        return None
    note = " (UMAP compiles on first use: up to a minute)" if method == "umap" and not umap_ready() else ""
    with st.spinner(f"Computing the {method_label} map of {min(points, fs.feats.shape[0]):,} points{note} ..."):
        table = attempt(f"compute the {method_label} map", embedding_table, fs, method, dims, points)
    if table is not None:
        _memo().put(key, table)
    return table


def feature_knn(ckpt: Path, spec: str, which: str) -> float | None:
    """kNN accuracy within the split: even-indexed images are the memory bank, odd ones the queries."""
    from simclr_core.knn import knn_accuracy

    key = ("knn", *_ckpt_key(ckpt), spec, which)
    found = _memo().get(key)
    if found is not None:
        return found
    fs = feature_set(ckpt, spec, which)
    if fs is None or fs.feats.shape[0] < 4:
        return None
    acc = attempt(
        "compute the kNN accuracy",
        knn_accuracy,
        fs.feats[0::2],
        fs.labels[0::2],
        fs.feats[1::2],
        fs.labels[1::2],
        k=20,
        num_classes=len(fs.classes) or None,
    )
    if acc is not None:
        _memo().put(key, acc)
    return acc


def selected_indices(event: Any) -> list[int]:
    """Dataset indices of the points selected on the map (box, lasso or click)."""
    try:
        points = event.selection.points  # type: ignore[union-attr]
    except AttributeError:
        return []
    out = []
    for p in points or []:
        value = p.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int | float):
            out.append(int(value))
    return list(dict.fromkeys(out))


def class_of(fs: Any, index: int) -> str:
    label = int(fs.labels[index])
    return fs.classes[label] if 0 <= label < len(fs.classes) else "unlabelled"


def neighbours(fs: Any, index: int, k: int) -> tuple[list[int], list[float]]:
    from simclr_core.projection import nearest_neighbours

    idx, sims = nearest_neighbours(fs.feats, index, k)
    return [int(i) for i in idx], [float(s) for s in sims]


def thumbnail_grid(
    images: Any,
    indices: list[int],
    classes: list[str],
    labels: Any,
    similarities: list[float] | None = None,
    per_row: int = 12,
) -> None:
    if images is None:
        return
    for start in range(0, len(indices), per_row):
        cols = st.columns(per_row)
        for j, i in enumerate(indices[start : start + per_row]):
            label = int(labels[i])
            name = classes[label] if 0 <= label < len(classes) else ""
            caption = name + (f" · {similarities[start + j]:.2f}" if similarities is not None else "")
            cols[j].image(to_hwc(images.images[i]), caption=caption, width="stretch")


# ---------------------------------------------------------------------------------------------- probe

PROBE_SIZES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
_STAGES = {
    "encoding the training split": 0.05,
    "encoding the test split": 0.3,
    "probing": 0.5,
    "random-init baseline": 0.7,
}


def probe_candidates() -> list[str]:
    """SimCLR runs that have a checkpoint (the only ones a probe can read)."""
    return [r.id for r in list_runs() if r.kind == "simclr" and (r.checkpoint("last") or r.checkpoint("best"))]


def start_probe(
    run_ids: list[str], sizes: list[int], repeats: int, which: str, ckpt: str, train: str | None, test: str | None
) -> Task | None:
    """Probe each run in a background thread; each result is written to its run's probe.json."""
    from simclr_core.features import default_eval_specs, resolve_source
    from simclr_core.probe import probe_report
    from simclr_core.store import Run

    root = runs_root()

    def work(task: Task) -> list[str]:
        done = []
        for i, run_id in enumerate(run_ids):
            source, run_dir = resolve_source(run=root / run_id, which_checkpoint=ckpt)
            tr_default, te_default = default_eval_specs(run_dir)
            tr, te = train or tr_default, test or te_default
            if not tr or not te:
                raise ConfigError(
                    f"{run_id}: its data has no labelled train/test split; give both specs under *Labelled data*"
                )

            def say(msg: str, i: int = i, run_id: str = run_id) -> None:
                task.report((i + _STAGES.get(msg, 0.5)) / len(run_ids), f"{run_id}: {msg}")

            report = probe_report(source, tr, te, sizes, repeats, which, progress=say)
            Run(run_dir).write_json("probe.json", report)
            done.append(run_id)
        return done

    label = ", ".join(run_ids) if len(run_ids) <= 2 else f"{len(run_ids)} runs"
    task = attempt("start the probe", jobs().start_task, "probe", f"Probe of {label}", work)
    return task


@st.fragment(run_every=1.0)
def probe_progress() -> None:
    task = jobs().tasks.get("probe")
    if task is None:
        return
    seen = st.session_state.setdefault("_probe_seen", set())
    if task.alive():
        st.progress(task.progress, text=f"{task.name}: {task.message}")
    elif id(task) not in seen:
        seen.add(id(task))
        if task.error:
            st.session_state["_probe_error"] = f"{task.name} failed: {task.error}"
        st.rerun(scope="app")  # the results below come from the files just written
    if st.session_state.get("_probe_error") and not task.alive():
        st.error(st.session_state["_probe_error"])


def _probe_report(run_id: str) -> dict[str, Any] | None:
    run = open_run(run_id)
    report = run.read_json("probe.json") if run is not None else None
    return report if isinstance(report, dict) and report.get("table") else None


def _supervised_points(train_data: str) -> list[dict[str, Any]]:
    points = []
    for run in list_runs():
        if run.kind != "supervised" or run.train_config.get("train_data") != train_data:
            continue
        results = run.read_json("results.json") or {}
        for r in results.get("results") or []:
            if isinstance(r.get("test_acc"), int | float):
                points.append({"run": run.id, **r})
    return points


def probe_results(run_ids: list[str]) -> None:
    """The figure, table and CSV of the chosen runs' probe.json (instant: nothing is recomputed)."""
    reports = {rid: rep for rid in run_ids if (rep := _probe_report(rid)) is not None}
    missing = [rid for rid in run_ids if rid not in reports]
    if missing:
        st.caption("No probe results yet for " + ", ".join(missing) + ": press *Run probe*.")
    if not reports:
        return
    supervised = _supervised_points(next(iter(reports.values())).get("train_data", ""))
    st.plotly_chart(figures.probe_figure(reports, supervised), width="stretch", key="chart.probe")
    rows = figures.probe_table(reports)
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={k: pct for k in ("probe test acc", "± std", "probe train acc", "kNN acc", "random-init probe")},
    )
    import pandas as pd

    st.download_button(
        "Download CSV",
        pd.DataFrame(rows).to_csv(index=False),
        file_name="probe.csv",
        mime="text/csv",
        icon=":material/download:",
        key="btn.probe_csv",
    )
    capped = [rid for rid, rep in reports.items() if rep.get("capped")]
    if capped:
        st.caption(f"Sizes were capped at what the training split holds for: {', '.join(capped)}.")


def start_supervised(run_id: str, size: int, minutes: float, train: str | None, test: str | None) -> Any:
    """The supervised baseline for a run's data, in the server's one training slot."""
    from simclr_core.features import default_eval_specs
    from simclr_core.supervised import SupervisedConfig, SupervisedJob

    run = open_run(run_id)
    if run is None:
        return None
    tr_default, te_default = default_eval_specs(run.path)
    cfg = run.train_config
    sup = SupervisedConfig(
        train_data=train or tr_default or "shapes:train",
        test_data=test or te_default or "shapes:test",
        sizes=[int(size)],
        image_size=int(cfg.get("image_size") or 96),
        backbone=cfg.get("backbone", "resnet18"),
        small_input=bool(cfg.get("small_input")),
        max_minutes=float(minutes),
    )
    return _start_job(
        lambda: SupervisedJob(sup, runs_root(), name=f"supervised-{size}"), what="start the supervised baseline"
    )


@st.fragment(run_every=1.5)
def supervised_progress() -> None:
    job = jobs().training_job()
    if job is None or getattr(job.job, "run", None) is None or job.job.run.kind != "supervised":
        return
    status = run_state(job.job.run)
    state = status.get("state", "?")
    if job.alive():
        st.progress(
            float(status.get("progress") or 0.0),
            text=f"{job.name}: {state}, ETA {_eta(status.get('eta_s'))} {status.get('message') or ''}",
        )
        if st.button("Stop baseline", icon=":material/stop:", key="btn.stop_supervised"):
            job.job.stop()
    else:
        st.caption(f"{STATE_ICONS.get(state, '')} {job.name}: {state}. {status.get('message') or ''}")
        seen = st.session_state.setdefault("_sup_seen", set())
        if job.name not in seen:
            seen.add(job.name)
            st.rerun(scope="app")


def uploaded_checkpoint(upload: Any) -> Path | None:
    """Save an uploaded checkpoint under the data root (named by its content) once it loads; else say why."""
    import hashlib

    from simclr_core.model import load_checkpoint

    data = upload.getvalue()
    folder = data_root() / "uploads"
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.ckpt"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        if attempt(f"use {upload.name}", load_checkpoint, tmp) is None:
            tmp.unlink(missing_ok=True)
            return None
        tmp.replace(path)
    return path
