"""iOS packaging: merged static libs -> LibTorch-Lite.framework per platform -> .xcframework.

Per slice (platform + arch) every installed static library is merged into one with
``libtool -static`` (llvm-libtool-darwin off macOS); per platform the arches are joined with
``lipo -create``; each platform becomes ``<Name>.framework`` inside ``<Name>.xcframework``, which
is zipped reproducibly. A podspec and a Package.swift (binaryTarget + sha256 checksum of the zip)
are written beside it. Inputs are checked (files present, every object's arch and platform) before
anything is written.
"""
from __future__ import annotations

import logging
import mmap
import plistlib
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder import atomic, proc
from builder.errors import PackageError, ToolchainError, UsageError
from builder.hashing import sha256_file
from builder.package import archive, macho

log = logging.getLogger("builder")

# slice platform -> (Mach-O platform of its objects, xcframework variant, CFBundleSupportedPlatforms)
PLATFORMS: dict[str, tuple[str, str | None, str]] = {
    "ios": ("ios", None, "iPhoneOS"),
    "ios-simulator": ("iossimulator", "simulator", "iPhoneSimulator"),
}
_LLVM_VERSIONS = range(30, 10, -1)


@dataclass(frozen=True)
class AppleSlice:
    platform: str  # "ios" | "ios-simulator"
    arch: str  # "arm64" | "x86_64"
    build_dir: Path  # holds install/lib/*.a and install/include/

    @property
    def name(self) -> str:
        return f"{self.platform}-{self.arch}"


@dataclass(frozen=True)
class FrameworkSpec:
    name: str = "LibTorch-Lite"
    version: str = "1.0.0"
    bundle_id: str = ""  # default org.pytorch.<name>
    min_ios: str = "12.0"
    libs: tuple[str, ...] = ()  # static libs to merge (file names); empty: every install/lib/*.a
    umbrella_includes: tuple[str, ...] = ("torch/csrc/jit/mobile/import.h",
                                          "torch/csrc/jit/mobile/module.h")
    summary: str = "PyTorch mobile runtime (LibTorch-Lite) built from source by builder"
    homepage: str = "https://github.com/pytorch/pytorch"
    license: str = "BSD"
    system_frameworks: tuple[str, ...] = ("Accelerate",)
    system_libraries: tuple[str, ...] = ("c++",)
    cxx_standard: str = "c++17"

    @property
    def module_name(self) -> str:
        return re.sub(r"\W", "_", self.name)

    @property
    def identifier(self) -> str:
        return self.bundle_id or f"org.pytorch.{self.name}"


@dataclass(frozen=True)
class AppleTools:
    libtool: tuple[str, ...]  # argv prefix, e.g. ("libtool",) or ("llvm-libtool-darwin-14",)
    lipo: tuple[str, ...]


@dataclass(frozen=True)
class LibraryInfo:
    identifier: str  # e.g. ios-arm64_x86_64-simulator
    platform: str  # "ios"
    variant: str | None  # "simulator" or None
    archs: tuple[str, ...]
    binary_sha256: str


@dataclass(frozen=True)
class IosPackage:
    xcframework: Path
    zip: Path
    sha256: str  # of the zip: the SwiftPM checksum
    podspec: Path
    package_swift: Path
    libraries: tuple[LibraryInfo, ...] = field(default=())

    def details(self) -> dict[str, object]:
        """Machine-independent facts for the manifest (no paths)."""
        return {"swiftpm_checksum": self.sha256,
                "libraries": [{**asdict(lib), "archs": list(lib.archs)} for lib in self.libraries]}


def find_apple_tools(platform: str = sys.platform) -> AppleTools:
    """libtool/lipo on macOS; llvm-libtool-darwin / llvm-lipo (maybe version-suffixed) elsewhere."""
    def first(names: list[str], what: str) -> tuple[str, ...]:
        for name in names:
            found = proc.which(name)
            if found:
                return (found,)
        raise ToolchainError(f"{what} not found (looked for {', '.join(names[:3])}, ...)",
                             hint="install Xcode command line tools or LLVM (llvm-libtool-darwin, llvm-lipo)")

    def llvm(tool: str) -> list[str]:
        return [tool] + [f"{tool}-{v}" for v in _LLVM_VERSIONS]

    darwin = platform == "darwin"
    # Off macOS a plain "libtool" is GNU libtool, which cannot do this.
    libtool = (["libtool"] if darwin else []) + llvm("llvm-libtool-darwin")
    lipo = (["lipo"] if darwin else []) + llvm("llvm-lipo") + ([] if darwin else ["lipo"])
    return AppleTools(first(libtool, "libtool (static library merger)"), first(lipo, "lipo"))


