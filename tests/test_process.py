"""Process-wide settings: importing the engine changes nothing; ``configure_process`` applies them, once.

Each check runs in a fresh interpreter (this one has long been configured by conftest and other tests).
Budget: ~15 s (three interpreters that import torch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_EVERYTHING = """
import ctypes, importlib, json, os, pkgutil, sys

fork_hooks, libs = [], []
real_fork_hook, real_cdll = os.register_at_fork, ctypes.CDLL

def caller():
    return sys._getframe(2).f_globals.get("__name__", "")

def record_fork_hook(**kw):
    fork_hooks.append(caller())
    return real_fork_hook(**kw)

class RecordingCDLL(real_cdll):
    def __init__(self, name, *args, **kw):
        libs.append((caller(), str(name)))
        super().__init__(name, *args, **kw)

os.register_at_fork, ctypes.CDLL = record_fork_hook, RecordingCDLL
# Libraries the engine imports set variables of their own (Lightning, TorchInductor): not ours.
import numba, numpy, PIL, pytorch_lightning, torch, torchvision
env = dict(os.environ)
threads, cudnn = torch.get_num_threads(), torch.backends.cudnn.benchmark

import simclr_core
names = [m.name for m in pkgutil.walk_packages(simclr_core.__path__, "simclr_core.")]
for name in names:
    if name != "simclr_core.__main__":
        importlib.import_module(name)

from simclr_core import augment  # the first CPU apply used to retune glibc's allocator
from simclr_core.config import AugmentationConfig
images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
augment.make_views(images, AugmentationConfig(crop_size=16, blur_kernel=3), n_views=2)

print(json.dumps({
    "modules": len(names),
    "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
    "threads": [threads, torch.get_num_threads()],
    "cudnn": [cudnn, torch.backends.cudnn.benchmark],
    "fork_hooks": [m for m in fork_hooks if m.startswith("simclr_core")],
    "libs": [lib for m, lib in libs if m.startswith("simclr_core")],
}))
"""

CONFIGURE = """
import json, os, sys
from simclr_core.process import configure_process
first = configure_process(interactive=sys.argv[1] == "interactive")
import torch
again = configure_process()
print(json.dumps({"first": first.__dict__, "same": again is first, "env": os.environ.get("OMP_WAIT_POLICY"),
                  "cudnn": torch.backends.cudnn.benchmark}))
"""


def _run(code: str, *args: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SIMCLR_STUDIO_MALLOC_TUNING")}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_engine_changes_nothing_in_the_process() -> None:
    result = _run(IMPORT_EVERYTHING)
    assert result["modules"] > 30  # every module of the package was imported
    assert result["env_changed"] == []
    assert result["threads"][0] == result["threads"][1]
    assert result["cudnn"] == [False, False]
    assert result["fork_hooks"] == [] and result["libs"] == []


def test_configure_process_applies_every_setting_once() -> None:
    result = _run(CONFIGURE, "interactive")
    assert result["same"] and result["env"] == "PASSIVE" and result["cudnn"]
    assert result["first"] == {
        "omp_wait_policy": "PASSIVE",
        "omp_applied": True,
        "malloc_tuned": sys.platform == "linux",
        "cudnn_benchmark": True,
    }


def test_a_compute_only_process_keeps_openmps_default_policy() -> None:
    result = _run(CONFIGURE, "batch")
    assert result["env"] is None and result["first"]["omp_wait_policy"] == "default"
    assert result["first"]["omp_applied"]


def test_a_users_settings_win() -> None:
    result = _run(CONFIGURE, "interactive", OMP_WAIT_POLICY="ACTIVE", SIMCLR_STUDIO_MALLOC_TUNING="0")
    assert result["env"] == "ACTIVE"
    assert result["first"]["omp_applied"] and not result["first"]["malloc_tuned"]
