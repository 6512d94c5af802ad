"""builder.source against real git and real local repositories (never the network).

The fake github.com lives in tmp_path; the test git config forbids https/ssh/git, so a URL that
escaped the mirror rewrite fails instead of reaching the network.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import git
import pytest
from filelock import FileLock

from builder import source
from builder.errors import SourceError
from builder.locks import LockTimeout
from builder.source import SourceSpec, execute_checkout, plan_checkout, submodule_status
from tests.fixtures import gitrepos
from tests.fixtures.gitrepos import Upstream

NEEDED = ("third_party/needed",)


@pytest.fixture(scope="session")
def upstream_template(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    root = tmp_path_factory.mktemp("upstream-template")
    with pytest.MonkeyPatch.context() as patch_env:
        for key, value in gitrepos.isolate_git(root / "home").items():
            patch_env.setenv(key, value)
        return gitrepos.make_upstream(root)


@pytest.fixture
def upstream(upstream_template: Upstream, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Upstream:
    for key, value in gitrepos.isolate_git(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    return gitrepos.copy_upstream(upstream_template, tmp_path / "upstream")


@pytest.fixture
def spec(upstream: Upstream, tmp_path: Path) -> SourceSpec:
    return SourceSpec(mirror=upstream.mirror, cache_dir=tmp_path / "cache")


def checkout(spec: SourceSpec, upstream: Upstream, tag: str = "v1.0.0", commit: str | None = None,
             patches: tuple[Path, ...] = (), submodules: tuple[str, ...] = NEEDED):
    pinned = upstream.tags[tag] if commit is None else commit
    return execute_checkout(plan_checkout(spec, tag, pinned, submodules, patches))


def test_only_needed_submodules_and_nested_through_mirror(spec: SourceSpec, upstream: Upstream):
    seen: list[tuple[str, int, int]] = []
    result = execute_checkout(plan_checkout(spec, "v1.0.0", upstream.tags["v1.0.0"], NEEDED),
                              on_progress=lambda a, i, n: seen.append((type(a).__name__, i, n)))
    tree = spec.cache_dir / "worktrees" / "v1.0.0"
    assert result.worktree == tree and result.commit == upstream.tags["v1.0.0"]
    assert (tree / "third_party/needed/needed.txt").read_text() == "needed v1\n"
    assert (tree / "third_party/needed/deps/nested/nested.txt").read_text() == "nested\n"
    assert list((tree / "third_party/unneeded").iterdir()) == []
    assert result.submodules == {"third_party/needed": upstream.pins["needed"],
                                 "third_party/needed/deps/nested": upstream.pins["nested"]}
    assert submodule_status(tree) == result.submodules
    assert [k for k, _, _ in seen] == ["FetchTagStep", "VerifyCommitStep", "WorkTreeStep", "SubmodulesStep"]
    # Shallow everywhere; origin keeps the upstream URL (relative submodule URLs resolve upstream).
    repo = git.Repo(tree)
    assert repo.git.rev_parse("--is-shallow-repository") == "true"
    assert git.Repo(tree / "third_party/needed").git.rev_parse("--is-shallow-repository") == "true"
    assert repo.remote().url == upstream.repo_url
    assert git.Repo(spec.cache_dir / "mirror.git").bare


def test_second_tag_shares_the_mirror_and_reruns_offline(spec: SourceSpec, upstream: Upstream):
    checkout(spec, upstream, "v1.0.0")
    result = checkout(spec, upstream, "v2.0.0")
    assert (result.worktree / "src/a.cpp").read_text() == gitrepos.A_CPP_V2
    mirror = git.Repo(spec.cache_dir / "mirror.git")
    assert sorted(t.name for t in mirror.tags) == ["v1.0.0", "v2.0.0"]
    # A rerun needs nothing from upstream: the mirror has the pinned tag, submodules are in place.
    offline = SourceSpec(mirror=(spec.cache_dir / "nowhere").as_uri() + "/", cache_dir=spec.cache_dir)
    assert checkout(offline, upstream, "v1.0.0").commit == upstream.tags["v1.0.0"]


def test_pinned_commit_mismatch_refused_unless_unpinned(spec: SourceSpec, upstream: Upstream,
                                                       caplog: pytest.LogCaptureFixture):
    wrong = upstream.tags["v1.0.0"]
    with pytest.raises(SourceError, match=r"tag v2\.0\.0 is commit .* recipe pins"):
        checkout(spec, upstream, "v2.0.0", commit=wrong)
    assert not (spec.cache_dir / "worktrees" / "v2.0.0").exists()
    unpinned = SourceSpec(mirror=spec.mirror, cache_dir=spec.cache_dir, allow_unpinned=True)
    with caplog.at_level(logging.WARNING, logger="builder"):
        result = checkout(unpinned, upstream, "v2.0.0", commit=wrong)
    assert result.commit == upstream.tags["v2.0.0"]
    assert "recipe pins" in caplog.text


def test_dirty_tree_refused_and_left_byte_for_byte(spec: SourceSpec, upstream: Upstream,
                                                  tmp_path: Path):
    tree = checkout(spec, upstream).worktree
    (tree / "src/a.cpp").write_text("// mine\n")
    (tree / "src/b.h").write_text("// untracked\n")
    (tree / "third_party/needed/needed.txt").write_text("edited inside a submodule\n")
    before = gitrepos.tree_digest(tree)
    patch = gitrepos.write_patch(tmp_path / "p" / "fix.patch")
    with pytest.raises(SourceError) as info:
        checkout(spec, upstream, patches=(patch,))
    assert info.value.message == (
        "refusing to touch a work tree with local changes: src/a.cpp, src/b.h, "
        "third_party/needed/needed.txt; commit/stash them or use a new --source")
    assert gitrepos.tree_digest(tree) == before
    assert "no .gitignore" in (info.value.hint or "")          # this test release has none
    (tree / ".gitignore").write_text("/build/\n")                 # one more untracked file, but a tree that has one
    with pytest.raises(SourceError) as again:
        checkout(spec, upstream, patches=(patch,))
    assert again.value.hint == f"work tree: {tree}"


def test_patches_apply_exactly_once(spec: SourceSpec, upstream: Upstream, tmp_path: Path):
    patch = gitrepos.write_patch(tmp_path / "p" / "fix.patch")
    first = checkout(spec, upstream, patches=(patch,))
    tree = first.worktree
    assert (tree / "src/a.cpp").read_text() == gitrepos.PATCHED_A_CPP
    assert (tree / "src/new.h").read_text() == gitrepos.NEW_HEADER
    marker = json.loads((tree / ".git/builder-patches.json").read_text())
    assert [p["name"] for p in marker["patches"]] == ["fix.patch"]
    before = gitrepos.tree_digest(tree)
    second = checkout(spec, upstream, patches=(patch,))
    assert second.patches == first.patches and first.patches[0][0] == "fix.patch"
    assert len(first.patches[0][1]) == 64
    assert (tree / "src/a.cpp").read_text() == gitrepos.PATCHED_A_CPP
    assert gitrepos.tree_digest(tree) == before
    # Dropping the patch from the recipe undoes it; a user edit on top of it is refused.
    assert checkout(spec, upstream).patches == ()
    assert (tree / "src/a.cpp").read_text() == gitrepos.A_CPP_V1 and not (tree / "src/new.h").exists()
    checkout(spec, upstream, patches=(patch,))
    (tree / "src/a.cpp").write_text(gitrepos.PATCHED_A_CPP + "// mine\n")
    with pytest.raises(SourceError, match="local changes: src/a.cpp;"):
        checkout(spec, upstream, patches=(patch,))


def test_patch_that_does_not_apply(spec: SourceSpec, upstream: Upstream, tmp_path: Path):
    patch = gitrepos.write_patch(tmp_path / "p" / "fix.patch")
    with pytest.raises(SourceError, match="patch fix.patch does not apply"):
        checkout(spec, upstream, "v2.0.0", patches=(patch,))


def test_source_dir_mode(spec: SourceSpec, upstream: Upstream, tmp_path: Path):
    src = gitrepos.user_checkout(upstream, tmp_path / "mine", "v1.0.0")
    local = SourceSpec(repo_url="https://invalid.invalid/x.git", mirror=upstream.mirror,
                       source_dir=src, cache_dir=tmp_path / "unused-cache")
    actions = plan_checkout(local, "v1.0.0", upstream.tags["v1.0.0"], NEEDED)
    assert [type(a).__name__ for a in actions] == ["VerifyCommitStep", "SubmodulesStep"]
    result = execute_checkout(actions)
    assert result.worktree == src and result.commit == upstream.tags["v1.0.0"]
    assert (src / "third_party/needed/deps/nested/nested.txt").exists()
    assert list((src / "third_party/unneeded").iterdir()) == []
    assert not (tmp_path / "unused-cache").exists()
    with pytest.raises(SourceError, match="recipe pins"):
        execute_checkout(plan_checkout(local, "v2.0.0", upstream.tags["v2.0.0"], NEEDED))
    (src / "README.md").write_text("mine\n")
    before = gitrepos.tree_digest(src)
    with pytest.raises(SourceError, match="local changes: README.md;"):
        execute_checkout(actions)
    assert gitrepos.tree_digest(src) == before


def test_source_dir_not_a_checkout(upstream: Upstream, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    spec = SourceSpec(source_dir=tmp_path / "empty", cache_dir=tmp_path / "cache")
    with pytest.raises(SourceError, match="not a git checkout"):
        execute_checkout(plan_checkout(spec, "v1.0.0", upstream.tags["v1.0.0"]))


def test_missing_tag_and_unreachable_mirror(spec: SourceSpec, upstream: Upstream, tmp_path: Path):
    with pytest.raises(SourceError, match=r"tag v1\.0 not found .*did you mean v1\.0\.0") as info:
        execute_checkout(plan_checkout(spec, "v1.0", "0" * 40))
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    bad = SourceSpec(mirror=(tmp_path / "nope").as_uri() + "/", cache_dir=spec.cache_dir)
    with pytest.raises(SourceError, match=r"cannot fetch .*nope/pytorch/pytorch\.git.*--mirror"):
        checkout(bad, upstream)
    # Without a mirror the upstream URL is used, and the test config forbids https (no network).
    direct = SourceSpec(cache_dir=spec.cache_dir)
    with pytest.raises(SourceError, match=r"cannot fetch https://github.com/pytorch/pytorch.git"):
        checkout(direct, upstream)


def test_unknown_submodule_suggests(spec: SourceSpec, upstream: Upstream):
    with pytest.raises(SourceError, match=r"third_party/neded .*did you mean third_party/needed"):
        checkout(spec, upstream, submodules=("third_party/neded",))


def test_shallow_fetch_refused_falls_back_to_full(spec: SourceSpec, upstream: Upstream,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture):
    # Protocol v0 without uploadpack.allowReachableSHA1InWant refuses the unadvertised pinned commit.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    with caplog.at_level(logging.WARNING, logger="builder"):
        result = checkout(spec, upstream)
    assert "refused a shallow fetch of third_party/needed;" in caplog.text
    assert "refused a shallow fetch of third_party/needed/deps/nested;" in caplog.text
    assert result.submodules["third_party/needed"] == upstream.pins["needed"]
    needed = git.Repo(result.worktree / "third_party/needed")
    assert needed.git.rev_parse("--is-shallow-repository") == "false"
    assert needed.head.commit.hexsha == upstream.pins["needed"]
    nested = result.worktree / "third_party/needed/deps/nested/nested.txt"
    assert nested.read_text() == "nested\n"


def test_busy_work_tree_lock_times_out(spec: SourceSpec, upstream: Upstream,
                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(source, "LOCK_TIMEOUT_S", 0.2)
    lock = FileLock(str(spec.cache_dir / "worktrees" / "v1.0.0.lock"))
    (spec.cache_dir / "worktrees").mkdir(parents=True)
    with lock, pytest.raises(LockTimeout, match=r"timed out after 0\.2 s waiting for another builder process using the source cache"):
        checkout(spec, upstream)
    assert checkout(spec, upstream).commit == upstream.tags["v1.0.0"]
