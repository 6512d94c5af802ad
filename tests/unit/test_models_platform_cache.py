"""The compiler a toolchain file sets is in CMakeFiles/<version>/CMakeCXXCompiler.cmake, not in CMakeCache.txt
(seen on the real v1.13.1 arm64 build: the verify runner was compiled with the host's c++)."""
from __future__ import annotations

from builder.models.platform import toolchain_for


def test_compiler_from_cmake_cxx_compiler_file(tmp_path):
    build = tmp_path / "b"
    (build / "install").mkdir(parents=True)
    (build / "CMakeCache.txt").write_text("ANDROID_ABI:UNINITIALIZED=arm64-v8a\nCMAKE_CXX_FLAGS:STRING=-DC10_MOBILE\n")
    facts = build / "CMakeFiles" / "4.4.5" / "CMakeCXXCompiler.cmake"
    facts.parent.mkdir(parents=True)
    facts.write_text('set(CMAKE_CXX_COMPILER "/usr/bin/aarch64-linux-gnu-g++")\nset(CMAKE_CXX_COMPILER_ARG1 "")\n'
                     'set(CMAKE_CXX_COMPILER_TARGET "aarch64-none-linux-android21")\n')
    tc = toolchain_for(build / "install")
    assert tc.cxx == "/usr/bin/aarch64-linux-gnu-g++"
    assert tc.flags[:2] == ("--target=aarch64-none-linux-android21", "-DC10_MOBILE")
