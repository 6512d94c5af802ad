"""The release's JNI library per Android ABI: its own CMake project, configured as its build.gradle does.

PyTorch's JNI project (android/pytorch_android at 1.x) does not take libtorch's location as a parameter: its
CMakeLists.txt imports the static libraries from ``src/main/jniLibs/<abi>/`` and the headers from
``src/main/cpp/libtorch_include/<abi>/`` next to itself (android/common.sh links them there), and writes
``cmake_macros.h`` into its own source folder. builder never changes the shared source tree for a build, so each
ABI's JNI build gets a *source view*: a folder that mirrors the tree with symbolic links, except that the project
folder and the folders on the way to those two link points are real folders, so the links to *this* ABI's libtorch
install and the generated header live in the view (``<build>/jni/view``). CMake reads the release's own
CMakeLists.txt through it; ``../libs/fbjni`` and ``../../cmake`` resolve into the tree.

Pure except :func:`stage_view`, which writes the view (all-or-nothing: built beside, then renamed).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .recipe_jni import JniSpec

DefineValue = str | bool | int | Path   # a slice's defines (Path: CMAKE_INSTALL_PREFIX), the recipe's


@dataclass(frozen=True)
class JniLayout:
    """Where one ABI's JNI build lives, under its libtorch build folder."""

    root: Path

    @property
    def view(self) -> Path:
        return self.root / "view"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def install_dir(self) -> Path:
        return self.root / "install"

    def source_dir(self, spec: JniSpec) -> Path:
        return self.view / spec.project


MARKER = ".builder-view.json"   # what a view links to; an identical view is kept as it is


def layout(libtorch_build_dir: Path) -> JniLayout:
    return JniLayout(libtorch_build_dir / "jni")


def link_points(spec: JniSpec, abi: str, libtorch_install: Path) -> dict[PurePosixPath, Path]:
    """Tree-relative path -> what it points at in the view (this ABI's libtorch install)."""
    project = PurePosixPath(spec.project)
    return {project / spec.include_dir.format(abi=abi): libtorch_install / "include",
            project / spec.libs_dir.format(abi=abi): libtorch_install / "lib"}


def jni_defines(spec: JniSpec, *, lite: bool, abi_defines: Mapping[str, DefineValue],
                install_dir: Path) -> dict[str, DefineValue]:
    """The JNI project's defines: the ABI's toolchain defines (NDK, ABI, API level, build type, launcher ...), then
    the release's build.gradle arguments, then where to install."""
    out: dict[str, DefineValue] = dict(abi_defines)
    # Everything an Android NDK compiles is position-independent (its clang's default for *-linux-android), and the
    # JNI project is a shared library that links the static libVulkanWrapper.a it compiles itself
    # (cmake/VulkanDependencies.cmake). Said explicitly, so any compiler does the same: a no-op with Google's NDK;
    # with a gcc-based one (the stand-in) the x86_64 link otherwise fails (R_X86_64_PC32 in libVulkanWrapper.a).
    out["CMAKE_POSITION_INDEPENDENT_CODE"] = True
    out.update(spec.defines)
    if not lite:
        out.update(spec.full_defines)
    out["CMAKE_INSTALL_PREFIX"] = str(install_dir)
    return out


# Defines of a libtorch slice that describe the toolchain and build flavour, and so carry over to its JNI project.
TOOLCHAIN_DEFINES = ("CMAKE_TOOLCHAIN_FILE", "ANDROID_NDK", "ANDROID_ABI", "ANDROID_NATIVE_API_LEVEL",
                     "ANDROID_PLATFORM", "ANDROID_TOOLCHAIN", "ANDROID_CPP_FEATURES", "CMAKE_BUILD_TYPE",
                     "CMAKE_MAKE_PROGRAM", "CMAKE_C_COMPILER_LAUNCHER", "CMAKE_CXX_COMPILER_LAUNCHER",
                     "CMAKE_POLICY_VERSION_MINIMUM", "PYTHON_EXECUTABLE", "Python_EXECUTABLE",
                     "CMAKE_SHARED_LINKER_FLAGS", "ANDROID_SUPPORT_FLEXIBLE_PAGE_SIZES")   # the Python define's
# spelling is the release's (recipe data): both are carried, whichever the slice has


def toolchain_defines(slice_defines: Mapping[str, DefineValue]) -> dict[str, DefineValue]:
    return {k: v for k, v in slice_defines.items() if k in TOOLCHAIN_DEFINES}


def _marker(tree: Path, spec: JniSpec, abi: str, libtorch_install: Path) -> str:
    points = link_points(spec, abi, libtorch_install)
    return json.dumps({"tree": str(tree), "project": spec.project,
                       "points": {str(k): str(v) for k, v in points.items()}}, sort_keys=True)


def view_current(tree: Path, spec: JniSpec, abi: str, libtorch_install: Path, view: Path) -> bool:
    """True when ``view`` is already this view (then what configure wrote into it is still there)."""
    marker = view / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == _marker(tree, spec, abi, libtorch_install)


def stage_view(tree: Path, spec: JniSpec, abi: str, libtorch_install: Path, view: Path) -> Path:
    """Write the source view for one ABI (see the module docstring); returns the project folder in it."""
    points = link_points(spec, abi, libtorch_install)
    marker = _marker(tree, spec, abi, libtorch_install)
    if view_current(tree, spec, abi, libtorch_install, view):
        return view / spec.project   # the same view: keep what configure wrote into it (cmake_macros.h)
    real = {PurePosixPath(spec.project)} | {a for p in points for a in p.parents if str(a) != "."}
    tmp = view.with_name(view.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _mirror(tree, tmp, PurePosixPath("."), real, points)
    for point, dest in points.items():      # their folders are real (or new) folders of the view
        (tmp / point).parent.mkdir(parents=True, exist_ok=True)
        (tmp / point).symlink_to(dest, target_is_directory=True)
    (tmp / MARKER).write_text(marker, encoding="utf-8")
    shutil.rmtree(view, ignore_errors=True)
    os.replace(tmp, view)
    return view / spec.project


def _mirror(tree: Path, view: Path, rel: PurePosixPath, real: set[PurePosixPath],
            points: Mapping[PurePosixPath, Path]) -> None:
    """Mirror tree/rel into view/rel: real folders on the way to the link points, links for everything else."""
    source = tree / rel
    for entry in sorted(source.iterdir()):
        child = rel / entry.name if str(rel) != "." else PurePosixPath(entry.name)
        target = view / child
        if child in points or (entry.parent / f"{entry.name}.in").is_file():
            continue     # a link point, or a configure_file() output: written in the view, never into the tree
        if child in real and entry.is_dir():
            target.mkdir()
            _mirror(tree, view, child, real, points)
        else:
            target.symlink_to(entry)
