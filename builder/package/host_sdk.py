"""Host SDK tarball: an install tree's include/, lib/ and share/cmake/, usable with find_package(Torch).

Unpack it anywhere and point CMake at it (``-DCMAKE_PREFIX_PATH=<dir>/libtorch`` or
``-DTorch_DIR=<dir>/libtorch/share/cmake/Torch``). PyTorch's TorchConfig.cmake finds its prefix
relative to itself; CMake files that hard-code the build machine's install path are reported.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from builder.errors import PackageError
from builder.hashing import sha256_file
from builder.package import archive

log = logging.getLogger("builder")

TORCH_CONFIG = "share/cmake/Torch/TorchConfig.cmake"
SDK_DIRS = ("include", "lib", "share/cmake")
_TORCH_LIB_NAMES = ("libtorch.a", "libtorch.so", "libtorch.dylib")


@dataclass(frozen=True)
class HostSdkResult:
    path: Path
    sha256: str
    top: str  # folder every entry is under, e.g. "libtorch"
    non_relocatable: tuple[str, ...] = ()  # cmake files naming the install folder's absolute path


def check_install(install_dir: Path) -> None:
    """PackageError naming everything find_package(Torch) would miss."""
    if not install_dir.is_dir():
        raise PackageError(f"install folder {install_dir} not found")
    problems = [f"{d}/ not found in {install_dir}" for d in SDK_DIRS if not (install_dir / d).is_dir()]
    if (install_dir / "share/cmake").is_dir() and not (install_dir / TORCH_CONFIG).is_file():
        problems.append(f"{TORCH_CONFIG} not found in {install_dir}")
    lib = install_dir / "lib"
    if lib.is_dir() and not any((lib / n).exists() for n in _TORCH_LIB_NAMES):
        problems.append(f"lib/libtorch.{{a,so,dylib}} not found in {install_dir}")
    if problems:
        raise PackageError(problems[0] if len(problems) == 1 else
                           "cannot package the host SDK:\n" + "\n".join(f"  - {p}" for p in problems))


def package_host_sdk(install_dir: Path, dest: Path, *, source_date_epoch: int,
                     top: str = "libtorch") -> HostSdkResult:
    """Reproducible ``dest`` (.tar.gz) of ``install_dir``'s SDK folders under ``top/``."""
    check_install(install_dir)
    entries: list[archive.Entry] = []
    for sub in SDK_DIRS:
        entries += archive.tree_entries(install_dir / sub, f"{top}/{sub}")
    archive.write_tar_gz(dest, entries, source_date_epoch=source_date_epoch)
    stale = non_relocatable_files(install_dir)
    for rel in stale:
        log.warning("host SDK: %s names the build machine's path %s; it may not relocate",
                    rel, install_dir)
    return HostSdkResult(dest, sha256_file(dest), top, stale)


def non_relocatable_files(install_dir: Path) -> tuple[str, ...]:
    """share/cmake files that contain ``install_dir``'s absolute path."""
    needles = {str(install_dir.absolute()).encode(), str(install_dir.resolve()).encode()}
    found = []
    for path in sorted((install_dir / "share" / "cmake").rglob("*.cmake")):
        data = path.read_bytes()
        if any(n in data for n in needles):
            found.append(path.relative_to(install_dir).as_posix())
    return tuple(found)
