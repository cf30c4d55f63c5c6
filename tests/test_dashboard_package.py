"""The dashboard's layout: pages/ holds only the five screens, and what they import first does not load torch.

Streamlit can run a page before app.py (a link to a page on a freshly started server); app.py's
``configure_process()`` must still come before torch loads, so nothing a page or app.py imports
at its top may import torch. Budget: ~5 s (one interpreter importing streamlit).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["augment", "embeddings", "home", "probe", "train"]


def test_pages_holds_only_the_five_pages() -> None:
    assert sorted(p.stem for p in (ROOT / "pages").glob("*.py")) == PAGES
    assert not [p for p in (ROOT / "pages").iterdir() if p.is_dir() and p.name != "__pycache__"]


def _top_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            out += [f"{node.module}.{a.name}" if node.module == "dashboard" else str(node.module) for a in node.names]
    return out


def test_what_app_and_pages_import_first_does_not_load_torch() -> None:
    modules = sorted(
        {m for f in [ROOT / "app.py", *(ROOT / "pages").glob("*.py")] for m in _top_imports(f)}
        | {f"dashboard.{p.stem}" for p in (ROOT / "dashboard").glob("*.py") if p.stem != "__init__"}
    )
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in ('torch', 'numba', 'pytorch_lightning') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert "dashboard.services" in modules and "simclr_core.config" in modules
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
