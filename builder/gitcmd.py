"""Git for the checkout (source), its patches (patching) and in-tree state (intree): every git command is a
``proc.Command`` run through the process helper (logged, in its own process group, stopped with builder), so the
plan prints exactly the git command lines that run."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from builder import proc
from builder.proc import Command

log = logging.getLogger("builder")

# No credential prompts (a build never waits for a password), and English messages (they are parsed).
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LANGUAGE": "C", "LC_ALL": "C"}


class GitFailed(Exception):
    """A git command exited non-zero."""

    def __init__(self, command: Command, status: int, stderr: str) -> None:
        super().__init__(f"{proc.quote(command.argv)} failed ({status}): {stderr.strip()}")
        self.command, self.status, self.stderr = command, status, stderr


def git_command(*args: str | Path, note: str | None = None) -> Command:
    """``git ARGS`` as it runs (with GIT_ENV)."""
    return Command(("git", *(str(a) for a in args)), GIT_ENV, None, note)


def run(command: Command, *, timeout: float | None = None, strip: bool = True) -> str:
    """Run a git command; its stdout (one trailing newline removed when ``strip``). GitFailed on failure."""
    result = proc.run_command(command, check=False, timeout=timeout)
    if result.returncode != 0:
        raise GitFailed(command, result.returncode, result.stderr)
    out = result.stdout
    return out[:-1] if strip and out.endswith("\n") else out


def run_git(*args: str | Path, timeout: float | None = None, strip: bool = True) -> str:
    return run(git_command(*args), timeout=timeout, strip=strip)


def rev(repo: Path, ref: str) -> str | None:
    try:
        return run(rev_command(repo, ref)) or None
    except GitFailed:
        return None


def rev_command(repo: Path, ref: str, note: str | None = None) -> Command:
    return git_command("-C", repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", note=note)


def git_dir(tree: Path) -> Path:
    return Path(run_git("-C", tree, "rev-parse", "--absolute-git-dir"))


def commit_time(tree: Path, commit: str | None) -> int | None:
    """The committer date (Unix time) of ``commit`` (default HEAD) in ``tree``; None when git cannot say."""
    try:
        return int(run_git("-C", tree, "log", "-1", "--format=%ct", commit or "HEAD", "--"))
    except (GitFailed, ValueError, OSError):
        return None


def clean_ignored(tree: Path) -> tuple[str, ...]:
    """Delete the tree's git-ignored files (never tracked files, never nested repositories); their paths."""
    out = run_git("-C", tree, "clean", "-fdX")
    return tuple(ln.removeprefix("Removing ").strip() for ln in out.splitlines() if ln.startswith("Removing "))


def remove_stale_locks(git_dir: Path) -> tuple[Path, ...]:
    """Delete the lock files a killed git left in ``git_dir`` (shallow.lock, index.lock, refs/**.lock, and those
    of the submodule repositories under modules/); git refuses to run while they exist, for ever. Call only while
    holding builder's own lock for that repository, so that no git builder started is running there. builder's
    own lock files (``builder-*.lock``) are kept. Returns the paths deleted."""
    removed = []
    for dirpath, dirs, files in os.walk(git_dir):
        dirs[:] = [d for d in dirs if d not in ("objects", "lfs", "hooks")]
        for name in files:
            if name.endswith(".lock") and not name.startswith("builder-"):
                path = Path(dirpath, name)
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.warning("removed %d stale git lock(s) left by an interrupted git: %s", len(removed),
                    ", ".join(str(p) for p in removed[:5]))
    return tuple(removed)


def git_message(exc: GitFailed, lines: int = 1) -> str:
    """The first ``lines`` fatal/error lines of git's stderr, on one line."""
    found = [ln.strip() for ln in exc.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in found if ln.lower().startswith(("fatal:", "error:"))] or found[-1:]
    return "; ".join(re.sub(r"^(fatal|error):\s*", "", ln, flags=re.IGNORECASE) for ln in errors[:lines]) \
        or f"exit status {exc.status}"
