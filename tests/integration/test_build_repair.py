"""A build folder or work tree a kill (or a full disk) left half written is repaired by the next run of the same
command: the in-tree record is written only after configure succeeded, a cut CMakeCache.txt is configured again."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.plan import STAMP
from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch

pytestmark = pytest.mark.integration

# Run by CMake mid-configure (minitorch's MINITORCH_CONFIGURE_HOOK): SIGKILL builder (CMake's parent) and CMake.
KILL_BUILDER_AND_CMAKE = """#!/bin/sh
builder=$(awk '{print $4}' /proc/$PPID/stat)
kill -9 "$builder" "$PPID"
"""


def run(args, env, ok: bool = True):
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    if ok:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def mini(tmp_path):
    up = make_minitorch(tmp_path / "up")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    base = ["host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(tmp_path / "out")]
    return env, base


def _slice(args, env) -> dict:
    return json.loads(run([*args, "--json"], env).stdout)["slices"][0]


def test_kill_during_the_reconfigure_after_an_in_tree_clean(mini, tmp_path):
    env, base = mini
    alpha, beta = [*base, "-D", "MINITORCH_GEN=alpha"], [*base, "-D", "MINITORCH_GEN=beta"]
    run(alpha, env)
    slice_a = _slice(alpha, env)
    (Path(slice_a["build_dir"]) / STAMP).unlink()          # alpha interrupted before its install
    shutil.rmtree(slice_a["install_dir"])
    run(beta, env)                                         # beta's generated files are in the tree now
    hook = tmp_path / "kill.sh"
    hook.write_text(KILL_BUILDER_AND_CMAKE)
    hook.chmod(0o755)
    killed = run(alpha, {**env, "MINITORCH_CONFIGURE_HOOK": str(hook)}, ok=False)  # cleans, reconfigures: killed
    assert killed.returncode == -9, killed.stderr
    run(alpha, env)                                        # the same command repairs it
    assert '"alpha"' in (Path(slice_a["install_dir"]) / "share/minitorch/config.h").read_text()


def test_cut_cmake_cache_is_configured_again(mini):
    env, base = mini
    run(base, env)
    slice_ = _slice(base, env)
    build = Path(slice_["build_dir"])
    (build / STAMP).unlink()                               # interrupted after a configure whose cache was cut
    shutil.rmtree(slice_["install_dir"])
    cache = build / "CMakeCache.txt"
    cache.write_text("".join(cache.read_text().splitlines(keepends=True)[:20]))
    run(base, env)
    assert (Path(slice_["install_dir"]) / "lib/libtorch_cpu.a").is_file()


def test_unpinned_build_is_keyed_by_the_commit_it_built(mini, tmp_path):
    """A tag moved upstream, built with --allow-unpinned, then moved back: the pinned build is not "up to date"."""
    import git

    env, base = mini
    work = git.Repo(tmp_path / "up" / "work" / "pytorch")
    bare = str(tmp_path / "up" / "github" / "pytorch" / "pytorch.git")
    pinned = work.head.commit.hexsha
    (Path(work.working_tree_dir or "") / "src/torch.cpp").write_text("int minitorch_torch_anchor() { return 2; }\n")
    work.git.add("src/torch.cpp")
    work.git.commit("-q", "-m", "moved", env={**os.environ, **isolate_git(tmp_path / "home")})
    work.git.tag("-f", "v0.1.0")
    work.git.push("-q", "-f", bare, "refs/tags/v0.1.0")
    unpinned = run([*base, "--allow-unpinned"], env)
    assert "building commit" in unpinned.stderr
    work.git.tag("-f", "v0.1.0", pinned)
    work.git.push("-q", "-f", bare, "refs/tags/v0.1.0")
    again = run(base, env)
    assert "up to date" not in again.stderr, again.stderr
    assert "host: built" in again.stderr



def test_build_with_stderr_in_a_file_writes_progress_lines(mini, tmp_path):
    env, base = mini
    with open(tmp_path / "stderr.log", "w") as stderr:      # not a terminal, as in CI
        res = subprocess.run([sys.executable, "-m", "builder", *base], env={**env, "BUILDER_PROGRESS_INTERVAL": "0.2"},
                             stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=600, check=False)
    text = (tmp_path / "stderr.log").read_text()
    assert res.returncode == 0, text
    assert "] host: configure host" in text and "] host: build host" in text
