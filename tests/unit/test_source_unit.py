"""builder.source pure parts: URL rewriting and the checkout plan (no git, no I/O)."""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from builder.errors import SourceError
from builder.source import SourceSpec, plan_checkout, rewrite_url
from builder.steps import FetchTagStep, PatchStep, SubmodulesStep, VerifyCommitStep, WorkTreeStep

FILE_MIRROR = "file:///srv/mirror/"
CORP = "https://git.corp/github/"
COMMIT = "a" * 40


@pytest.mark.parametrize(("url", "mirror", "expected"), [
    ("https://github.com/pytorch/pytorch.git", FILE_MIRROR, "file:///srv/mirror/pytorch/pytorch.git"),
    ("https://github.com/pytorch/pytorch", CORP, "https://git.corp/github/pytorch/pytorch"),
    ("git@github.com:google/XNNPACK.git", CORP, "https://git.corp/github/google/XNNPACK.git"),
    ("ssh://git@github.com/x/y.git", "file:///m", "file:///m/x/y.git"),
    # v1.13.1's real .gitmodules has eigen on gitlab: mirrored under <mirror>gitlab.com/
    ("https://gitlab.com/libeigen/eigen.git", CORP, "https://git.corp/github/gitlab.com/libeigen/eigen.git"),
    ("https://git.example.org/x/y.git", CORP, "https://git.example.org/x/y.git"),
    ("https://github.com/x/y.git", None, "https://github.com/x/y.git"),
])
def test_rewrite_absolute(url: str, mirror: str | None, expected: str) -> None:
    assert rewrite_url(url, mirror) == expected


@pytest.mark.parametrize(("url", "base", "mirror", "expected"), [
    ("../foo.git", "https://github.com/pytorch/pytorch.git", CORP, "https://git.corp/github/pytorch/foo.git"),
    ("../../c/n.git", "https://github.com/a/needed.git/", None, "https://github.com/c/n.git"),
    ("../../c/n.git", "git@github.com:a/needed.git", FILE_MIRROR, "file:///srv/mirror/c/n.git"),
    ("./sub.git", "https://github.com/a/b", None, "https://github.com/a/b/sub.git"),
    ("../x.git", "file:///srv/mirror/a/b.git", None, "file:///srv/mirror/a/x.git"),
])
def test_rewrite_relative(url: str, base: str, mirror: str | None, expected: str) -> None:
    assert rewrite_url(url, mirror, base=base) == expected


def test_rewrite_relative_errors() -> None:
    with pytest.raises(SourceError):
        rewrite_url("../x.git", None)
    with pytest.raises(SourceError, match="above the root"):
        rewrite_url("../../../x.git", "https://github.com/a/b.git", base="https://github.com/a/b.git")


def _spec(tmp_path: Path, **kw) -> SourceSpec:
    return SourceSpec(cache_dir=tmp_path / "cache", **kw)


GIT = "env GIT_TERMINAL_PROMPT=0 LANGUAGE=C LC_ALL=C git"


def _argv(command) -> list[str]:
    return list(command.argv)


