"""builder.models.platform for real: a program cross-compiled for an Android ABI with the stand-in NDK's compilers
runs under qemu-user (emulated Linux user mode, not a device), and an Android-ELF program without adb is refused
with the adb commands. Real PyTorch runs of the same path: tests/integration/test_real_mirror.py (opt-in)."""
from __future__ import annotations

import platform as host_platform
import shutil
from pathlib import Path

import pytest

from builder import proc
from builder.models import runner as runner_mod
from builder.models.platform import DeviceNeeded, toolchain_for

pytestmark = pytest.mark.integration

HELLO = '#include <cstdio>\nint main(int argc, char** argv) { std::printf("hello from %d args\\n", argc); return 0; }\n'
CASES = [("arm64-v8a", "aarch64-linux-gnu-g++", "qemu-aarch64-static"),
         ("armeabi-v7a", "arm-linux-gnueabihf-g++", "qemu-arm-static")]


def _fake_build(tmp_path: Path, abi: str, cxx: str) -> Path:
    """A build folder as builder leaves it: CMakeCache.txt beside install/."""
    build = tmp_path / f"android-{abi}"
    (build / "install").mkdir(parents=True)
    (build / "CMakeCache.txt").write_text(f"# test\nANDROID_ABI:UNINITIALIZED={abi}\n"
                                          f"CMAKE_CXX_COMPILER:FILEPATH={shutil.which(cxx)}\n")
    return build / "install"


@pytest.mark.parametrize("abi,cxx,qemu", CASES)
def test_cross_compiled_program_runs_under_qemu_user(tmp_path, abi, cxx, qemu):
    if not shutil.which(cxx) or not shutil.which(qemu):
        pytest.skip(f"needs {cxx} and {qemu} (Debian cross gcc, qemu-user-static)")
    toolchain = toolchain_for(_fake_build(tmp_path, abi, cxx))
    assert toolchain.abi == abi and toolchain.cross
    src, exe = tmp_path / "hello.cpp", tmp_path / "hello"
    src.write_text(HELLO)
    proc.run([toolchain.cxx, *toolchain.flags, str(src), "-o", str(exe)], check=True)
    launch = runner_mod.runner_launch(exe)
    assert launch.prefix[0].endswith(qemu) and "not a device" in launch.where
    out = proc.run([*launch.prefix, str(exe), "a", "b"], check=True).stdout
    assert "hello from 3 args" in out


def test_host_program_runs_natively(tmp_path):
    cxx = shutil.which("c++")
    if not cxx:
        pytest.skip("no C++ compiler")
    src, exe = tmp_path / "hello.cpp", tmp_path / "hello"
    src.write_text(HELLO)
    proc.run([cxx, str(src), "-o", str(exe)], check=True)
    assert runner_mod.runner_launch(exe).prefix == ()
    assert toolchain_for(tmp_path).cross is False


def test_android_elf_without_adb_names_the_adb_commands(tmp_path, monkeypatch):
    cxx = shutil.which("c++")
    if not cxx or host_platform.machine() != "x86_64":
        pytest.skip("needs the host C++ compiler on x86_64")
    src, exe = tmp_path / "hello.cpp", tmp_path / "hello"
    src.write_text(HELLO)
    # What Google's NDK produces: an ELF whose interpreter is Android's linker.
    proc.run([cxx, str(src), "-o", str(exe), "-Wl,--dynamic-linker=/system/bin/linker64"], check=True)
    monkeypatch.setattr(proc, "which", lambda name, *a, **k: None if name == "adb" else shutil.which(name))
    with pytest.raises(DeviceNeeded) as err:
        runner_mod.runner_launch(exe)
    assert "adb push" in str(err.value.hint) and "/data/local/tmp/builder-verify" in str(err.value.hint)
