"""The STAND-IN NDK's toolchain file really builds a CMake project for all four Android ABIs.

It is not Google's NDK (see tests/fixtures/standin_ndk.py): the outputs are Linux ELF shared
objects for the right machine, which is what this checks.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from builder import proc
from builder.toolchains.ndk import inspect_ndk, parse_ndk_request, select_ndk
from tests.fixtures.standin_ndk import ABI_ELF, make_standin_ndk

pytestmark = pytest.mark.skipif(not (proc.which("cmake") and proc.which("ninja")), reason="needs cmake and ninja")

CMAKELISTS = """cmake_minimum_required(VERSION 3.18)
project(tiny C CXX)
if(NOT ANDROID OR NOT ANDROID_ABI OR NOT ANDROID_PLATFORM_LEVEL EQUAL 24)
  message(FATAL_ERROR "toolchain did not set ANDROID/ANDROID_ABI/ANDROID_PLATFORM_LEVEL")
endif()
add_library(tiny SHARED tiny.cpp)
target_compile_definitions(tiny PRIVATE TINY_ABI="${ANDROID_ABI}")
"""

SOURCE = """#ifndef ANDROID
#error "ANDROID must be defined by the toolchain"
#endif
#if __ANDROID_API__ != 24
#error "__ANDROID_API__ must follow ANDROID_PLATFORM"
#endif
#include <string>
extern "C" const char* tiny_abi() { static std::string s(TINY_ABI); return s.c_str(); }
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("standin")
    ndk = make_standin_ndk(root / "ndk", "21.4.7075529")
    src = root / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(CMAKELISTS)
    (src / "tiny.cpp").write_text(SOURCE)
    return ndk, src


def _build(ndk: Path, src: Path, out: Path, abi: str, *extra: str) -> proc.Result:
    toolchain = ndk / "build/cmake/android.toolchain.cmake"
    configure = proc.run(["cmake", "-S", src, "-B", out, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                          f"-DANDROID_ABI={abi}", "-DANDROID_PLATFORM=android-24", *extra], check=False)
    if configure.returncode != 0:
        return configure
    return proc.run(["cmake", "--build", out], check=False)


@pytest.mark.parametrize("abi", sorted(ABI_ELF))
def test_builds_shared_library_for_abi(project, tmp_path, abi):
    ndk, src = project
    result = _build(ndk, src, tmp_path / abi, abi)
    assert result.returncode == 0, result.stdout + result.stderr
    machine, bits = ABI_ELF[abi]
    with open(tmp_path / abi / "libtiny.so", "rb") as fh:
        elf = ELFFile(fh)
        assert elf["e_type"] == "ET_DYN"
        assert elf["e_machine"] == machine
        assert elf.elfclass == bits


def test_clang_target_path(project, tmp_path):
    if not proc.which("clang") or not proc.which("ld.lld"):
        pytest.skip("needs clang and lld")
    ndk, src = project
    result = _build(ndk, src, tmp_path / "b", "arm64-v8a", "-DANDROID_STANDIN_COMPILER=clang")
    assert result.returncode == 0, result.stdout + result.stderr
    cache = (tmp_path / "b" / "CMakeCache.txt").read_text()
    assert "clang" in cache
    with open(tmp_path / "b" / "libtiny.so", "rb") as fh:
        assert ELFFile(fh)["e_machine"] == "EM_AARCH64"


@pytest.mark.parametrize("flag, message", [
    ("-DANDROID_ABI=mips", "Invalid Android ABI: mips"),
    ("-DANDROID_STL=gnustl_static", "is not a valid STL"),
    ("-DANDROID_PLATFORM=android-latest", "Invalid Android platform"),
])
def test_rejects_bad_values_like_the_real_one(project, tmp_path, flag, message):
    ndk, src = project
    toolchain = ndk / "build/cmake/android.toolchain.cmake"
    args = ["cmake", "-S", src, "-B", tmp_path / "b", "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", flag]
    if "ANDROID_ABI" not in flag:
        args.append("-DANDROID_ABI=x86_64")
    result = proc.run(args, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_native_api_level_alias(project, tmp_path):
    ndk, src = project
    toolchain = ndk / "build/cmake/android.toolchain.cmake"
    result = proc.run(["cmake", "-S", src, "-B", tmp_path / "b", "-G", "Ninja",
                       f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-DANDROID_ABI=x86",
                       "-DANDROID_NATIVE_API_LEVEL=24"], check=False)
    assert result.returncode == 0, result.stderr


def test_builder_selects_the_standin(project):
    ndk, _ = project
    info = inspect_ndk(ndk)
    chosen, _ = select_ndk(parse_ndk_request(str(ndk)), (info,), *_ranges(), False)
    assert chosen.revision == info.revision


def _ranges():
    from packaging.specifiers import SpecifierSet
    return SpecifierSet(">=21"), SpecifierSet("~=21.4")
