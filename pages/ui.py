"""Shared pieces of the dashboard: state defaults, the sidebar, caches, background jobs, error display.

With ``evaluation`` (feature sets, maps, probe jobs) the only modules that use ``st.cache_*``: pages
stay thin and call what is here or ``simclr_core``.
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

    return start_job(lambda: TrainingJob(cfg, runs_root(), name=name), what=f"start the run {name!r}")


def resume_training(run_id: str, overrides: dict[str, Any] | None = None) -> Any:
    from simclr_core.train import TrainingJob

    path = runs_root() / run_id
    return start_job(lambda: TrainingJob(resume=path, overrides=overrides or None), what=f"resume {run_id}")


def start_job(factory: Callable[[], Any], what: str) -> Any:
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


def eta_text(seconds: Any) -> str:
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
    m[1].metric("ETA", eta_text(status.get("eta_s")) if state == "running" else "—")
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
