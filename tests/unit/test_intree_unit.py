"""builder.intree without git: which configuration last used a source tree, and when a resumed build must
regenerate the files the tree holds (only in builder's own trees; a --source tree gets a warning)."""
from __future__ import annotations

import json
import logging

from builder import intree


def test_no_git_dir_nothing_to_do(tmp_path):
    assert intree.prepare_tree(tmp_path, None, "k", tmp_path / "b", owned=True) is False
    with intree.building_in(tmp_path) as git_dir:             # not a git work tree: no lock, no git
        assert git_dir is None


def test_the_key_is_recorded_only_by_record(tmp_path):
    """prepare_tree never writes the record: a kill during the configure it asks for must leave the old one."""
    git_dir = tmp_path / "git"
    git_dir.mkdir()
    assert intree.prepare_tree(tmp_path, git_dir, "k1", tmp_path / "b1", owned=True) is False
    assert not (git_dir / intree.RECORD_NAME).exists()
    intree.record(git_dir, "k1", tmp_path / "b1")
    record = json.loads((git_dir / intree.RECORD_NAME).read_text())
    assert record == {"key": "k1", "build_dir": str(tmp_path / "b1")}


def test_resumed_build_after_another_configuration_cleans_owned_trees(tmp_path, monkeypatch, caplog):
    git_dir, build = tmp_path / "git", tmp_path / "b1"
    git_dir.mkdir()
    build.mkdir()
    (build / ".ninja_log").write_text("")
    (git_dir / intree.RECORD_NAME).write_text(json.dumps({"key": "other", "build_dir": "/x/b2"}))
    cleaned: list[object] = []
    monkeypatch.setattr(intree.gitcmd, "clean_ignored", lambda tree: cleaned.append(tree) or ("gen/a.h",))
    with caplog.at_level(logging.WARNING, logger="builder"):
        assert intree.prepare_tree(tmp_path, git_dir, "k1", build, owned=True) is True
    assert cleaned == [tmp_path] and "last built by another configuration (/x/b2)" in caplog.text


def test_resumed_build_in_a_users_tree_only_warns(tmp_path, monkeypatch, caplog):
    git_dir, build = tmp_path / "git", tmp_path / "b1"
    git_dir.mkdir()
    build.mkdir()
    (build / ".ninja_log").write_text("")
    (git_dir / intree.RECORD_NAME).write_text(json.dumps({"key": "other", "build_dir": "/x/b2"}))
    monkeypatch.setattr(intree.gitcmd, "clean_ignored", lambda tree: (_ for _ in ()).throw(AssertionError))
    with caplog.at_level(logging.WARNING, logger="builder"):
        assert intree.prepare_tree(tmp_path, git_dir, "k1", build, owned=False) is False
    assert "clean -ndX" in caplog.text


def test_same_configuration_resuming_deletes_nothing(tmp_path, monkeypatch):
    git_dir, build = tmp_path / "git", tmp_path / "b1"
    git_dir.mkdir()
    build.mkdir()
    (build / ".ninja_log").write_text("")
    (git_dir / intree.RECORD_NAME).write_text(json.dumps({"key": "k1", "build_dir": str(build)}))
    monkeypatch.setattr(intree.gitcmd, "clean_ignored", lambda tree: (_ for _ in ()).throw(AssertionError))
    assert intree.prepare_tree(tmp_path, git_dir, "k1", build, owned=True) is False