# --- checks -----------------------------------------------------------------------------------

def check_slices(slices: Sequence[AppleSlice], spec: FrameworkSpec) -> dict[str, tuple[Path, ...]]:
    """Validate every slice before writing: PackageError naming all problems. name -> libs."""
    problems: list[str] = []
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", spec.name):
        raise UsageError(f"bad framework name: {spec.name!r}")
    if not slices:
        raise UsageError("no iOS slices given")
    seen: dict[tuple[str, str], AppleSlice] = {}
    for s in slices:
        if s.platform not in PLATFORMS:
            problems.append(f"{s.name}: unknown platform {s.platform!r} (expected {', '.join(PLATFORMS)})")
        elif (s.platform, s.arch) in seen:
            first = seen[(s.platform, s.arch)].build_dir
            problems.append(f"{s.name}: given twice ({first} and {s.build_dir})")
        seen[(s.platform, s.arch)] = s
    found: dict[str, tuple[Path, ...]] = {}
    for s in slices:
        libs, slice_problems = _slice_libs(s, spec)
        problems += slice_problems
        found[s.name] = libs
    if problems:
        unique = list(dict.fromkeys(problems))
        raise PackageError(unique[0] if len(unique) == 1 else
                           "cannot package for iOS:\n" + "\n".join(f"  - {p}" for p in unique))
    return found


def _slice_libs(s: AppleSlice, spec: FrameworkSpec) -> tuple[tuple[Path, ...], list[str]]:
    root = s.build_dir
    if not root.is_dir():
        return (), [f"{s.name}: build folder {root} not found"]
    lib_dir, problems = root / "install" / "lib", []
    if not (root / "install" / "include").is_dir():
        problems.append(f"{s.name}: install/include not found in {root}")
    if not lib_dir.is_dir():
        return (), problems + [f"{s.name}: install/lib not found in {root}"]
    if spec.libs:
        libs = [lib_dir / n for n in spec.libs]
        problems += [f"{s.name}: install/lib/{p.name} not found in {root}" for p in libs if not p.is_file()]
    else:
        libs = sorted(lib_dir.glob("*.a"))
        if not libs:
            problems.append(f"{s.name}: no install/lib/*.a in {root}")
    want = PLATFORMS.get(s.platform, ("?", None, ""))[0]
    for lib in (p for p in libs if p.is_file()):
        try:
            objects = _describe_file(lib)
        except PackageError as exc:
            problems.append(f"{s.name}: {exc}")
            continue
        bad = [o for o in objects
               if o.arch != "bitcode" and (o.arch != s.arch or o.platform not in (want, None))]
        problems += [f"{s.name}: {o.member} is {o.arch}/{o.platform}, expected {s.arch}/{want}"
                     for o in bad[:3]]
    return tuple(libs), problems


# --- tools ------------------------------------------------------------------------------------

def merge_static_libs(libs: Sequence[Path], dest: Path, arch: str, tools: AppleTools) -> Path:
    """One static library from many (deterministic: -D, ZERO_AR_DATE=1)."""
    _run([*tools.libtool, "-static", "-D", "-no_warning_for_no_symbols", "-arch_only", arch,
          "-o", dest, *libs], what=f"merging {len(libs)} static libraries for {arch}",
         env={"ZERO_AR_DATE": "1"})
    return dest


def lipo_create(inputs: Sequence[Path], dest: Path, tools: AppleTools) -> Path:
    _run([*tools.lipo, "-create", *inputs, "-output", dest], what=f"lipo -create {dest.name}")
    return dest


def _run(argv: list[str | Path], *, what: str, env: dict[str, str] | None = None) -> None:
    try:
        proc.run(argv, env=env)
    except proc.ProcessFailed as exc:
        raise PackageError(f"{what} failed: {exc}") from exc


# --- generated files --------------------------------------------------------------------------

def library_identifier(platform: str, archs: Sequence[str]) -> str:
    variant = PLATFORMS[platform][1]
    return "ios-" + "_".join(sorted(archs)) + (f"-{variant}" if variant else "")


def framework_info_plist(spec: FrameworkSpec, platform: str) -> bytes:
    numeric = re.match(r"\d+(\.\d+){0,2}", spec.version)
    short = numeric.group(0) if numeric else "1.0"
    return plistlib.dumps({
        "CFBundleDevelopmentRegion": "en",
        "CFBundleExecutable": spec.name,
        "CFBundleIdentifier": spec.identifier,
        "CFBundleInfoDictionaryVersion": "6.0",
        "CFBundleName": spec.name,
        "CFBundlePackageType": "FMWK",
        "CFBundleShortVersionString": short,
        "CFBundleSupportedPlatforms": [PLATFORMS[platform][2]],
        "CFBundleVersion": short,
        "MinimumOSVersion": spec.min_ios,
    }, fmt=plistlib.FMT_XML, sort_keys=True)


