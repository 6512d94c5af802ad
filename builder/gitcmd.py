"""Git plumbing shared by the checkout (source), its patches (patching) and in-tree state (intree): one logged way
to run git through GitPython, and the few queries they all need."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from builder.proc import quote

log = logging.getLogger("builder")

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}


class _LazyGit:
    """GitPython, imported on first use: planning (--dry-run) never pays its ~40 ms import."""

    def __getattr__(self, name: str):
        import git as _git

        return getattr(_git, name)


git = _LazyGit()


def run_git(*args: str | os.PathLike[str], timeout: float | None = None,
            strip_newline_in_stdout: bool = True) -> str:
    argv = [str(a) for a in args]
    if argv[0] != "git":
        argv.insert(0, "git")
    log.debug("$ %s", quote(argv))
    return git.Git().execute(argv, env=_GIT_ENV, kill_after_timeout=timeout,
                             strip_newline_in_stdout=strip_newline_in_stdout)


def rev(repo: Path, ref: str) -> str | None:
    try:
        return run_git("-C", repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}") or None
    except git.GitCommandError:
        return None


def git_dir(tree: Path) -> Path:
    return Path(run_git("-C", tree, "rev-parse", "--absolute-git-dir"))


def clean_ignored(tree: Path) -> tuple[str, ...]:
    """Delete the tree's git-ignored files (never tracked files, never nested repositories); their paths."""
    out = run_git("-C", tree, "clean", "-fdX")
    return tuple(ln.removeprefix("Removing ").strip() for ln in out.splitlines() if ln.startswith("Removing "))


def git_message(exc: git.GitCommandError, lines: int = 1) -> str:
    """The first ``lines`` fatal/error lines of git's stderr, on one line."""
    text = str(exc.stderr or "").strip().removeprefix("stderr: '").removesuffix("'")
    found = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in found if ln.lower().startswith(("fatal:", "error:"))] or found[-1:]
    return "; ".join(re.sub(r"^(fatal|error):\s*", "", ln, flags=re.I) for ln in errors[:lines]) \
        or f"exit status {exc.status}"
