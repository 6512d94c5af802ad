"""iOS packaging: pre-write checks, generated plists/modulemap/podspec/Package.swift, Mach-O
reading and tool discovery (no processes)."""
from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from builder import proc
from builder.errors import PackageError, ToolchainError, UsageError
from builder.package import apple, macho
from builder.package.apple import AppleSlice, FrameworkSpec, LibraryInfo
from tests.fixtures.package_fixtures import SDE, bsd_ar, fake_ios_build, forbid_processes, listing, tiny_macho

SPEC = FrameworkSpec(version="1.13.1-builder.0123abcd")


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


@pytest.fixture
def slices(tmp_path: Path) -> list[AppleSlice]:
    b = tmp_path / "build"
    return [AppleSlice("ios", "arm64", fake_ios_build(b, "ios-arm64", "arm64", "ios")),
            AppleSlice("ios-simulator", "arm64", fake_ios_build(b, "sim-arm64", "arm64", "iossimulator")),
            AppleSlice("ios-simulator", "x86_64", fake_ios_build(b, "sim-x86_64", "x86_64", "iossimulator"))]


def test_checks_pass_and_list_libs(slices: list[AppleSlice]) -> None:
    found = apple.check_slices(slices, SPEC)
    assert [p.name for p in found["ios-arm64"]] == ["libc10.a", "libtorch.a"]


def test_simulator_object_in_device_slice(slices: list[AppleSlice]) -> None:
    lib = slices[0].build_dir / "install/lib/libtorch.a"
    lib.write_bytes(bsd_ar({"bad.o": tiny_macho("arm64", "iossimulator")}))
    with pytest.raises(PackageError, match=r"ios-arm64: libtorch.a\(bad.o\) is arm64/iossimulator, expected arm64/ios"):
        apple.check_slices(slices, SPEC)


def test_wrong_arch(slices: list[AppleSlice]) -> None:
    lib = slices[2].build_dir / "install/lib/libc10.a"
    lib.write_bytes(bsd_ar({"c10.o": tiny_macho("arm64", "iossimulator")}))
    with pytest.raises(PackageError, match="ios-simulator-x86_64: libc10.a.c10.o. is arm64/iossimulator"):
        apple.check_slices(slices, SPEC)


def test_missing_things_named_and_nothing_written(tmp_path: Path, slices: list[AppleSlice]) -> None:
    (slices[1].build_dir / "install/lib/libtorch.a").unlink()
    spec = FrameworkSpec(libs=("libc10.a", "libtorch.a"))
    bad = slices + [AppleSlice("ios-simulator", "i386", tmp_path / "nope")]
    out = tmp_path / "out"
    with pytest.raises(PackageError) as err:
        apple.package_ios(bad, out, spec, source_date_epoch=SDE)
    text = str(err.value)
    assert f"ios-simulator-arm64: install/lib/libtorch.a not found in {slices[1].build_dir}" in text
    assert f"ios-simulator-i386: build folder {tmp_path / 'nope'} not found" in text
    assert not out.exists()


def test_duplicate_and_unknown_slices(tmp_path: Path, slices: list[AppleSlice]) -> None:
    with pytest.raises(PackageError, match="ios-arm64: given twice"):
        apple.check_slices(slices + [slices[0]], SPEC)
    with pytest.raises(PackageError, match="unknown platform 'tvos'"):
        apple.check_slices([AppleSlice("tvos", "arm64", slices[0].build_dir)], SPEC)
    with pytest.raises(UsageError):
        apple.check_slices(slices, FrameworkSpec(name="bad name"))


def test_identifiers() -> None:
    assert apple.library_identifier("ios", ["arm64"]) == "ios-arm64"
    assert apple.library_identifier("ios-simulator", ["x86_64", "arm64"]) == "ios-arm64_x86_64-simulator"


def test_framework_plist() -> None:
    plist = plistlib.loads(apple.framework_info_plist(SPEC, "ios-simulator"))
    assert plist["CFBundleExecutable"] == "LibTorch-Lite"
    assert plist["CFBundlePackageType"] == "FMWK"
    assert plist["CFBundleShortVersionString"] == "1.13.1"  # numeric only, as the App Store wants
    assert plist["CFBundleSupportedPlatforms"] == ["iPhoneSimulator"]
    assert plist["MinimumOSVersion"] == "12.0"
    assert plist["CFBundleIdentifier"] == "org.pytorch.LibTorch-Lite"
    assert apple.framework_info_plist(SPEC, "ios") == apple.framework_info_plist(SPEC, "ios")