def xcframework_info_plist(spec: FrameworkSpec, libraries: Sequence[LibraryInfo]) -> bytes:
    available = []
    for lib in sorted(libraries, key=lambda x: x.identifier):
        entry = {"BinaryPath": f"{spec.name}.framework/{spec.name}",
                 "LibraryIdentifier": lib.identifier, "LibraryPath": f"{spec.name}.framework",
                 "SupportedArchitectures": list(lib.archs), "SupportedPlatform": lib.platform}
        if lib.variant:
            entry["SupportedPlatformVariant"] = lib.variant
        available.append(entry)
    return plistlib.dumps({"AvailableLibraries": available, "CFBundlePackageType": "XFWK",
                           "XCFrameworkFormatVersion": "1.0"}, fmt=plistlib.FMT_XML, sort_keys=True)


def module_map(spec: FrameworkSpec) -> str:
    return (f"framework module {spec.module_name} {{\n  requires cplusplus\n"
            f'  umbrella header "{spec.name}.h"\n  export *\n}}\n')


def umbrella_header(spec: FrameworkSpec, headers: Path) -> str:
    present = [h for h in spec.umbrella_includes if (headers / h).is_file()]
    missing = sorted(set(spec.umbrella_includes) - set(present))
    if missing:
        log.warning("umbrella header: %s not in the installed headers; left out", ", ".join(missing))
    lines = [f"// {spec.name} umbrella header (generated by builder). C++ only.", "#pragma once"]
    return "\n".join(lines + [f'#include "{h}"' for h in present]) + "\n"


