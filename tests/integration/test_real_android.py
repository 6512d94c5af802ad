"""Opt-in: builder's Android plan against the real PyTorch v1.13.1 tree (issue 15).

Needs an upstream-shaped mirror holding the submodules the Android configuration compiles at the commits v1.13.1
pins (docs/real_pytorch_notes.md, "The Android mirror": how it was made), given as BUILDER_REAL_ANDROID_MIRROR, plus
Debian's cross compilers, glslc and libvulkan-dev for the STAND-IN NDK (tests/fixtures/standin_ndk.py: Linux ELF
outputs, not loadable on a phone). Configures the real tree with exactly the plan's argv and environment (~2 min).
Skipped with the reason when any of that is absent; never in CI.
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
from builder.plan import plan
from tests.fixtures.standin_ndk import make_standin_ndk, vulkan_available

MIRROR = Path(os.environ.get("BUILDER_REAL_ANDROID_MIRROR", "/work/real/mirror")).expanduser()
pytestmark = [pytest.mark.integration, pytest.mark.real_pytorch,
              pytest.mark.skipif(not (MIRROR / "pytorch" / "pytorch.git").is_dir(),
                                 reason=f"no real PyTorch Android mirror at {MIRROR} (BUILDER_REAL_ANDROID_MIRROR)")]

# What v1.13.1's Android configuration compiles (recipes/v1.13.1.toml cites the CMake lines for each); fbjni
# (android/libs/fbjni) joins only when the plan makes an AAR, and these plans are libtorch's (aar=False).
ANDROID_SUBMODULES = {"third_party/FP16", "third_party/FXdiv", "third_party/NNPACK",
                      "third_party/VulkanMemoryAllocator", "third_party/XNNPACK", "third_party/cpuinfo",
                      "third_party/eigen", "third_party/flatbuffers", "third_party/fmt", "third_party/pocketfft",
                      "third_party/psimd", "third_party/pthreadpool"}


def _plan(tmp_path: Path, abi: str = "arm64-v8a"):
    missing = vulkan_available()
    if missing:
        pytest.skip(missing)
    ndk = make_standin_ndk(tmp_path / "ndk", "19.2.5345600", vulkan=True)
    env = machine()
    env = replace(env, environ={**env.environ, "BUILDER_CACHE_DIR": str(tmp_path / "cache")}, cwd=tmp_path)
    req = BuildRequest(target="android", tag="v1.13.1", abis=(abi,), ndk=str(ndk), mirror=f"file://{MIRROR}/",
                       allow_unpinned=True, out=tmp_path / "out", cache="none", aar=False)   # libtorch's configuration
    return plan(resolve(req, env))


def test_android_plan_lists_every_submodule_the_configuration_compiles(tmp_path):
    as_json = _plan(tmp_path).to_json()
    assert set(as_json["submodules"]) == ANDROID_SUBMODULES
    defines = as_json["slices"][0]["defines"]
    assert defines["USE_VULKAN"] == "ON" and defines["ANDROID_ABI"] == "arm64-v8a"


@pytest.mark.parametrize("abi,compiler", [("arm64-v8a", "aarch64-linux-gnu-g++"), ("x86_64", "c++")])
def test_real_tree_configures_with_exactly_the_plans_argv(tmp_path, abi, compiler):
    if not shutil.which(compiler):
        pytest.skip(f"no {compiler} (Debian cross compiler) for the stand-in NDK")
    the_plan = _plan(tmp_path, abi)
    source.execute_checkout([s for s in the_plan.steps if s.kind == "source"])
    (command,) = next(s for s in the_plan.steps if s.kind == "configure").commands()
    result = proc.run_command(command, check=False, timeout=900)
    text = result.stdout + result.stderr
    assert result.returncode == 0 and "CMake Error" not in text, text[-3000:]
    from builder.models.platform import read_cmake_cache

    cache = read_cmake_cache(Path(the_plan.slices[0].build_dir) / "CMakeCache.txt")
    assert (cache["USE_VULKAN"], cache["USE_NNPACK"], cache["BUILD_LITE_INTERPRETER"]) == ("ON", "ON", "ON")
