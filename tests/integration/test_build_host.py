"""Host build of mini-torch through the CLI: SDK tarball + manifest (submodule commits, every define), reproducible."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from builder.plan import STAMP
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
    plan = json.loads(run([*args, "--json"], env).stdout)
    sdk = Path(plan["slices"][0]["artifact"])
    assert sdk.parent == out and sdk.name.startswith(f"libtorch-lite-host-{up.tag}-")   # named by its key
    manifest = json.loads((out / (sdk.name + ".manifest.json")).read_text())
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


def _generated(install: Path) -> str:
    """The build-time and the configure-time generated header (they say the same when all is well)."""
    texts = {(install / "share" / "minitorch" / name).read_text() for name in ("generated.h", "config.h")}
    assert len(texts) == 1, texts
    return texts.pop()


def test_resumed_build_regenerates_in_tree_sources_another_configuration_wrote(tmp_path):
    """PyTorch writes generated sources into the shared work tree (torch/csrc/autograd/generated). A build folder
    that resumes after another configuration built must not compile and install that configuration's files."""
    up = make_minitorch(tmp_path / "up")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    base = ["host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(tmp_path / "out")]
    alpha, beta = [*base, "-D", "MINITORCH_GEN=alpha"], [*base, "-D", "MINITORCH_GEN=beta"]
    run(alpha, env)
    plan_a = json.loads(run([*alpha, "--json"], env).stdout)
    tree, slice_a = Path(plan_a["source"]), plan_a["slices"][0]
    build_a, install_a = Path(slice_a["build_dir"]), Path(slice_a["install_dir"])
    assert '"alpha"' in _generated(install_a)
    (build_a / STAMP).unlink()                       # as if alpha had been interrupted before its install
    shutil.rmtree(install_a)

    run(beta, env)                                   # a fresh folder regenerates: beta's file is in the tree now
    slice_b = json.loads(run([*beta, "--json"], env).stdout)["slices"][0]
    assert '"beta"' in _generated(Path(slice_b["install_dir"]))
    assert '"beta"' in (tree / "generated" / "generated.h").read_text()

    res = run(alpha, env)                            # alpha resumes in its old folder
    assert '"alpha"' in _generated(install_a)
    assert "last built by another configuration" in res.stderr
    assert '"alpha"' in (tree / "generated" / "generated.h").read_text()
    res = run(alpha, env)                            # and is a no-op again
    assert "up to date" in res.stderr + res.stdout


def test_second_build_in_the_same_tree_waits_for_the_first(tmp_path):
    """Two configurations building at once in one work tree would both write its generated files: the second
    builder waits for the first one's build lock, says so, and builds its own configuration after."""
    import threading

    from filelock import FileLock

    from builder import gitcmd, intree

    up = make_minitorch(tmp_path / "up")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    base = ["host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(tmp_path / "out")]
    run([*base, "-D", "MINITORCH_GEN=alpha"], env)
    beta = [*base, "-D", "MINITORCH_GEN=beta"]
    plan = json.loads(run([*beta, "--json"], env).stdout)
    tree, build_b = Path(plan["source"]), Path(plan["slices"][0]["build_dir"])
    lock = FileLock(str(gitcmd.git_dir(tree) / intree.LOCK_NAME))
    lock.acquire()                                    # "the first builder" is building
    try:
        proc = subprocess.Popen([sys.executable, "-m", "builder", *beta], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        waiting = threading.Event()
        lines: list[str] = []

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if "waiting for another builder build" in line:
                    waiting.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert waiting.wait(120), "".join(lines)
        time.sleep(1.0)
        assert proc.poll() is None                    # still waiting
        assert not (build_b / ".ninja_log").exists()  # and has not started Ninja
    finally:
        lock.release()
    assert proc.wait(timeout=600) == 0, "".join(lines)
    reader.join(10)
    assert '"beta"' in _generated(Path(plan["slices"][0]["install_dir"]))
