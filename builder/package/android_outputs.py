"""Writers for the AAR's parts, called by ``builder.execute`` for the steps builder.targets.android_aar plans:
stripped libraries per ABI, classes.jar + sources jar, the AAR (with the release's res/ and an R.txt), the Maven
folder. Every output is written beside its final name and renamed (builder.atomic / archive), reproducibly.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from builder import atomic, proc
from builder.errors import PackageError, ToolchainError
from builder.package import aar as aar_mod
from builder.package.java import arg_quote, java_sources, write_jar

log = logging.getLogger("builder")


def cmake_strip(build_dir: Path) -> str:
    """The strip tool of a CMake build (CMAKE_STRIP in its CMakeCache.txt: llvm-strip with Google's NDK)."""
    from builder.models.platform import read_cmake_cache

    cache = build_dir / "CMakeCache.txt"
    tool = read_cmake_cache(cache).get("CMAKE_STRIP") if cache.is_file() else None
    if not tool or not Path(tool).is_file():
        raise ToolchainError(f"no CMAKE_STRIP in {cache}", hint="the JNI build's toolchain names no strip tool")
    return tool


def strip_libraries(libs: Sequence[Path], extra: Sequence[Path], include: Path, strip_from: Path, out: Path) -> Path:
    """``out/install/lib``: ``libs`` stripped (``--strip-unneeded``, as the Android Gradle plugin strips), ``extra`` as
    they are; ``out/install/include``: a link to libtorch's headers. Returns ``out`` (an aar.AbiInput build_dir)."""
    missing = [str(p) for p in (*libs, *extra) if not p.is_file()]
    if missing:
        raise PackageError("libraries for the AAR not found: " + ", ".join(missing))
    tool = cmake_strip(strip_from)
    with atomic.atomic_dir(out) as tmp:
        lib = tmp / "install" / "lib"
        lib.mkdir(parents=True)
        for src in libs:
            proc.run([tool, "--strip-unneeded", "-o", lib / src.name, src], check=True)
        for src in extra:
            shutil.copyfile(src, lib / src.name)
        (tmp / "install" / "include").symlink_to(include, target_is_directory=True)
    return out


def compile_java(javac: proc.Command, source_root: Path, exclude: Sequence[str], classes_dir: Path, argfile: Path,
                 classes_jar: Path, sources_jar: Path, *, source_date_epoch: int) -> tuple[Path, Path]:
    """Run ``javac`` (the plan's command: ``-d classes_dir``, ``@argfile``; ``-implicit:none``: classes from its
    source path are read, not packaged) on the release's Java API, listed into ``argfile`` now; then a reproducible
    classes.jar, and the sources in the sources jar."""
    sources = java_sources(source_root, exclude=exclude)
    classes_jar.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(classes_dir, ignore_errors=True)
    classes_dir.mkdir()
    argfile.write_text("".join(arg_quote(str(p)) + "\n" for p in sources), encoding="utf-8")
    result = proc.run_command(javac, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise PackageError(f"javac failed ({result.returncode}) compiling classes.jar:\n{tail}")
    write_jar(classes_jar, classes_dir, source_date_epoch=source_date_epoch)
    with tempfile.TemporaryDirectory(prefix="builder-sources-", dir=classes_jar.parent) as tmp:
        src_dir = Path(tmp)
        for path in sources:
            rel = path.relative_to(source_root)
            (src_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, src_dir / rel)
        write_jar(sources_jar, src_dir, source_date_epoch=source_date_epoch)
    return classes_jar, sources_jar


def resources(files: Sequence[tuple[str, Path]]) -> tuple[tuple[str, bytes], ...]:
    """The release's res/ as the Android Gradle plugin packages a library's values: res/values/values.xml (the
    merged values) and R.txt (one ``int <type> <name> 0x0`` line per resource)."""
    values: list[tuple[str, str, str]] = []   # (type, name, element)
    for _, path in files:
        if not path.is_file():
            raise PackageError(f"resource {path} not found")
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"<(string|integer|bool|color|dimen)\s+name=\"([^\"]+)\"[^>]*>.*?</\1>", text, re.S):
            values.append((m.group(1), m.group(2), m.group(0)))
    if not values:
        return (("R.txt", b""),)
    values.sort(key=lambda v: (v[0], v[1]))
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<resources>\n'
           + "".join(f"    {element}\n" for _, _, element in values) + "</resources>\n")
    r_txt = "".join(f"int {kind} {name} 0x0\n" for kind, name, _ in values)
    return (("R.txt", r_txt.encode()), ("res/values/values.xml", xml.encode()))


def write_aar(abi_roots: Sequence[tuple[str, Path]], spec: aar_mod.AarSpec, classes_jar: Path,
              resource_files: Sequence[tuple[str, Path]], dest: Path, *, source_date_epoch: int) -> aar_mod.AarResult:
    inputs = [aar_mod.AbiInput(abi, root) for abi, root in abi_roots]
    return aar_mod.build_aar(inputs, dest, spec, source_date_epoch=source_date_epoch, classes_jar=classes_jar,
                             extra_entries=resources(resource_files))
