"""Build only what the install needs (builder.install_graph) on mini-torch: its `all_microkernels` OBJECT library
(like XNNPACK's in v1.13.1) is never compiled, the install is the same files as after building `all`, and a resumed
or pre-file-API build folder still builds only what the install needs."""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder import install_graph
from builder.plan import STAMP
from tests.fixtures.gitrepos import isolate_git
from tests.fixtures.minitorch import make_minitorch

pytestmark = pytest.mark.integration


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "builder", *args], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return res


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def microkernel_objects(build: Path) -> list[Path]:
    return list((build / "CMakeFiles" / "all_microkernels.dir").rglob("*.o"))


@pytest.fixture
def host_build(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    up = make_minitorch(tmp_path / "up")
    env = {**os.environ, **isolate_git(tmp_path / "home"), "BUILDER_RECIPES_DIR": str(up.recipes),
           "BUILDER_CACHE_DIR": str(tmp_path / "cache")}
    args = ["host", "--tag", up.tag, "--mirror", up.mirror, "--cache", "none", "--out", str(tmp_path / "out")]
    run(args, env)
    build = Path(json.loads(run([*args, "--json"], env).stdout)["slices"][0]["build_dir"])
    return args, env, build


def test_install_is_the_same_files_as_with_all(host_build: tuple[list[str], dict[str, str], Path]) -> None:
    args, env, build = host_build
    assert microkernel_objects(build) == []                      # the unused OBJECT library was not compiled
    plan = run([*args, "--dry-run"], env).stdout
    assert "--target pytorch_jni_lite torch torch_cpu -j" in plan and "#   torch_cpu: install(TARGETS) to lib" in plan
    ours = files(build / "install")
    cmake = shutil.which("cmake") or "cmake"
    subprocess.run([cmake, "--build", str(build)], check=True, capture_output=True)        # now `all`
    assert microkernel_objects(build)
    subprocess.run([cmake, "--install", str(build), "--prefix", str(build / "with-all")], check=True,
                   capture_output=True)
    theirs = files(build / "with-all")
    assert ours.keys() == theirs.keys()
    assert [n for n in ours if not filecmp.cmp(ours[n], theirs[n], shallow=False)] == []


def test_resumed_and_old_folders_build_only_what_the_install_needs(
        host_build: tuple[list[str], dict[str, str], Path]) -> None:
    args, env, build = host_build
    (build / STAMP).unlink()                                     # an interrupted run: resumed
    shutil.rmtree(build / "install")
    shutil.rmtree(build / ".cmake")                              # configured before builder asked CMake's file API
    run(args, env)
    assert install_graph.has_reply(build) and microkernel_objects(build) == []
    assert (build / "install" / "lib" / "libtorch_cpu.a").is_file()