def test_xcframework_plist() -> None:
    libs = [LibraryInfo("ios-arm64_x86_64-simulator", "ios", "simulator", ("arm64", "x86_64"), "0"),
            LibraryInfo("ios-arm64", "ios", None, ("arm64",), "0")]
    plist = plistlib.loads(apple.xcframework_info_plist(SPEC, libs))
    assert plist["CFBundlePackageType"] == "XFWK" and plist["XCFrameworkFormatVersion"] == "1.0"
    device, sim = plist["AvailableLibraries"]
    assert device == {"BinaryPath": "LibTorch-Lite.framework/LibTorch-Lite", "LibraryIdentifier": "ios-arm64",
                      "LibraryPath": "LibTorch-Lite.framework", "SupportedArchitectures": ["arm64"],
                      "SupportedPlatform": "ios"}
    assert sim["SupportedPlatformVariant"] == "simulator"
    assert sim["SupportedArchitectures"] == ["arm64", "x86_64"]


def test_modulemap_and_umbrella(tmp_path: Path) -> None:
    assert apple.module_map(SPEC).startswith("framework module LibTorch_Lite {")
    assert 'umbrella header "LibTorch-Lite.h"' in apple.module_map(SPEC)
    (tmp_path / "torch/csrc/jit/mobile").mkdir(parents=True)
    (tmp_path / "torch/csrc/jit/mobile/import.h").write_text("")
    text = apple.umbrella_header(SPEC, tmp_path)
    assert '#include "torch/csrc/jit/mobile/import.h"' in text and "module.h" not in text


def test_podspec() -> None:
    text = apple.podspec(SPEC, zip_name="LibTorch-Lite.xcframework.zip", sha256="ab" * 32,
                         url="https://example.com/x.zip")
    assert "s.name = 'LibTorch-Lite'" in text
    assert "s.version = '1.13.1-builder.0123abcd'" in text
    assert f"s.source = {{ :http => 'https://example.com/x.zip', :sha256 => '{'ab' * 32}' }}" in text
    assert "s.vendored_frameworks = 'LibTorch-Lite.xcframework'" in text
    assert "-force_load" in text and "s.frameworks = 'Accelerate'" in text
    local = apple.podspec(SPEC, zip_name="LibTorch-Lite.xcframework.zip", sha256="ab" * 32)
    assert "File.expand_path('LibTorch-Lite.xcframework.zip', __dir__)" in local
    assert "\n\n" not in text


def test_package_swift() -> None:
    remote = apple.package_swift(SPEC, url="https://example.com/x.zip", checksum="ab" * 32)
    assert '.binaryTarget(\n            name: "LibTorch-Lite",\n            url: "https://example.com/x.zip",\n' \
           f'            checksum: "{"ab" * 32}"\n        ),' in remote
    assert remote.startswith("// swift-tools-version:5.3\n")
    assert '.iOS("12.0")' in remote
    local = apple.package_swift(SPEC, path="LibTorch-Lite.xcframework")
    assert 'path: "LibTorch-Lite.xcframework"' in local and "checksum:" not in local.split("import")[1]
    with pytest.raises(UsageError):
        apple.package_swift(SPEC, url="https://x", checksum="nothex")
    with pytest.raises(UsageError):
        apple.package_swift(SPEC)


def test_tool_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    have = {"llvm-libtool-darwin-14", "llvm-lipo-14", "libtool", "lipo"}
    monkeypatch.setattr(proc, "which", lambda name, path=None: f"/usr/bin/{name}" if name in have else None)
    tools = apple.find_apple_tools("linux")
    assert tools == apple.AppleTools(("/usr/bin/llvm-libtool-darwin-14",), ("/usr/bin/llvm-lipo-14",))
    assert apple.find_apple_tools("darwin") == apple.AppleTools(("/usr/bin/libtool",), ("/usr/bin/lipo",))
    have.clear()
    with pytest.raises(ToolchainError, match="libtool"):
        apple.find_apple_tools("linux")


def test_macho_reader() -> None:
    fat_free = bsd_ar({"a_long_member_name.o": tiny_macho("x86_64", "iossimulator"),
                       "b.o": tiny_macho("arm64", "iossimulator")})
    objs = macho.describe(fat_free, "lib.a")
    assert [(o.member, o.arch, o.platform) for o in objs] == [
        ("lib.a(a_long_member_name.o)", "x86_64", "iossimulator"), ("lib.a(b.o)", "arm64", "iossimulator")]
    assert macho.archs(fat_free, "lib.a") == ("arm64", "x86_64")
    with pytest.raises(PackageError, match="not a Mach-O"):
        macho.describe(b"\x7fELF" + b"\0" * 60, "x.o")


def test_no_output_dir_created_on_check_failure(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        apple.package_ios([], tmp_path / "out", SPEC, source_date_epoch=SDE)
    assert listing(tmp_path) == []


def test_tool_failure_is_a_package_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fail(argv, **_kw):
        raise proc.ProcessFailed(proc.Result(tuple(map(str, argv)), 1, "", "error: bad archive"))

    monkeypatch.setattr(proc, "run", fail)
    tools = apple.AppleTools(("llvm-libtool-darwin",), ("llvm-lipo",))
    with pytest.raises(PackageError, match=r"(?s)merging 1 static libraries for arm64 failed: .*bad archive"):
        apple.merge_static_libs([tmp_path / "a.a"], tmp_path / "m.a", "arm64", tools)
