"""A killed builder (kill -9, a full disk) never leaves the source cache stuck: git's stale locks are removed under
builder's own lock, and a work tree a kill left half made is recognised as incomplete and made again (never refused
as "local changes"). Kills are real SIGKILLs of a child builder, at a point chosen by a hook on its git calls."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from builder.source import SourceSpec
from tests.fixtures import gitrepos
from tests.fixtures.gitrepos import Upstream
from tests.integration import test_source as base
from tests.integration.test_source import NEEDED, checkout

pytestmark = pytest.mark.integration
upstream_template, upstream, spec = base.upstream_template, base.upstream, base.spec   # the same fixtures
ROOT = Path(__file__).resolve().parents[2]

# A builder checkout in a child process that SIGKILLs itself right after the first git command whose argv holds
# ``after``, once it has deleted ``victim`` (relative to the command's target folder): a tree half written.
KILLED_CHECKOUT = r"""
import json, os, signal, sys
from pathlib import Path
from builder import source
args = json.loads(sys.argv[1])
real = source.run
def run(command, **kwargs):
    out = real(command, **kwargs)
    words = list(command.argv)
    if args["after"] in words:
        target = Path(words[-1]) if args["after"] == "clone" else Path(args["tree"])
        (target / args["victim"]).unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    return out
source.run = run
spec = source.SourceSpec(mirror=args["mirror"], cache_dir=Path(args["cache"]))
source.execute_checkout(source.plan_checkout(spec, args["tag"], args["commit"], tuple(args["submodules"])))
"""


def _killed_checkout(spec: SourceSpec, upstream: Upstream, after: str, victim: str) -> None:
    args = {"after": after, "victim": victim, "mirror": spec.mirror, "cache": str(spec.cache_dir), "tag": "v1.0.0",
            "commit": upstream.tags["v1.0.0"], "submodules": list(NEEDED),
            "tree": str(spec.worktree_dir("v1.0.0"))}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", KILLED_CHECKOUT, json.dumps(args)], env=env, timeout=120,
                         capture_output=True, text=True, check=False)
    assert res.returncode == -signal.SIGKILL, res.stderr


def test_stale_shallow_lock_in_the_mirror_is_removed(spec: SourceSpec, upstream: Upstream):
    checkout(spec, upstream, "v1.0.0")
    (spec.mirror_dir / "shallow.lock").write_text("")         # git killed during a fetch into the mirror
    assert checkout(spec, upstream, "v2.0.0").commit == upstream.tags["v2.0.0"]
    assert not (spec.mirror_dir / "shallow.lock").exists()


def test_stale_index_lock_in_a_work_tree_is_removed(spec: SourceSpec, upstream: Upstream):
    tree = checkout(spec, upstream, "v1.0.0").worktree
    for lock in (tree / ".git/index.lock", tree / ".git/modules/third_party/needed/index.lock"):
        lock.write_text("")                                   # git killed during a checkout
    checkout(spec, upstream, "v1.0.0")
    assert not (tree / ".git/index.lock").exists()
    assert not (tree / ".git/modules/third_party/needed/index.lock").exists()


def test_work_tree_killed_during_its_clone_is_made_again(spec: SourceSpec, upstream: Upstream):
    _killed_checkout(spec, upstream, after="clone", victim="src/a.cpp")
    result = checkout(spec, upstream, "v1.0.0")
    assert (result.worktree / "src/a.cpp").read_text() == gitrepos.A_CPP_V1
    assert (result.worktree / "third_party/needed/needed.txt").read_text() == "needed v1\n"
    assert [p.name for p in result.worktree.parent.iterdir() if p.name.startswith(".")] == []


def test_work_tree_killed_during_its_submodules_is_made_again(spec: SourceSpec, upstream: Upstream):
    _killed_checkout(spec, upstream, after="update", victim="third_party/needed/needed.txt")
    result = checkout(spec, upstream, "v1.0.0")
    assert (result.worktree / "third_party/needed/needed.txt").read_text() == "needed v1\n"
    assert result.submodules["third_party/needed"] == upstream.pins["needed"]
    assert checkout(spec, upstream, "v1.0.0").commit == upstream.tags["v1.0.0"]   # and complete: a no-op rerun


# SIGTERM to builder while git runs (here: git's post-checkout hook, during the clone) stops git and everything it
# started, as it does for a build: nothing of builder's keeps running after it.
TERMINATED_CHECKOUT = r"""
import json, signal, sys
from pathlib import Path
from builder import source
class Terminated(BaseException):
    pass
def on_sigterm(signum, frame):
    raise Terminated()
signal.signal(signal.SIGTERM, on_sigterm)
args = json.loads(sys.argv[1])
spec = source.SourceSpec(mirror=args["mirror"], cache_dir=Path(args["cache"]))
try:
    source.execute_checkout(source.plan_checkout(spec, "v1.0.0", args["commit"], ()))
except Terminated:
    sys.exit(143)
"""

HOOK = """#!/bin/sh
echo $$ > "$HOOK_PIDFILE"
exec sleep 300
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigterm_during_git_leaves_no_git_process(spec: SourceSpec, upstream: Upstream, tmp_path: Path):
    import time

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "post-checkout").write_text(HOOK)
    (hooks / "post-checkout").chmod(0o755)
    pidfile = tmp_path / "hook.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOOK_PIDFILE": str(pidfile), "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
    args = {"mirror": spec.mirror, "cache": str(spec.cache_dir), "commit": upstream.tags["v1.0.0"]}
    child = subprocess.Popen([sys.executable, "-c", TERMINATED_CHECKOUT, json.dumps(args)], env=env)
    pid = 0
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.is_file() and pidfile.read_text().strip()):
            assert child.poll() is None and time.monotonic() < deadline, "the hook never ran"
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 143
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "git's hook kept running after builder was terminated"
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if child.poll() is None:
            child.kill()


def test_a_rerun_that_changes_nothing_never_marks_the_tree_incomplete(spec: SourceSpec, upstream: Upstream,
                                                                       tmp_path: Path, monkeypatch):
    """A kill of a no-op rerun must not make the next run delete a tree another builder may be building in."""
    from builder import source

    patch = gitrepos.write_patch(tmp_path / "p" / "fix.patch")
    checkout(spec, upstream, "v1.0.0", patches=(patch,))
    marked: list[Path] = []
    monkeypatch.setattr(source, "_mark_incomplete", marked.append)
    checkout(spec, upstream, "v1.0.0", patches=(patch,))
    assert marked == []
    checkout(spec, upstream, "v1.0.0")                         # dropping the patch changes the tree
    assert marked