def test_plan_cache_mode_commands(tmp_path: Path) -> None:
    """Each step carries the exact git commands the checkout runs (the plan prints them)."""
    cache = tmp_path / "cache"
    patch = Path("/p/fix.patch")
    plan = plan_checkout(_spec(tmp_path, mirror=FILE_MIRROR), "v2.1.0", COMMIT,
                         ("third_party/pthreadpool", "third_party/XNNPACK"), (patch,))
    assert [type(a) for a in plan] == [FetchTagStep, VerifyCommitStep, WorkTreeStep, SubmodulesStep, PatchStep]
    assert {a.kind for a in plan} == {"source"}
    assert not cache.exists(), "planning does no I/O"
    fetch, verify, worktree, subs, apply = plan
    mirror, tree = cache / "mirror.git", cache / "worktrees" / "v2.1.0"
    assert isinstance(fetch, FetchTagStep) and isinstance(verify, VerifyCommitStep)
    assert _argv(fetch.init) == ["git", "init", "-q", "--bare", str(mirror)]
    assert _argv(fetch.fetch) == ["git", "-C", str(mirror), "fetch", "-q", "--depth", "1", "--no-tags",
                                  "file:///srv/mirror/pytorch/pytorch.git", "+refs/tags/v2.1.0:refs/tags/v2.1.0"]
    assert fetch.shell().splitlines()[0] == f"{GIT} init -q --bare {mirror}  # if {mirror}/HEAD is missing"
    assert _argv(verify.rev) == ["git", "-C", str(mirror), "rev-parse", "-q", "--verify", "refs/tags/v2.1.0^{commit}"]
    assert verify.rev.note == f"must print {COMMIT}"
    assert isinstance(worktree, WorkTreeStep)
    assert _argv(worktree.clone) == ["git", "clone", "-q", "--depth", "1", "--no-tags", "--branch", "v2.1.0",
                                     mirror.as_uri(), str(tree)]
    assert _argv(worktree.checkout) == ["git", "-C", str(tree), "checkout", "-q", "--detach", "refs/tags/v2.1.0"]
    assert _argv(worktree.set_url) == ["git", "-C", str(tree), "remote", "set-url", "origin",
                                       "https://github.com/pytorch/pytorch.git"]
    assert isinstance(subs, SubmodulesStep)
    argv = shlex.split(subs.update.shell())
    assert argv[argv.index("git"):][:4] == ["git", "-C", str(tree), "-c"]
    assert "protocol.file.allow=always" in argv
    assert "url.file:///srv/mirror/.insteadOf=https://github.com/" in argv
    assert "url.file:///srv/mirror/.insteadOf=git@github.com:" in argv
    assert argv[argv.index("submodule"):] == [
        "submodule", "update", "--init", "--recursive", "--depth", "1", "--jobs", "8", "--",
        "third_party/pthreadpool", "third_party/XNNPACK"]
    assert _argv(subs.unshallow_for("third_party/x"))[:3] == ["git", "-C", str(tree / "third_party/x")]
    assert isinstance(apply, PatchStep)
    assert _argv(apply.check) == ["git", "-C", str(tree), "apply", "--check", "/p/fix.patch"]
    assert _argv(apply.check_reverse) == ["git", "-C", str(tree), "apply", "--reverse", "--check", "/p/fix.patch"]
    assert _argv(apply.apply) == ["git", "-C", str(tree), "apply", "/p/fix.patch"]
    assert all(c.env == {"GIT_TERMINAL_PROMPT": "0", "LANGUAGE": "C", "LC_ALL": "C"}
               for step in plan for c in step.commands())
    assert {a.lock for a in plan if not isinstance(a, (FetchTagStep, VerifyCommitStep))} == {
        cache / "worktrees" / "v2.1.0.lock"}


def test_plan_https_mirror_has_no_file_protocol(tmp_path: Path) -> None:
    plan = plan_checkout(_spec(tmp_path, mirror=CORP), "v1", COMMIT, ("third_party/x",))
    subs = plan[-1]
    assert isinstance(plan[0], FetchTagStep) and isinstance(subs, SubmodulesStep)
    assert plan[0].url == "https://git.corp/github/pytorch/pytorch.git"
    assert "protocol.file.allow=always" not in subs.git_config
    assert "url.https://git.corp/github/.insteadOf=https://github.com/" in subs.git_config
    last = plan_checkout(_spec(tmp_path), "v1", COMMIT, ("x",))[-1]
    assert isinstance(last, SubmodulesStep) and last.git_config == ()


def test_plan_source_dir_mode(tmp_path: Path) -> None:
    src = tmp_path / "pytorch"
    plan = plan_checkout(_spec(tmp_path, source_dir=src), "v1", COMMIT, ("third_party/x",))
    assert [type(a) for a in plan] == [VerifyCommitStep, SubmodulesStep]
    verify = plan[0]
    assert isinstance(verify, VerifyCommitStep)
    assert verify.require_clean and verify.ref == "HEAD" and verify.worktree == src
    assert [_argv(c)[3:5] for c in verify.commands()] == [["rev-parse", "--show-toplevel"],
                                                           ["--no-optional-locks", "status"],
                                                           ["rev-parse", "-q"]]
    assert all(a.lock is None for a in plan)


def test_plan_is_frozen_and_tag_is_sanitized(tmp_path: Path) -> None:
    plan = plan_checkout(_spec(tmp_path), "ciflow/x-1", COMMIT)
    assert isinstance(plan[2], WorkTreeStep) and plan[2].tree.name == "ciflow_x-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan[0].title = "x"  # type: ignore[misc]
    for bad in ("", "v1 .0", "../x", "-x"):
        with pytest.raises(SourceError, match="invalid tag"):
            plan_checkout(_spec(tmp_path), bad, COMMIT)


def test_fetch_failures_with_a_local_cause_do_not_blame_the_network() -> None:
    from builder.gitcmd import GitFailed, git_command
    from builder.source import _fetch_error

    def failed(stderr: str) -> GitFailed:
        return GitFailed(git_command("fetch"), 128, stderr)

    err = _fetch_error(failed("fatal: write error: No space left on device"), "https://example.invalid/x.git", "v1")
    assert "BUILDER_CACHE_DIR" in str(err) and "network" not in str(err)
    locked = failed("fatal: Unable to create '/c/mirror.git/shallow.lock': File exists.")
    assert "network" not in str(_fetch_error(locked, "https://example.invalid/x.git", "v1"))
    corrupt = failed("error: object file ./objects/ab/cd is empty\nfatal: loose object abcd is corrupt")
    assert "source cache is damaged" in str(_fetch_error(corrupt, "https://example.invalid/x.git", "v1"))
