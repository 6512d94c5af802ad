"""Host build of mini-torch through the CLI: SDK tarball + manifest (submodule commits, every define), reproducible."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch

pytestmark = pytest.mark.integration


def run(args, env):
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return res


def test_host_build_writes_sdk_and_manifest(tmp_path):
    up = make_minitorch(tmp_path / "up")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "out"
    args = ["host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(out)]
    run(args, env)
    sdk = out / f"libtorch-lite-host-{up.tag}.tar.gz"
    manifest = json.loads((out / (sdk.name + ".manifest.json")).read_text())
    plan = json.loads(run([*args, "--json"], env).stdout)
    assert manifest["commit"] == up.commit
    assert list(manifest["submodules"]) == ["third_party/fmt-mini"]
    assert manifest["defines"] == plan["slices"][0]["defines"]       # every define actually passed
    assert manifest["artifact"]["sha256"] == hashlib.sha256(sdk.read_bytes()).hexdigest()
    with tarfile.open(sdk) as tar:
        names = tar.getnames()
    assert "libtorch/lib/libtorch_cpu.a" in names and "libtorch/share/cmake/Torch/TorchConfig.cmake" in names
    first = hashlib.sha256(sdk.read_bytes()).hexdigest()
    sdk.unlink()
    run(args, env)                                                   # repackaged from the same build
    assert hashlib.sha256(sdk.read_bytes()).hexdigest() == first
