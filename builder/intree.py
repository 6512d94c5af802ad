"""Files a build writes into the *source* tree, and build folders that share that tree.

PyTorch's build generates some sources inside the checkout, not the build folder (measured on a real tree: at build time
``torch/csrc/{autograd,lazy}/generated/`` from ``tools/setup_helpers/generate_code.py``; at configure time
``aten/src/ATen/Config.h`` and ``torch/csrc/api/include/torch/version.h``; see caffe2/CMakeLists.txt and
aten/src/ATen/CMakeLists.txt), and their content depends on the configuration (a tracing-based op list filters
the autograd ones). Every build folder of a tag shares one work tree, so after configuration B has built, the
generated files in the tree are B's. A fresh build folder is safe (Ninja has no log entry for those outputs and
regenerates them), but a folder of configuration A that resumes (interrupted earlier, or its stamp gone) sees
outputs newer than their inputs and would compile and install B's generated files.

``prepare_tree`` runs before Ninja does in a build folder: it records which configuration last used the tree (the
plan's ``tree_key``: the source and what all its slices share, since the ABIs of one build generate the same files;
in the tree's git dir, beside builder's patch marker) and, when a folder resumes after another configuration used the
tree, deletes the tree's git-ignored files (``git clean -fdX``: generated outputs only, never tracked files,
never nested repositories) so that this folder's build regenerates them; the executor then configures again,
since configure wrote some of them. It does that only in builder's own work trees: in a ``--source`` checkout the
ignored files may be the user's, so it warns with the command instead. The record is written (``record``) only once
that configure has succeeded: a kill during it leaves the other configuration's record, so the next run cleans and
configures again instead of building without the files configure writes.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import atomic, gitcmd, locks

log = logging.getLogger("builder")
RECORD_NAME = "builder-last-build.json"
LOCK_NAME = "builder-build.lock"


@contextmanager
def building_in(tree: Path) -> Iterator[Path | None]:
    """Hold ``tree``'s build lock and give its git folder (None if ``tree`` is not a git work tree): two builds at
    once would both write the tree's generated files (and two Ninjas in one build folder corrupt it), so a second
    builder waits, saying so."""
    if not (tree / ".git").exists():
        yield None
        return
    git_dir = gitcmd.git_dir(tree)
    with locks.locked(git_dir / LOCK_NAME, waiting=f"another builder build in {tree} to finish",
                      level=logging.WARNING):
        yield git_dir


def prepare_tree(tree: Path, git_dir: Path | None, key: str, build_dir: Path, *, owned: bool) -> bool:
    """Make ``tree`` (whose git folder is ``git_dir``, from ``building_in``) safe for building ``key`` in
    ``build_dir``; True when its generated files were deleted, so that the build folder must be configured again.
    Call ``record`` once that configure has succeeded."""
    if git_dir is None:
        return False
    last = _read(git_dir / RECORD_NAME)
    resumed = (build_dir / ".ninja_log").is_file()
    if not resumed or last.get("key") == key:
        return False
    other = last.get("build_dir", "an unknown build folder")
    if owned:
        removed = gitcmd.clean_ignored(tree)
        log.warning("work tree %s was last built by another configuration (%s): deleted %d generated "
                    "file(s) there so this build regenerates its own", tree, other, len(removed))
        return True
    if last:
        log.warning("%s was last built by another configuration (%s) and PyTorch writes generated sources "
                    "into it: this resumed build may reuse them. If in doubt run `git -C %s clean -ndX` "
                    "to see them and delete them, or build into a new --out", tree, other, tree)
    return False


def record(git_dir: Path | None, key: str, build_dir: Path) -> None:
    """Record that the tree's generated files are now those of ``key`` (built in ``build_dir``)."""
    if git_dir is not None:
        _write(git_dir / RECORD_NAME, {"key": key, "build_dir": str(build_dir)})


def _read(record: Path) -> dict[str, str]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(record: Path, data: dict[str, str]) -> None:
    atomic.write_text(record, json.dumps(data, indent=1, sort_keys=True))
