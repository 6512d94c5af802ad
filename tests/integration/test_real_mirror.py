"""Opt-in: the real PyTorch v1.13.1 mirror made by benchmarks/realtorch_mirror.py (issue 4).

Checks builder's checkout and --dry-run plan against the real tree: only the submodules the host mobile build
needs (minus the system libraries and the skipped pocketfft) are fetched, the tag resolves to the mirror's
commit, the release's patches apply. Skipped when the mirror is absent (it is never made in CI).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from builder import source
from builder.cli.app import machine
from builder.config import BuildRequest, Environment, resolve
from builder.plan import plan

MIRROR = Path(os.environ.get("BUILDER_REAL_MIRROR", "~/.cache/builder-bench/mirror")).expanduser()
pytestmark = [pytest.mark.integration, pytest.mark.real_pytorch,
              pytest.mark.skipif(not (MIRROR / "MANIFEST.json").is_file(),
                                 reason=f"no real PyTorch mirror at {MIRROR}: python benchmarks/realtorch_mirror.py")]

SYSTEM_LIBS = ("xnnpack", "cpuinfo", "pthreadpool")
EXPECTED = {"third_party/FP16", "third_party/FXdiv", "third_party/flatbuffers", "third_party/fmt", "third_party/psimd"}


def _request(tmp_path: Path) -> tuple[BuildRequest, Environment]:
    env = machine()
    env = replace(env, environ={**env.environ, "BUILDER_CACHE_DIR": str(tmp_path / "cache")}, cwd=tmp_path)
    req = BuildRequest(target="host", tag="v1.13.1", mirror=f"file://{MIRROR}/", allow_unpinned=True,
                       system_libs=SYSTEM_LIBS, skip_submodules=("third_party/pocketfft",), out=tmp_path / "out",
                       cache="none")
    return req, env


def test_real_tree_checkout_fetches_only_what_the_mobile_build_needs(tmp_path):
    req, env = _request(tmp_path)
    the_plan = plan(resolve(req, env))
    as_json = the_plan.to_json()
    assert set(as_json["submodules"]) == EXPECTED
    defines = as_json["slices"][0]["defines"]
    assert defines["USE_SYSTEM_XNNPACK"] == "ON" and defines["BUILD_LITE_INTERPRETER"] == "ON"
    result = source.execute_checkout([s for s in the_plan.steps if s.kind == "source"])
    tree = result.worktree
    manifest = json.loads((MIRROR / "MANIFEST.json").read_text())
    import git

    assert git.Repo(tree).head.commit.hexsha == manifest["pytorch"]["commit"]     # the tag's commit, verified
    populated = {p for p in source._gitmodule_paths(tree) if (tree / p).is_dir() and any((tree / p).iterdir())}
    assert populated == EXPECTED                                   # 5 of the 41 listed in .gitmodules
    assert len(source._gitmodule_paths(tree)) == 41
    assert (tree / "scripts/build_mobile.sh").is_file()
    # the release's patches are applied exactly once: a second checkout changes nothing
    again = source.execute_checkout([s for s in the_plan.steps if s.kind == "source"])
    assert again.worktree == tree
