"""Where a build's code runs, and how builder compiles and starts a program there.

A host build runs here. An Android build's verify runner is compiled with the compiler that build used (read from
its ``CMakeCache.txt``: ``CMAKE_CXX_COMPILER``, ``CMAKE_CXX_COMPILER_TARGET``, ``CMAKE_SYSROOT``), then started
according to what the runner *is* (its ELF machine and program interpreter), not what the build claims:

* a Linux ELF for this machine's architecture runs natively;
* a Linux ELF for another architecture runs under QEMU user mode (Debian ``qemu-user-static``:
  ``qemu-aarch64-static`` for arm64-v8a, ``qemu-arm-static`` for armeabi-v7a, ``qemu-i386-static`` for x86) with
  the cross sysroot ``/usr/<triple>``: real instructions of that architecture, emulated Linux user mode, **not a
  device** (this is what the stand-in NDK produces);
* an Android ELF (interpreter ``/system/bin/linker*``, what Google's NDK produces) runs on a device through
  ``adb`` when one is attached; otherwise :class:`DeviceNeeded` carries the exact ``adb`` commands to run.

Pure apart from reading files; the caller runs processes through ``builder.proc``.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import UsageError

# ELF e_machine -> (Debian multiarch triple, qemu-user binary, Android ABI)
MACHINES: Mapping[str, tuple[str, str, str]] = {
    "EM_AARCH64": ("aarch64-linux-gnu", "qemu-aarch64-static", "arm64-v8a"),
    "EM_ARM": ("arm-linux-gnueabihf", "qemu-arm-static", "armeabi-v7a"),
    "EM_386": ("i686-linux-gnu", "qemu-i386-static", "x86"),
    "EM_X86_64": ("x86_64-linux-gnu", "qemu-x86_64-static", "x86_64"),
}
_HOST_MACHINES = {"x86_64": "EM_X86_64", "amd64": "EM_X86_64", "aarch64": "EM_AARCH64", "arm64": "EM_AARCH64"}
DEVICE_DIR = "/data/local/tmp/builder-verify"


def host_abi(host_machine: str) -> str | None:
    """The Android ABI whose Linux ELF runs natively on a ``host_machine`` (platform.machine()); None if none does."""
    machine = _HOST_MACHINES.get(host_machine.lower())
    return MACHINES[machine][2] if machine is not None and machine in MACHINES else None


@dataclass(frozen=True)
class Toolchain:
    """How to compile a program against one build: the build's own C++ compiler and target flags."""

    cxx: str | None                     # None: the host's default compiler
    flags: tuple[str, ...] = ()          # --target=..., --sysroot=..., and the build's CMAKE_CXX_FLAGS
    abi: str | None = None               # the Android ABI of the build, if any
    build_dir: Path | None = None
    sources: tuple[Path, ...] = ()       # compiled into the program too (the NDK's vulkan_wrapper.cpp)

    @property
    def cross(self) -> bool:
        return self.abi is not None


@dataclass(frozen=True)
class Launch:
    """How to start a compiled program: argv prefix and what kind of run it is (said in every output)."""

    prefix: tuple[str, ...] = ()
    where: str = "this machine"
    needs_device: bool = False


HOST = Toolchain(cxx=None)


class DeviceNeeded(UsageError):
    """An Android-ABI program and no device: the message carries the adb commands that would run it."""


def read_cmake_cache(path: Path) -> dict[str, str]:
    """NAME:TYPE=VALUE lines of a CMakeCache.txt (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^([A-Za-z_][\w.+-]*)(?::[A-Z]+)?=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def toolchain_for(install_root: Path) -> Toolchain:
    """The compiler of the build that made ``install_root`` (``<build>/install``); the host's when the install is
    not a builder build folder's, or the build is not for Android."""
    cache_file = install_root.parent / "CMakeCache.txt"
    if not cache_file.is_file():
        return HOST
    cache = {**compiler_facts(install_root.parent), **read_cmake_cache(cache_file)}
    abi = cache.get("ANDROID_ABI") or None
    if abi is None:
        return HOST
    flags: list[str] = []
    if cache.get("CMAKE_CXX_COMPILER_TARGET"):
        flags.append(f"--target={cache['CMAKE_CXX_COMPILER_TARGET']}")
    if cache.get("CMAKE_SYSROOT"):
        flags.append(f"--sysroot={cache['CMAKE_SYSROOT']}")
    # The build's own compile flags (the NDK toolchain's -DANDROID ..., the stand-in's -DC10_MOBILE): the runner's
    # view of the headers must be the library's, or the two disagree on what a type looks like.
    flags += shlex.split(cache.get("CMAKE_CXX_FLAGS", ""))
    sources: list[Path] = []
    ndk = cache.get("ANDROID_NDK")
    if cache.get("USE_VULKAN") == "ON" and ndk:
        # cmake/VulkanDependencies.cmake compiles the NDK's vulkan_wrapper.cpp into its own target (not installed);
        # libtorch_cpu's Vulkan code calls through its function pointers, so a program linking libtorch needs it.
        vk = Path(ndk) / "sources" / "third_party" / "vulkan" / "src"
        if (vk / "common" / "vulkan_wrapper.cpp").is_file():
            sources.append(vk / "common" / "vulkan_wrapper.cpp")
            flags += [f"-I{vk / 'include'}", f"-I{vk / 'common'}"]
    return Toolchain(cxx=cache.get("CMAKE_CXX_COMPILER") or None, flags=tuple(flags), abi=abi,
                     build_dir=install_root.parent, sources=tuple(sources))


