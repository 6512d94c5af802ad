"""builder's changes to a work tree: the release's patches (applied, re-applied, reverted when the recipe's list
changes) and the marker in the git dir that records them with the digests of the files they changed, so that
"refuse to touch local changes" can tell the user's edits from builder's own."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder import atomic
from builder.errors import SourceError
from builder.gitcmd import GitFailed, git_command, git_dir, run
from builder.hashing import sha256_bytes, sha256_file
from builder.proc import Command
from builder.steps import PatchStep

log = logging.getLogger("builder")

MARKER_NAME = "builder-patches.json"
_ABSENT = object()


@dataclass(frozen=True)
class _Marker:
    """What builder changed in a work tree: its patches and the files' digests after them."""
    patches: tuple[tuple[str, str], ...] = ()      # (name, sha256), in order of application
    files: Mapping[str, str | None] = field(default_factory=dict)


def apply_command(tree: Path, patch: Path, *options: str, note: str | None = None) -> Command:
    return git_command("-C", tree, "apply", *options, patch.absolute(), note=note)


def status_command(tree: Path, note: str | None = None) -> Command:
    """Modified, deleted and untracked files of ``tree`` (what "local changes" means)."""
    return git_command("-C", tree, "--no-optional-locks", "status", "--porcelain=v2", "-z", "--untracked-files=all",
                       "--ignore-submodules=none", note=note)


# --------------------------------------------------------------------------- local changes
def ensure_clean(tree: Path) -> None:
    recorded = _read_marker(tree).files
    changed = sorted({p for p in _changed_paths(tree)
                      if recorded.get(p, _ABSENT) != _digest(tree / p)})
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        hint = f"work tree: {tree}"
        if not (tree / ".gitignore").is_file():   # e.g. a tree made from a release tarball (Debian's has none)
            hint += ("; it has no .gitignore, so files a configure writes into the source count as changes: give it "
                     "the release's .gitignore, or list them in its .git/info/exclude")
        raise SourceError(f"refusing to touch a work tree with local changes: {shown}; "
                          "commit/stash them or use a new --source", hint=hint)


def _changed_paths(tree: Path, prefix: str = "") -> list[str]:
    """Modified, deleted and untracked files, descending into submodules with changed content."""
    out = run(status_command(tree), strip=False)
    records, paths = iter(out.split("\0")), []
    for record in records:
        if not record or record[0] not in "12u?":
            continue
        if record[0] == "?":
            paths.append(prefix + record[2:])
            continue
        fields = record.split(" ", {"1": 8, "2": 9, "u": 10}[record[0]])
        path, sub = fields[-1], fields[2]
        if record[0] == "2":
            paths.append(prefix + next(records))
        if sub.startswith("S") and (sub[2] == "M" or sub[3] == "U"):
            paths += _changed_paths(tree / path, f"{prefix}{path}/")
        if not sub.startswith("S") or sub[1] == "C":
            paths.append(prefix + path)
    return paths


def _digest(path: Path) -> str | None:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_dir():
        return "dir"
    return sha256_file(path) if path.exists() else None


# --------------------------------------------------------------------------- patches
def sync_patches(tree: Path, steps: Sequence[PatchStep]) -> tuple[tuple[str, str], ...]:
    """Make exactly the steps' patches applied (undoing builder's stale ones, from the copies builder keeps);
    record what builder changed."""
    marker = _read_marker(tree)
    contents = [_read_patch(step.patch) for step in steps]
    wanted = tuple((step.patch.name, sha256_bytes(data)) for step, data in zip(steps, contents))
    _unapply(tree, [entry for entry in marker.patches if entry not in wanted])
    store = git_dir(tree) / "builder-patches"
    for step, data, (name, sha) in zip(steps, contents, wanted):
        _apply(step, already_recorded=(name, sha) in marker.patches)
        store.mkdir(exist_ok=True)
        atomic.write_bytes(store / f"{sha}.patch", data)
    if wanted or marker.patches:
        _write_marker(tree, _Marker(wanted, {p: _digest(tree / p) for p in _changed_paths(tree)}))
    return wanted


def needs_sync(tree: Path, steps: Sequence[PatchStep]) -> bool:
    """``sync_patches`` would change the tree: the patches recorded are not exactly the steps'."""
    wanted = tuple((step.patch.name, sha256_bytes(_read_patch(step.patch))) for step in steps)
    return _read_marker(tree).patches != wanted


def _apply(step: PatchStep, already_recorded: bool) -> None:
    # Reverse-check first when builder recorded the patch: some patches would apply twice.
    for reverse in ((True, False) if already_recorded else (False, True)):
        try:
            run(step.check_reverse if reverse else step.check)
        except GitFailed:
            continue
        if reverse:
            log.info("patch %s is already applied", step.patch.name)
        else:
            run(step.apply)
            log.info("applied patch %s", step.patch.name)
        return
    raise SourceError(f"patch {step.patch.name} does not apply to {step.tree}",
                      hint="the patch does not match this PyTorch version; fix the recipe's patches")


def _unapply(tree: Path, entries: Sequence[tuple[str, str]]) -> None:
    store = git_dir(tree) / "builder-patches"
    for name, sha in reversed(entries):
        try:
            run(apply_command(tree, store / f"{sha}.patch", "--reverse"))
        except GitFailed as exc:
            raise SourceError(f"cannot revert builder's patch {name} in {tree}",
                              hint=f"delete {tree} and run again") from exc
        log.info("reverted patch %s", name)


def _read_patch(patch: Path) -> bytes:
    try:
        return patch.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read patch {patch}: {exc.strerror}",
                          hint="check the recipe's patches") from exc


def _read_marker(tree: Path) -> _Marker:
    path = git_dir(tree) / MARKER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data["files"], dict):
            raise TypeError("'files' is not an object")
        return _Marker(tuple((p["name"], p["sha256"]) for p in data["patches"]), data["files"])
    except FileNotFoundError:
        return _Marker()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"unreadable {path}: {exc}", hint=f"delete {tree} and run again") from exc


def _write_marker(tree: Path, marker: _Marker) -> None:
    path = git_dir(tree) / MARKER_NAME
    data = {"patches": [{"name": n, "sha256": s} for n, s in marker.patches],
            "files": dict(marker.files)}
    atomic.write_text(path, json.dumps(data, indent=1, sort_keys=True))


def revert_all(tree: Path) -> None:
    """Undo every patch builder recorded in ``tree`` and forget them (before the tree moves to another tag)."""
    _unapply(tree, _read_marker(tree).patches)
    _write_marker(tree, _Marker())