def podspec(spec: FrameworkSpec, *, zip_name: str, sha256: str, url: str | None = None) -> str:
    fw = f"{spec.name}.framework"
    slice_dir = f"${{PODS_XCFRAMEWORKS_BUILD_DIR}}/{spec.name}/{fw}"
    source = (_rb(url) if url else
              f"\"file://#{{File.expand_path({_rb(zip_name)}, __dir__)}}\"")
    xc_user = {"HEADER_SEARCH_PATHS": f'$(inherited) "{slice_dir}/Headers"',
               # ops register from static initialisers: without force_load the linker drops them
               "OTHER_LDFLAGS": f'$(inherited) -force_load "{slice_dir}/{spec.name}"',
               "CLANG_CXX_LANGUAGE_STANDARD": spec.cxx_standard, "CLANG_CXX_LIBRARY": "libc++"}
    lines = [
        "# Generated by builder.",
        "Pod::Spec.new do |s|",
        f"  s.name = {_rb(spec.name)}",
        f"  s.version = {_rb(spec.version)}",
        f"  s.summary = {_rb(spec.summary)}",
        f"  s.homepage = {_rb(spec.homepage)}",
        f"  s.license = {{ :type => {_rb(spec.license)} }}",
        "  s.authors = 'PyTorch Team'",
        f"  s.source = {{ :http => {source}, :sha256 => {_rb(sha256)} }}",
        f"  s.ios.deployment_target = {_rb(spec.min_ios)}",
        f"  s.vendored_frameworks = {_rb(spec.name + '.xcframework')}",
        _rb_list("s.frameworks", spec.system_frameworks),
        _rb_list("s.libraries", spec.system_libraries),
        "  s.user_target_xcconfig = {",
        *[f"    {_rb(k)} => {_rb(v)}," for k, v in sorted(xc_user.items())],
        "  }",
        "end",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def package_swift(spec: FrameworkSpec, *, url: str | None = None, checksum: str | None = None,
                  path: str | None = None) -> str:
    """Package.swift with one binaryTarget: url + checksum (remote zip) or path (local)."""
    if (url is None) == (path is None):
        raise UsageError("Package.swift needs exactly one of url or path")
    if url is not None and not (checksum and re.fullmatch(r"[0-9a-f]{64}", checksum)):
        raise UsageError("a url binaryTarget needs the zip's sha256 as checksum")
    where = (f'            url: {_swift(url)},\n            checksum: {_swift(checksum or "")}\n'
             if url is not None else f"            path: {_swift(path or '')}\n")
    note = ("// checksum = sha256 of the zip (`swift package compute-checksum`).\n" if url is not None
            else "// Local xcframework; SwiftPM takes no checksum for path targets.\n")
    return ("// swift-tools-version:5.3\n// Generated by builder.\n" + note +
            "import PackageDescription\n\n"
            "let package = Package(\n"
            f"    name: {_swift(spec.name)},\n"
            f"    platforms: [.iOS({_swift(spec.min_ios)})],\n"
            "    products: [\n"
            f"        .library(name: {_swift(spec.name)}, targets: [{_swift(spec.name)}]),\n"
            "    ],\n"
            "    targets: [\n"
            "        .binaryTarget(\n"
            f"            name: {_swift(spec.name)},\n" + where +
            "        ),\n"
            "    ]\n"
            ")\n")


# --- assembly ---------------------------------------------------------------------------------

def build_xcframework(slices: Sequence[AppleSlice], dest: Path, spec: FrameworkSpec, *,
                      tools: AppleTools | None = None) -> tuple[LibraryInfo, ...]:
    """Write ``dest`` (a ``<Name>.xcframework`` folder) atomically; returns its libraries."""
    found = check_slices(slices, spec)
    tools = tools or find_apple_tools()
    with tempfile.TemporaryDirectory(prefix="builder-ios-") as tmp_name:
        tmp = Path(tmp_name)
        libraries = []
        with atomic.atomic_dir(dest) as out:
            for platform in sorted({s.platform for s in slices}):
                group = sorted((s for s in slices if s.platform == platform), key=lambda s: s.arch)
                libraries.append(_platform_framework(group, found, out, spec, tools, tmp))
            (out / "Info.plist").write_bytes(xcframework_info_plist(spec, libraries))
        return tuple(libraries)


def _platform_framework(group: list[AppleSlice], found: dict[str, tuple[Path, ...]], out: Path,
                        spec: FrameworkSpec, tools: AppleTools, tmp: Path) -> LibraryInfo:
    platform = group[0].platform
    archs = tuple(s.arch for s in group)
    ident = library_identifier(platform, archs)
    merged = [merge_static_libs(found[s.name], tmp / f"{s.name}.a", s.arch, tools) for s in group]
    fw = out / ident / f"{spec.name}.framework"
    (fw / "Modules").mkdir(parents=True)
    lipo_create(merged, fw / spec.name, tools)
    shutil.copytree(group[0].build_dir / "install" / "include", fw / "Headers")
    umbrella = fw / "Headers" / f"{spec.name}.h"
    if not umbrella.exists():
        umbrella.write_text(umbrella_header(spec, fw / "Headers"))
    (fw / "Modules" / "module.modulemap").write_text(module_map(spec))
    (fw / "Info.plist").write_bytes(framework_info_plist(spec, platform))
    got = tuple(sorted({o.arch for o in _describe_file(fw / spec.name)}))
    if got != tuple(sorted(archs)):
        raise PackageError(f"{ident}: merged binary has arches {got}, expected {sorted(archs)}")
    for path in fw.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return LibraryInfo(ident, "ios", PLATFORMS[platform][1], tuple(sorted(archs)),
                       sha256_file(fw / spec.name))


def package_ios(slices: Sequence[AppleSlice], out_dir: Path, spec: FrameworkSpec, *,
                source_date_epoch: int, url: str | None = None,
                tools: AppleTools | None = None) -> IosPackage:
    """xcframework + reproducible zip + podspec + Package.swift in ``out_dir``."""
    check_slices(slices, spec)  # before anything is written, even the temp folder
    tools = tools or find_apple_tools()
    name = f"{spec.name}.xcframework"
    with tempfile.TemporaryDirectory(prefix="builder-xcf-") as tmp_name:
        staged = Path(tmp_name) / name
        libraries = build_xcframework(slices, staged, spec, tools=tools)
        zip_path = archive.write_zip(
            out_dir / f"{name}.zip",
            archive.tree_entries(staged, name, executable=lambda _p: False),
            source_date_epoch=source_date_epoch)
        with atomic.atomic_dir(out_dir / name) as final:
            shutil.copytree(staged, final, dirs_exist_ok=True)
    sha = sha256_file(zip_path)
    spec_path = atomic.write_text(out_dir / f"{spec.name}.podspec",
                                   podspec(spec, zip_name=zip_path.name, sha256=sha, url=url))
    swift = package_swift(spec, url=url, checksum=sha) if url else package_swift(spec, path=name)
    swift_path = atomic.write_text(out_dir / "Package.swift", swift)
    return IosPackage(out_dir / name, zip_path, sha, spec_path, swift_path, libraries)


def _describe_file(path: Path) -> tuple[macho.MachObject, ...]:
    """macho.describe on a memory map: static libraries can be hundreds of MB."""
    if path.stat().st_size == 0:
        raise PackageError(f"{path.name}: empty file")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return macho.describe(data, path.name)  # type: ignore[arg-type]


def _rb_list(attr: str, values: Sequence[str]) -> str:
    return f"  {attr} = {', '.join(_rb(v) for v in values)}" if values else ""


def _rb(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _swift(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