def compiler_facts(build_dir: Path) -> dict[str, str]:
    """CMAKE_CXX_COMPILER (and its --target / sysroot) as CMake recorded them in
    ``CMakeFiles/<version>/CMakeCXXCompiler.cmake``: a toolchain file (the NDK's, the stand-in's) sets them as plain
    variables, so they are not in CMakeCache.txt."""
    wanted = ("CMAKE_CXX_COMPILER", "CMAKE_CXX_COMPILER_TARGET", "CMAKE_SYSROOT")
    out: dict[str, str] = {}
    for path in sorted(build_dir.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")):
        for m in re.finditer(r'^set\((\w+) "([^"]*)"\)', path.read_text(encoding="utf-8", errors="replace"), re.M):
            if m.group(1) in wanted and m.group(2):
                out[m.group(1)] = m.group(2)
    return out


def elf_identity(path: Path) -> tuple[str, str | None]:
    """(e_machine, program interpreter or None) of an ELF file."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.segments import InterpSegment

    with path.open("rb") as fh:
        elf = ELFFile(fh)
        interp = None
        for seg in elf.iter_segments():
            if isinstance(seg, InterpSegment):
                interp = seg.get_interp_name()
        return str(elf["e_machine"]), interp


def launch_for(program: Path, *, host_machine: str, which: Mapping[str, str | None],
               sysroot_exists: Mapping[str, bool]) -> Launch:
    """How to start ``program`` here. ``which``: qemu binary / "adb" -> path or None;
    ``sysroot_exists``: "/usr/<triple>" -> bool (injected so this stays pure)."""
    machine, interp = elf_identity(program)
    if interp and interp.startswith("/system/bin/linker"):
        adb = which.get("adb")
        abi = MACHINES.get(machine, ("", "", machine))[2]
        if adb:
            return Launch((adb, "shell"), where=f"an Android device over adb ({abi})", needs_device=True)
        raise DeviceNeeded(f"{program.name} is an Android {abi} program and no adb is on PATH to run it on a device",
                           hint="connect a device and install adb (platform-tools), or build with a stand-in NDK "
                                "to run it under qemu; the commands: " + "; ".join(adb_commands(program, ())))
    if _HOST_MACHINES.get(host_machine.lower()) == machine:
        return Launch(where="this machine (native)")
    if machine not in MACHINES:
        raise UsageError(f"{program.name} is for {machine}, which builder cannot run here",
                         hint="verify on a device of that architecture")
    triple, qemu, abi = MACHINES[machine]
    path = which.get(qemu)
    if not path:
        raise UsageError(f"{program.name} is a Linux {abi} program and {qemu} is not installed to emulate it",
                         hint="apt-get install qemu-user-static")
    sysroot = f"/usr/{triple}"
    prefix = (path, "-L", sysroot) if sysroot_exists.get(sysroot) else (path,)
    return Launch(prefix, where=f"emulated Linux user mode ({Path(path).name}, {abi}), not a device")


def adb_commands(program: Path, args: Sequence[str], extra_files: Sequence[Path] = ()) -> list[str]:
    """The adb commands that run ``program`` with ``args`` on a device (files pushed to DEVICE_DIR)."""
    pushes = [f"adb push {f} {DEVICE_DIR}/" for f in (program, *extra_files)]
    remote = " ".join([f"{DEVICE_DIR}/{program.name}", *args])
    return [f"adb shell mkdir -p {DEVICE_DIR}", *pushes, f"adb shell 'cd {DEVICE_DIR} && {remote}'"]
