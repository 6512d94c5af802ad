"""Assemble an Android AAR directly (no Gradle) from per-ABI install trees.

Two ways in, same bytes out:

* ``build_aar(inputs, dest, spec, ...)``: every ABI's build folder on this machine;
* ``stage_abi_part(input, spec, part_dir)`` on each build machine, then
  ``assemble_aar(part_dirs, dest, spec, ...)`` wherever the parts are gathered.

``build_aar`` is literally "stage every part into a temp folder, then assemble", so both paths go
through the same writer. Inputs are checked before anything is written; the finished AAR is checked
again (ABIs, ELF machines, duplicates, DT_NEEDED, 16 KB alignment) before it is moved to ``dest``.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from builder import atomic
from builder.errors import PackageError, ToolchainError, UsageError
from builder.hashing import sha256_bytes, sha256_file, sha256_of
from builder.package import archive
from builder.package.elf import ABI_MACHINE, ElfInfo, machine_problem, read_elf

log = logging.getLogger("builder")

ANDROID_ABIS: tuple[str, ...] = tuple(ABI_MACHINE)  # canonical (sorted) order
STL_SHARED = "libc++_shared.so"
PART_FILE = "part.json"
PART_FORMAT = 1
# Libraries every Android device provides (NDK stable APIs): a DT_NEEDED on these is fine.
SYSTEM_LIBS = frozenset({
    "libc.so", "libm.so", "libdl.so", "liblog.so", "libandroid.so", "libjnigraphics.so", "libz.so",
    "libEGL.so", "libGLESv1_CM.so", "libGLESv2.so", "libGLESv3.so", "libvulkan.so", "libOpenSLES.so",
    "libOpenMAXAL.so", "libmediandk.so", "libcamera2ndk.so", "libneuralnetworks.so",
    "libnativewindow.so", "libsync.so", "libaaudio.so", "libamidi.so", "libbinder_ndk.so",
    "libstdc++.so",
})
# A STAND-IN NDK (builder's tests) links glibc: its libraries NEED these, which no phone has. Counted as system
# libraries only for a stand-in build, whose AAR is labelled so (never for Google's NDK).
STANDIN_SYSTEM_LIBS = ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
                       "ld-linux-aarch64.so.1", "ld-linux-armhf.so.3", "ld-linux.so.2", "ld-linux-x86-64.so.2")
DEFAULT_PROGUARD = """\
# Native code finds these by name: keep them.
-keep class org.pytorch.** { *; }
-keepclasseswithmembernames class * { native <methods>; }
-keep @com.facebook.jni.annotations.DoNotStrip class *
-keepclassmembers class * { @com.facebook.jni.annotations.DoNotStrip *; }
"""
_NDK_TRIPLES = {"arm64-v8a": "aarch64-linux-android", "armeabi-v7a": "arm-linux-androideabi",
                "x86": "i686-linux-android", "x86_64": "x86_64-linux-android"}


@dataclass(frozen=True)
class AarSpec:
    abis: tuple[str, ...]
    jni_lib: str = "libpytorch_jni_lite.so"
    runtime_libs: tuple[str, ...] = ("libfbjni.so",)
    shared_stl: bool = True  # ANDROID_STL=c++_shared: libc++_shared.so ships in every ABI
    package: str = "org.pytorch"
    min_sdk: int = 21
    proguard: str = DEFAULT_PROGUARD
    require_16k: bool = False  # True: a library with PT_LOAD p_align < 16384 is an error
    extra_system_libs: tuple[str, ...] = ()   # also fine as DT_NEEDED (STANDIN_SYSTEM_LIBS for a stand-in NDK)

    def required_libs(self) -> tuple[str, ...]:
        libs = [self.jni_lib, *self.runtime_libs] + ([STL_SHARED] if self.shared_stl else [])
        return tuple(dict.fromkeys(libs))


@dataclass(frozen=True)
class AbiInput:
    abi: str
    build_dir: Path  # holds install/lib/<libs> and install/include/
    extra_libs: tuple[Path, ...] = ()  # packaged too, e.g. the NDK's libc++_shared.so


@dataclass(frozen=True)
class LibReport:
    abi: str
    name: str
    sha256: str
    size: int
    machine: str
    soname: str | None
    needed: tuple[str, ...]
    load_align: int

    @property
    def aligned_16k(self) -> bool:
        return self.load_align >= 16384


@dataclass(frozen=True)
class AarResult:
    path: Path
    sha256: str
    abis: tuple[str, ...]
    libs: tuple[LibReport, ...]
    warnings: tuple[str, ...] = ()

    @property
    def not_16k_aligned(self) -> tuple[LibReport, ...]:
        return tuple(r for r in self.libs if not r.aligned_16k)

    def details(self) -> dict[str, object]:
        """Machine-independent facts for the manifest (no paths)."""
        libs = [{**asdict(r), "needed": list(r.needed), "aligned_16k": r.aligned_16k} for r in self.libs]
        return {"abis": list(self.abis), "libs": libs, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class _Part:
    abi: str
    root: Path
    libs: tuple[tuple[str, Path], ...]
    headers_sha256: str


# --- public entry points ----------------------------------------------------------------------

def build_aar(inputs: Sequence[AbiInput], dest: Path, spec: AarSpec, *, source_date_epoch: int,
              classes_jar: Path, extra_entries: Sequence[tuple[str, bytes]] = ()) -> AarResult:
    """All ABIs from this machine's build folders + a classes.jar (the plan's javac step makes it) -> one AAR at
    ``dest``."""
    check_inputs(inputs, spec)
    with tempfile.TemporaryDirectory(prefix="builder-aar-") as tmp:
        parts = [stage_abi_part(inp, spec, Path(tmp) / "parts" / inp.abi) for inp in inputs]
        return assemble_aar(parts, dest, spec, classes_jar=classes_jar,
                            source_date_epoch=source_date_epoch, extra_entries=extra_entries)


def stage_abi_part(inp: AbiInput, spec: AarSpec, dest: Path) -> Path:
    """Copy one ABI's libraries and headers into a self-describing part folder at ``dest``."""
    libs = check_inputs([inp], replace(spec, abis=(inp.abi,)))[inp.abi]
    include = inp.build_dir / "install" / "include"
    with atomic.atomic_dir(dest) as tmp:
        jni = tmp / "jni" / inp.abi
        jni.mkdir(parents=True)
        digests = {}
        for name, src in sorted(libs.items()):
            shutil.copyfile(src, jni / name)
            digests[name] = sha256_file(jni / name)
        shutil.copytree(include, tmp / "headers")
        doc = {"format": PART_FORMAT, "abi": inp.abi, "libs": digests,
               "headers_sha256": tree_sha256(tmp / "headers")}
        (tmp / PART_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return dest


def assemble_aar(parts: Sequence[Path], dest: Path, spec: AarSpec, *, classes_jar: Path,
                 source_date_epoch: int, extra_entries: Sequence[tuple[str, bytes]] = ()) -> AarResult:
    """Part folders (from stage_abi_part) + classes.jar -> one AAR at ``dest``."""
    loaded = _load_parts(parts, spec)
    if not classes_jar.is_file():
        raise PackageError(f"classes.jar not found: {classes_jar}")
    headers = {p.headers_sha256 for p in loaded}
    warnings = () if len(headers) == 1 else (
        f"headers differ between ABIs; packaging those of {loaded[0].abi}",)
    for warning in warnings:
        log.warning("%s", warning)
    reports: list[LibReport] = []

    def verify(tmp: Path) -> None:
        reports.extend(check_aar(tmp, spec))

    archive.write_zip(dest, _aar_entries(loaded, spec, classes_jar, extra_entries),
                      source_date_epoch=source_date_epoch, verify=verify)
    return AarResult(dest, sha256_file(dest), tuple(p.abi for p in loaded),
                     tuple(reports), warnings)


def check_aar(aar: Path, spec: AarSpec) -> tuple[LibReport, ...]:
    """Check an assembled AAR; PackageError listing every problem, else one report per .so."""
    with zipfile.ZipFile(aar) as zf:
        names = set(zf.namelist())
        problems = [f"{aar.name}: {n} missing" for n in
                    ("AndroidManifest.xml", "classes.jar", "R.txt") if n not in names]
        per_abi: dict[str, dict[str, bytes]] = {}
        for name in sorted(names):
            match = re.fullmatch(r"jni/([^/]+)/([^/]+\.so)", name)
            if match:
                per_abi.setdefault(match.group(1), {})[match.group(2)] = zf.read(name)
    problems += [f"{abi}: requested but missing from the AAR" for abi in spec.abis if abi not in per_abi]
    problems += [f"{abi}: in the AAR but not requested" for abi in per_abi if abi not in spec.abis]
    reports: list[LibReport] = []
    for abi in sorted(per_abi):
        abi_reports, abi_problems = check_abi_libs(abi, per_abi[abi], spec)
        reports += abi_reports
        problems += abi_problems
    _raise(problems, f"{aar} failed its checks")
    return tuple(reports)


def check_abi_libs(abi: str, libs: dict[str, bytes], spec: AarSpec
                   ) -> tuple[list[LibReport], list[str]]:
    """ELF machine, duplicate sonames, unmet DT_NEEDED and alignment for one ABI's libraries."""
    problems: list[str] = [f"{abi}: {n} missing" for n in spec.required_libs() if n not in libs]
    reports: list[LibReport] = []
    infos: dict[str, ElfInfo] = {}
    for name in sorted(libs):
        try:
            info = read_elf(libs[name], what=f"{abi}: {name}")
        except PackageError as exc:
            problems.append(str(exc))
            continue
        infos[name] = info
        problem = machine_problem(abi, name, info)
        if problem:
            problems.append(problem)
        if spec.require_16k and not info.aligned_16k:
            problems.append(f"{abi}: {name} PT_LOAD alignment {info.load_align} < 16384")
        reports.append(LibReport(abi, name, sha256_bytes(libs[name]), len(libs[name]),
                                 info.machine, info.soname, info.needed, info.load_align))
    problems += _duplicate_sonames(abi, infos) + _unmet_needed(abi, infos, spec.extra_system_libs)
    return reports, problems


# --- inputs -----------------------------------------------------------------------------------

def check_inputs(inputs: Sequence[AbiInput], spec: AarSpec) -> dict[str, dict[str, Path]]:
    """Validate build folders; PackageError naming everything missing. Returns abi -> name -> path."""
    problems: list[str] = []
    by_abi: dict[str, AbiInput] = {}
    for inp in inputs:
        if inp.abi not in ABI_MACHINE:
            problems.append(f"{inp.abi}: unknown Android ABI (expected one of {', '.join(ANDROID_ABIS)})")
        elif inp.abi in by_abi:
            problems.append(f"{inp.abi}: given twice ({by_abi[inp.abi].build_dir} and {inp.build_dir})")
        else:
            by_abi[inp.abi] = inp
    problems += _abi_set_problems(spec.abis, by_abi)
    resolved: dict[str, dict[str, Path]] = {}
    for abi in sorted(by_abi):
        libs, abi_problems = _resolve_libs(by_abi[abi], spec)
        problems += abi_problems
        if not abi_problems:
            _, lib_problems = check_abi_libs(abi, {n: p.read_bytes() for n, p in libs.items()}, spec)
            problems += lib_problems
        resolved[abi] = libs
    _raise(problems, "cannot package the AAR")
    return resolved


def _resolve_libs(inp: AbiInput, spec: AarSpec) -> tuple[dict[str, Path], list[str]]:
    abi, root = inp.abi, inp.build_dir
    if not root.is_dir():
        return {}, [f"{abi}: build folder {root} not found"]
    problems = [f"{abi}: install/{sub} not found in {root}" for sub in ("lib", "include")
                if not (root / "install" / sub).is_dir()]
    extras: dict[str, Path] = {}
    for extra in inp.extra_libs:
        if not extra.is_file():
            problems.append(f"{abi}: extra library {extra} not found")
        elif extra.name in extras and not _same_file(extras[extra.name], extra):
            problems.append(f"{abi}: {extra.name} given twice ({extras[extra.name]} and {extra})")
        else:
            extras[extra.name] = extra
    libs: dict[str, Path] = dict(extras)
    for name in spec.required_libs():
        installed = root / "install" / "lib" / name
        if installed.is_file():
            if name in extras and not _same_file(extras[name], installed):
                problems.append(f"{abi}: {name} given twice ({installed} and {extras[name]})")
            libs.setdefault(name, installed)
        elif name not in extras:
            hint = " (pass the NDK's copy as an extra library)" if name == STL_SHARED else ""
            problems.append(f"{abi}: install/lib/{name} not found in {root}{hint}")
    return libs, problems


def _abi_set_problems(requested: Sequence[str], given: Mapping[str, object]) -> list[str]:
    problems = [f"{abi}: unknown Android ABI" for abi in requested if abi not in ABI_MACHINE]
    problems += [f"{abi}: requested but no build folder given" for abi in requested
                 if abi in ABI_MACHINE and abi not in given]
    problems += [f"{abi}: build folder given but the ABI was not requested" for abi in given
                 if abi not in requested]
    if len(set(requested)) != len(requested):
        problems.append("an ABI is requested twice: " + ", ".join(requested))
    return problems


def ndk_triple(abi: str) -> str:
    """The NDK sysroot's library folder name for ``abi`` (aarch64-linux-android, ...)."""
    triple = _NDK_TRIPLES.get(abi)
    if triple is None:
        raise UsageError(f"{abi}: unknown Android ABI")
    return triple


def ndk_libcxx_rel(abi: str, host: str = "*") -> str:
    """Where an r19+ NDK keeps libc++_shared.so for ``abi``, relative to its root (``host``: its prebuilt folder)."""
    return f"toolchains/llvm/prebuilt/{host}/sysroot/usr/lib/{ndk_triple(abi)}/{STL_SHARED}"


def ndk_libcxx_shared(ndk_root: Path, abi: str) -> Path:
    """The NDK's libc++_shared.so for ``abi`` (r19+ sysroot layout, then the older one)."""
    candidates = sorted(ndk_root.glob(ndk_libcxx_rel(abi)))
    candidates.append(ndk_root / "sources/cxx-stl/llvm-libc++/libs" / abi / STL_SHARED)
    for path in candidates:
        if path.is_file():
            return path
    raise ToolchainError(f"{abi}: {STL_SHARED} not found in NDK {ndk_root}")


# --- parts ------------------------------------------------------------------------------------

def _load_parts(parts: Sequence[Path], spec: AarSpec) -> list[_Part]:
    problems: list[str] = []
    loaded: dict[str, _Part] = {}
    for path in parts:
        try:
            part = read_part(path)
        except PackageError as exc:
            problems.append(str(exc))
            continue
        if part.abi in loaded:
            problems.append(f"{part.abi}: two parts given ({loaded[part.abi].root} and {path})")
            continue
        loaded[part.abi] = part
        libs = {name: p.read_bytes() for name, p in part.libs}
        problems += check_abi_libs(part.abi, libs, spec)[1]
    problems += _abi_set_problems(spec.abis, loaded)
    _raise(problems, "cannot assemble the AAR")
    return [loaded[abi] for abi in sorted(loaded)]


def read_part(path: Path) -> _Part:
    """Load and verify a part folder written by stage_abi_part."""
    doc_path = path / PART_FILE
    if not doc_path.is_file():
        raise PackageError(f"part {path}: {PART_FILE} not found (not a folder from stage_abi_part)")
    try:
        doc = json.loads(doc_path.read_text())
        abi, digests = str(doc["abi"]), dict(doc["libs"])
        fmt, headers = doc["format"], str(doc["headers_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"part {path}: malformed {PART_FILE} ({exc})") from exc
    if fmt != PART_FORMAT:
        raise PackageError(f"part {path}: format {fmt}, this builder reads format {PART_FORMAT}")
    jni = path / "jni" / abi
    problems = [f"{abi}: jni/{abi}/{name} in part {path} is missing or changed"
                for name, digest in sorted(digests.items())
                if not (jni / name).is_file() or sha256_file(jni / name) != digest]
    on_disk = {p.name for p in jni.glob("*")} if jni.is_dir() else set()
    problems += [f"{abi}: jni/{abi}/{n} in part {path} is not listed in {PART_FILE}"
                 for n in sorted(on_disk - set(digests))]
    if not (path / "headers").is_dir():
        problems.append(f"{abi}: headers/ missing from part {path}")
    elif tree_sha256(path / "headers") != headers:
        problems.append(f"{abi}: headers/ in part {path} changed since it was staged")
    _raise(problems, f"part {path} is damaged")
    return _Part(abi, path, tuple((n, jni / n) for n in sorted(digests)), headers)


def tree_sha256(root: Path) -> str:
    """One digest over relative paths and contents of every file under ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return sha256_of(part for path in files
                     for part in (path.relative_to(root).as_posix() + "\0", sha256_file(path) + "\n"))


# --- AAR contents -----------------------------------------------------------------------------

def android_manifest(package: str, min_sdk: int) -> str:
    if not re.fullmatch(r"[A-Za-z][\w]*(\.[A-Za-z][\w]*)+", package):
        raise UsageError(f"not a Java package name: {package!r}")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<manifest xmlns:android="http://schemas.android.com/apk/res/android"\n'
            f'    package="{package}" >\n\n'
            f'    <uses-sdk android:minSdkVersion="{int(min_sdk)}" />\n\n'
            '</manifest>\n')


def _aar_entries(parts: list[_Part], spec: AarSpec, classes_jar: Path,
                 extra: Sequence[tuple[str, bytes]] = ()) -> list[archive.Entry]:
    """The AAR's members; ``extra`` (name, bytes) adds res/ files and replaces the default (empty) R.txt."""
    given = dict(extra)
    res_dirs = sorted({str(Path(n).parent) for n in given if n.startswith("res/")} |
                      ({"res"} if any(n.startswith("res/") for n in given) else set()))
    entries = [
        archive.file_entry("AndroidManifest.xml", android_manifest(spec.package, spec.min_sdk).encode()),
        archive.file_entry("R.txt", given.pop("R.txt", b"")),
        *(archive.Entry(d, "dir") for d in res_dirs),
        *(archive.file_entry(n, data) for n, data in sorted(given.items())),
        archive.file_entry("proguard.txt", spec.proguard.encode()),
        archive.Entry("classes.jar", source=classes_jar),
        *archive.tree_entries(parts[0].root / "headers", "headers", executable=lambda _p: False),
        archive.Entry("jni", "dir"),
    ]
    for part in parts:
        entries.append(archive.Entry(f"jni/{part.abi}", "dir"))
        entries += [archive.Entry(f"jni/{part.abi}/{name}", source=path) for name, path in part.libs]
    return entries


# --- checks -----------------------------------------------------------------------------------

def _duplicate_sonames(abi: str, infos: dict[str, ElfInfo]) -> list[str]:
    owners: dict[str, list[str]] = {}
    for name, info in infos.items():
        owners.setdefault(info.soname or name, []).append(name)
    return [f"{abi}: library {soname} packaged twice ({', '.join(names)})"
            for soname, names in sorted(owners.items()) if len(names) > 1]


def _unmet_needed(abi: str, infos: dict[str, ElfInfo], extra_system: tuple[str, ...] = ()) -> list[str]:
    present = set(infos) | {i.soname for i in infos.values() if i.soname} | set(extra_system)
    return [f"{abi}: {name} needs {dep}, which is neither packaged nor an Android system library"
            for name, info in sorted(infos.items()) for dep in info.needed
            if dep not in present and dep not in SYSTEM_LIBS]


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or sha256_file(a) == sha256_file(b)


def _raise(problems: list[str], headline: str) -> None:
    if not problems:
        return
    unique = list(dict.fromkeys(problems))
    if len(unique) == 1:
        raise PackageError(unique[0])
    raise PackageError(f"{headline}:\n" + "\n".join(f"  - {p}" for p in unique))
