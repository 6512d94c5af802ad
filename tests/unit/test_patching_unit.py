"""builder.patching without git: `git status --porcelain=v2 -z` parsed (submodules included), local changes told
apart from builder's own patches, patches applied in the order the checks say. git is a stub here."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder import patching
from builder.errors import SourceError
from builder.gitcmd import GitFailed
from builder.proc import Command
from builder.steps import PatchStep

# v2 records: "1 XY sub mH mI mW hH hI path", "2 ... score path\0orig", "? path"; sub "S.M." = submodule, modified
TOP = "\0".join(["1 .M N... 100644 100644 100644 a b src/a.cpp",
                 "2 R. N... 100644 100644 100644 a b R100 src/new.cpp", "src/old.cpp",
                 "1 .M SCM. 160000 160000 160000 a b third_party/dep",
                 "? notes.txt", ""])
DEP = "\0".join(["1 .M N... 100644 100644 100644 a b inner.c", ""])


@pytest.fixture
def git(monkeypatch, tmp_path):
    """A stub for gitcmd.run: answers status per tree, records everything else; git dir in tmp_path."""
    calls: list[tuple[str, ...]] = []
    answers = {str(tmp_path / "tree"): TOP, str(tmp_path / "tree" / "third_party/dep"): DEP}
    refuse: set[str] = set()

    def run(command: Command, *, timeout: float | None = None, strip: bool = True) -> str:
        argv = command.argv
        calls.append(argv)
        if "status" in argv:
            return answers[argv[2]]
        if " ".join(argv[3:]) in refuse:
            raise GitFailed(command, 1, "error: patch failed")
        return ""

    git_dir = tmp_path / "gitdir"
    git_dir.mkdir()
    monkeypatch.setattr(patching, "run", run)
    monkeypatch.setattr(patching, "git_dir", lambda tree: git_dir)
    return calls, refuse, git_dir


def test_changed_paths_reads_renames_untracked_and_submodule_content(git, tmp_path):
    assert patching._changed_paths(tmp_path / "tree") == [
        "src/a.cpp", "src/old.cpp", "src/new.cpp", "third_party/dep/inner.c", "third_party/dep", "notes.txt"]


def test_local_changes_are_refused_unless_builder_made_them(git, tmp_path):
    tree = tmp_path / "tree"
    with pytest.raises(SourceError, match="local changes: notes.txt, src/a.cpp"):
        patching.ensure_clean(tree)
    _, _, git_dir = git
    changed = ["src/a.cpp", "src/new.cpp", "src/old.cpp", "third_party/dep/inner.c", "third_party/dep", "notes.txt"]
    files = {p: patching._digest(tree / p) for p in changed}       # builder recorded them as they are now
    (git_dir / patching.MARKER_NAME).write_text(json.dumps({"patches": [], "files": files}))
    patching.ensure_clean(tree)


def step(tree: Path, patch: Path) -> PatchStep:
    return PatchStep(title=f"apply {patch.name}", worktree=tree, tree=tree, patch=patch,
                     check=patching.apply_command(tree, patch, "--check"),
                     check_reverse=patching.apply_command(tree, patch, "--reverse", "--check"),
                     apply=patching.apply_command(tree, patch))


def test_sync_applies_what_checks_say_and_records_it(git, tmp_path):
    calls, refuse, git_dir = git
    tree = tmp_path / "tree"
    one, two = tmp_path / "0001.patch", tmp_path / "0002.patch"
    one.write_text("one")
    two.write_text("two")
    refuse.add(f"apply --check {two}")                      # 0002 is applied already: only its reverse check passes
    applied = patching.sync_patches(tree, [step(tree, one), step(tree, two)])
    assert [n for n, _ in applied] == ["0001.patch", "0002.patch"]
    applies = [" ".join(c[3:]) for c in calls if c[3] == "apply"]
    assert applies == [f"apply --check {one}", f"apply {one}", f"apply --check {two}",
                       f"apply --reverse --check {two}"]
    marker = json.loads((git_dir / patching.MARKER_NAME).read_text())
    assert [p["name"] for p in marker["patches"]] == ["0001.patch", "0002.patch"]
    assert sorted(p.name for p in (git_dir / "builder-patches").iterdir()) == sorted(f"{s}.patch" for _, s in applied)


def test_a_patch_that_neither_applies_nor_is_applied_is_an_error(git, tmp_path):
    _, refuse, _ = git
    tree, bad = tmp_path / "tree", tmp_path / "bad.patch"
    bad.write_text("x")
    refuse |= {f"apply --check {bad}", f"apply --reverse --check {bad}"}
    with pytest.raises(SourceError, match="bad.patch does not apply"):
        patching.sync_patches(tree, [step(tree, bad)])
