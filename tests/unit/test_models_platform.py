"""builder.models.platform without processes: a build's toolchain read from its CMakeCache.txt."""
from __future__ import annotations

from builder.models.platform import HOST, adb_commands, read_cmake_cache, toolchain_for


def _build(tmp_path, cache: str):
    (tmp_path / "install").mkdir(parents=True)
    (tmp_path / "CMakeCache.txt").write_text(cache)
    return tmp_path / "install"


def test_android_build_compiles_with_its_own_compiler_flags_and_vulkan_wrapper(tmp_path):
    ndk = tmp_path / "ndk"
    wrapper = ndk / "sources/third_party/vulkan/src/common/vulkan_wrapper.cpp"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text("")
    install = _build(tmp_path / "b", "# c\nANDROID_ABI:UNINITIALIZED=arm64-v8a\n"
                     "CMAKE_CXX_COMPILER:FILEPATH=/usr/bin/aarch64-linux-gnu-g++\n"
                     "CMAKE_CXX_COMPILER_TARGET:STRING=aarch64-linux-android21\n"
                     "CMAKE_CXX_FLAGS:STRING= -DANDROID -DC10_MOBILE -isystem '/x y/include'\n"
                     f"USE_VULKAN:BOOL=ON\nANDROID_NDK:UNINITIALIZED={ndk}\n")
    tc = toolchain_for(install)
    assert tc.cross and tc.abi == "arm64-v8a" and tc.cxx == "/usr/bin/aarch64-linux-gnu-g++"
    assert tc.flags[:5] == ("--target=aarch64-linux-android21", "-DANDROID", "-DC10_MOBILE", "-isystem", "/x y/include")
    assert tc.sources == (wrapper,)


def test_host_builds_and_foreign_installs_use_the_host_compiler(tmp_path):
    assert toolchain_for(_build(tmp_path / "h", "CMAKE_CXX_COMPILER:FILEPATH=/usr/bin/c++\n")) == HOST
    (tmp_path / "bare").mkdir()
    assert toolchain_for(tmp_path / "bare") == HOST


def test_cache_lines_and_adb_commands(tmp_path):
    cache = tmp_path / "CMakeCache.txt"
    cache.write_text("//comment\nA:BOOL=ON\nB=x=y\n\n# c\n")
    assert read_cmake_cache(cache) == {"A": "ON", "B": "x=y"}
    cmds = adb_commands(tmp_path / "runner", ("m.ptl",))
    assert cmds[0] == "adb shell mkdir -p /data/local/tmp/builder-verify" and cmds[-1].endswith("runner m.ptl'")
