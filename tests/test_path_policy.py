"""Fault injection, paths: what a dashboard visitor may name resolves inside the allowed roots, or is refused alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from simclr_core.path_policy import ROOTS_ENV, PathRefused, allowed_roots, check_spec, inside
from simclr_core.store import create_run, is_run_dir, list_runs


def test_paths_resolve_inside_the_roots_and_links_or_dots_cannot_leave(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "pics").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    assert inside(root / "pics", [root]) == root / "pics"
    assert inside(root / "not-yet", [root]) == root / "not-yet"
    for bad in ("/etc", "~/.ssh", str(root / ".." / ".."), str(root / "escape"), str(root / "escape" / "passwd")):
        with pytest.raises(PathRefused, match="outside the folders this server may read"):
            inside(bad, [root])


def test_the_refusal_is_the_same_whether_or_not_the_path_exists(tmp_path: Path) -> None:
    texts = set()
    for probe in ("/etc", "/etc/passwd", "/no/such/thing", str(Path.home() / ".ssh" / "id_rsa")):
        with pytest.raises(PathRefused) as info:
            inside(probe, [tmp_path])
        texts.add(str(info.value).replace(repr(probe), "PATH"))
    assert len(texts) == 1


def test_roots_are_data_runs_cwd_and_the_operators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "shared"
    monkeypatch.setenv(ROOTS_ENV, f"{extra}{os.pathsep}{tmp_path / 'more'}")
    roots = allowed_roots(tmp_path / "runs")
    assert Path.cwd().resolve() in roots and (tmp_path / "runs") in roots and extra in roots
    assert Path(os.environ["SIMCLR_STUDIO_DATA"]).resolve() in roots
    check_spec(f"{extra}/pics?split=train", roots)
    for builtin in ("shapes:train?n=3", "stl10:unlabeled", "cifar10:test"):
        check_spec(builtin, [])  # built-in sets name no server path
    with pytest.raises(PathRefused):
        check_spec("/etc?split=train", roots)
    with pytest.raises(PathRefused):
        check_spec("./../../etc", [tmp_path])


def test_a_folder_is_a_run_only_with_the_stores_marker(tmp_path: Path) -> None:
    foreign = tmp_path / "dotfiles"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"editor": "vim"}))
    run = create_run(tmp_path, {"data": "shapes"})
    assert is_run_dir(run.path) and not is_run_dir(foreign)
    assert list_runs(tmp_path) == [run]


def test_hidden_components_below_a_root_are_refused_alike(tmp_path: Path) -> None:
    root = tmp_path / ".cache" / "studio"  # a root may itself lie in a hidden folder (the default data root does)
    (root / "pics").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]")
    (root / "pics" / ".env").write_text("TOKEN=1")
    (root / "innocent").symlink_to(root / ".git")  # a visible name resolving into a hidden folder
    assert inside(root / "pics", [root]) == root / "pics"
    assert inside(root, [root]) == root
    texts = set()
    for probe in (
        ".git",
        ".git/config",
        "pics/.env",
        "pics/.nothing-here",
        ".ssh/id_rsa",
        "innocent",
        "innocent/config",
    ):
        with pytest.raises(PathRefused, match="outside the folders this server may read") as info:
            inside(root / probe, [root])
        texts.add(str(info.value).replace(repr(str(root / probe)), "PATH"))
    assert len(texts) == 1  # existing or not, hidden or outside: one message
    with pytest.raises(PathRefused) as outside:
        inside("/etc/passwd", [root])
    assert str(outside.value).replace(repr("/etc/passwd"), "PATH") in texts
    # a hidden folder an operator names as a root is served (only what lies below a root is checked)
    assert inside(root / ".git" / "config", [root, root / ".git"]) == root / ".git" / "config"
    with pytest.raises(PathRefused):
        check_spec(f"{root}/pics/.env?split=train", [root])


def test_the_home_folder_or_slash_as_working_directory_is_no_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("secret")
    (home / "photos").mkdir()
    (home / "project" / "pics").mkdir(parents=True)
    data = Path(os.environ["SIMCLR_STUDIO_DATA"]).resolve()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    for start in (home, tmp_path, Path("/")):  # $HOME, a folder holding it, the filesystem root
        monkeypatch.chdir(start)
        roots = allowed_roots(tmp_path / "runs")
        assert start.resolve() not in roots, start
        assert data in roots and (tmp_path / "runs").resolve() in roots  # data and runs roots stay
        for probe in ("~/.ssh", "~/.ssh/id_rsa", "~/photos", str(home / "project")):
            with pytest.raises(PathRefused):
                inside(probe, roots)
    monkeypatch.chdir(home / "project")  # a project folder is a root as before, and its pictures readable
    roots = allowed_roots(tmp_path / "runs")
    assert (home / "project").resolve() in roots
    assert inside("pics", roots) == (home / "project" / "pics").resolve()
    with pytest.raises(PathRefused):
        inside("../.ssh", roots)
    # named by the operator (or as the runs root), even the home folder stays a root; its hidden parts do not
    monkeypatch.setenv(ROOTS_ENV, str(home))
    roots = allowed_roots()
    assert inside("~/photos", roots) == (home / "photos").resolve()
    with pytest.raises(PathRefused):
        inside("~/.ssh/id_rsa", roots)
    assert inside(home / "photos", allowed_roots(home)) == (home / "photos").resolve()
