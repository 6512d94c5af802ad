"""Opt-in: builder's plans against the real PyTorch v2.6.0 tree (issue 19).

Needs an upstream-shaped v2.6.0 mirror: Debian trixie's pytorch_2.6.0+dfsg.orig.tar.xz as the pytorch commit, with
the submodules a mobile build compiles at the v2.6.0 pins (docs/real_pytorch_notes.md section 7 says how it was made
and from which repositories), given as BUILDER_REAL_V260_MIRROR. Configures the real tree with exactly the plan's argv
and environment for the host and for Android arm64-v8a (STAND-IN NDK: Debian's cross compiler, glslc and
libvulkan-dev; tests/fixtures/standin_ndk.py). ~1-2 min each on 2 cores. Skipped with the reason when any of that is
absent; never in CI.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from builder import proc, source
from builder.cli.app import machine
from builder.config import BuildRequest, resolve
from builder.models.platform import read_cmake_cache
from builder.plan import Plan, plan
from builder.recipes import load_recipe
from tests.fixtures.standin_ndk import make_standin_ndk, vulkan_available

MIRROR = Path(os.environ.get("BUILDER_REAL_V260_MIRROR", "/work/real/mirror-260")).expanduser()
pytestmark = [pytest.mark.integration, pytest.mark.real_pytorch,
              pytest.mark.skipif(not (MIRROR / "pytorch" / "pytorch.git").is_dir(),
                                 reason=f"no real PyTorch v2.6.0 mirror at {MIRROR} (BUILDER_REAL_V260_MIRROR)")]
TAG = "v2.6.0"


def _plan(tmp_path: Path, **request: object) -> Plan:
    env = machine()
    env = replace(env, environ={**env.environ, "BUILDER_CACHE_DIR": str(tmp_path / "cache")}, cwd=tmp_path)
    req = BuildRequest(tag=TAG, mirror=f"file://{MIRROR}/", allow_unpinned=True, out=tmp_path / "out",
                       cache="none", **request)   # type: ignore[arg-type]
    return plan(resolve(req, env))


def _android(tmp_path: Path, abi: str = "arm64-v8a") -> Plan:
    missing = vulkan_available()
    if missing:
        pytest.skip(missing)
    ndk = make_standin_ndk(tmp_path / "ndk", "21.4.7075529", vulkan=True)
    return _plan(tmp_path, target="android", abis=(abi,), ndk=str(ndk), aar=False)


def _configure(the_plan: Plan) -> dict[str, str]:
    source.execute_checkout([s for s in the_plan.steps if s.kind == "source"])
    (command,) = next(s for s in the_plan.steps if s.kind == "configure").commands()
    python = [a.split("=", 1)[1] for a in command.argv if a.startswith("-DPython_EXECUTABLE")]   # the release's
    assert len(python) == 1 and not any(a.startswith("-DPYTHON_EXECUTABLE") for a in command.argv)   # spelling
    result = proc.run_command(command, check=False, timeout=1200)
    text = result.stdout + result.stderr
    assert result.returncode == 0 and "CMake Error" not in text, text[-4000:]
    cache = read_cmake_cache(Path(the_plan.slices[0].build_dir) / "CMakeCache.txt")
    assert cache["Python_EXECUTABLE"] == python[0]        # CMake used the Python builder chose, not one on PATH
    return cache


def test_plans_list_the_recipes_submodules(tmp_path):
    recipe = load_recipe(TAG)
    host = _plan(tmp_path / "h", target="host").to_json()
    assert set(host["submodules"]) == set(recipe.target("host").submodules)
    android = _android(tmp_path / "a").to_json()
    assert set(android["submodules"]) == (set(recipe.target("android").submodules)
                                          | {"third_party/VulkanMemoryAllocator"})
    assert android["slices"][0]["defines"]["USE_VULKAN"] == "ON"


def test_host_configures_the_real_tree_with_the_plans_argv(tmp_path):
    cache = _configure(_plan(tmp_path, target="host"))
    assert (cache["BUILD_LITE_INTERPRETER"], cache["USE_XNNPACK"], cache["USE_VULKAN"]) == ("ON", "ON", "OFF")


def test_android_arm64_configures_the_real_tree_with_the_plans_argv(tmp_path):
    if not shutil.which("aarch64-linux-gnu-g++"):
        pytest.skip("no aarch64-linux-gnu-g++ (Debian cross compiler) for the stand-in NDK")
    cache = _configure(_android(tmp_path))
    assert (cache["USE_VULKAN"], cache["USE_NNPACK"], cache["BUILD_LITE_INTERPRETER"]) == ("ON", "ON", "ON")
