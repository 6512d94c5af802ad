"""Real Mach-O objects from clang -> merged libs -> framework + xcframework + zip + podspec +
Package.swift, confirmed with llvm-lipo / llvm-objdump. Starts processes."""
from __future__ import annotations

import hashlib
import plistlib
import re
import zipfile
from pathlib import Path

import pytest

from builder import proc
from builder.errors import PackageError, ToolchainError
from builder.package import apple, manifest
from builder.package.apple import AppleSlice, FrameworkSpec
from tests.fixtures.package_fixtures import SDE, ios_object_build, listing

pytestmark = pytest.mark.integration


def _first(*names: str) -> str | None:
    return next((found for found in map(proc.which, names) if found), None)


CLANG = _first("clang-14", "clang")
AR = _first("llvm-ar-14", "llvm-ar")
OBJDUMP = _first("llvm-objdump-14", "llvm-objdump")
SLICES = (("ios", "arm64", "arm64-apple-ios12.0"),
          ("ios-simulator", "arm64", "arm64-apple-ios12.0-simulator"),
          ("ios-simulator", "x86_64", "x86_64-apple-ios12.0-simulator"))
SPEC = FrameworkSpec(version="1.13.1-builder.0123abcd")


@pytest.fixture(scope="module")
def tools() -> apple.AppleTools:
    if not (CLANG and AR and OBJDUMP):
        pytest.skip("clang, llvm-ar and llvm-objdump are needed to make and inspect Mach-O objects")
    try:
        return apple.find_apple_tools()
    except ToolchainError as exc:
        pytest.skip(f"no libtool/lipo for Mach-O: {exc}")


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory, tools: apple.AppleTools) -> list[AppleSlice]:
    root = tmp_path_factory.mktemp("ios")
    out = []
    for platform, arch, target in SLICES:
        name = f"{platform}-{arch}"
        build = ios_object_build(root, name, target, arch, CLANG, (AR, "--format=darwin", "rcsD"))  # type: ignore[arg-type]
        out.append(AppleSlice(platform, arch, build))
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_xcframework(slices: list[AppleSlice], tools: apple.AppleTools, tmp_path: Path) -> None:
    pkg = apple.package_ios(slices, tmp_path / "out", SPEC, source_date_epoch=SDE, tools=tools)
    xcf = pkg.xcframework
    assert xcf.name == "LibTorch-Lite.xcframework"
    device = xcf / "ios-arm64/LibTorch-Lite.framework"
    sim = xcf / "ios-arm64_x86_64-simulator/LibTorch-Lite.framework"
    for fw in (device, sim):
        for rel in ("LibTorch-Lite", "Info.plist", "Modules/module.modulemap", "Headers/LibTorch-Lite.h",
                    "Headers/torch/csrc/jit/mobile/import.h"):
            assert (fw / rel).is_file(), fw / rel

    info = proc.run([tools.lipo[0], "-info", sim / "LibTorch-Lite"]).stdout
    assert re.search(r"are: (x86_64 arm64|arm64 x86_64)", info), info
    info = proc.run([tools.lipo[0], "-info", device / "LibTorch-Lite"]).stdout
    assert "are: arm64" in info and "x86_64" not in info, info

    dev_headers = proc.run([OBJDUMP, "--macho", "--private-headers", device / "LibTorch-Lite"]).stdout  # type: ignore[list-item]
    sim_headers = proc.run([OBJDUMP, "--macho", "--private-headers", sim / "LibTorch-Lite"]).stdout  # type: ignore[list-item]
    assert set(re.findall(r"platform (\w+)", dev_headers)) == {"ios"}
    assert set(re.findall(r"platform (\w+)", sim_headers)) == {"iossimulator"}
    # both objects of every slice made it into the merged binary
    assert "c10" in dev_headers and "torch" in dev_headers

    plist = plistlib.loads((xcf / "Info.plist").read_bytes())
    libs = {lib["LibraryIdentifier"]: lib for lib in plist["AvailableLibraries"]}
    assert libs["ios-arm64"]["SupportedArchitectures"] == ["arm64"]
    assert "SupportedPlatformVariant" not in libs["ios-arm64"]
    assert libs["ios-arm64_x86_64-simulator"]["SupportedArchitectures"] == ["arm64", "x86_64"]
    assert libs["ios-arm64_x86_64-simulator"]["SupportedPlatformVariant"] == "simulator"
    assert plistlib.loads((device / "Info.plist").read_bytes())["CFBundleSupportedPlatforms"] == ["iPhoneOS"]

    assert pkg.sha256 == _sha(pkg.zip)
    with zipfile.ZipFile(pkg.zip) as zf:
        names = zf.namelist()
    assert "LibTorch-Lite.xcframework/ios-arm64/LibTorch-Lite.framework/LibTorch-Lite" in names
    assert names == sorted(names)
    assert 'path: "LibTorch-Lite.xcframework"' in pkg.package_swift.read_text()
    assert f":sha256 => '{pkg.sha256}'" in pkg.podspec.read_text()


def test_reproducible_and_url_package_swift(slices: list[AppleSlice], tools: apple.AppleTools,
                                            tmp_path: Path) -> None:
    url = "https://example.com/LibTorch-Lite.xcframework.zip"
    one = apple.package_ios(slices, tmp_path / "one", SPEC, source_date_epoch=SDE, tools=tools, url=url)
    two = apple.package_ios(slices[::-1], tmp_path / "two", SPEC, source_date_epoch=SDE, tools=tools, url=url)
    assert one.sha256 == two.sha256
    assert f'checksum: "{one.sha256}"' in one.package_swift.read_text()
    assert one.package_swift.read_bytes() == two.package_swift.read_bytes()
    assert one.podspec.read_bytes() == two.podspec.read_bytes()
    doc = manifest.build_manifest(manifest.ManifestInputs(tag="v1.13.1", commit="c", toolchain={"xcode": "none"}),
                                  one.zip, details=one.details())
    groups = {r.group for r in manifest.size_report(doc)}
    assert groups == {"common", "ios-arm64", "ios-arm64_x86_64-simulator"}


def test_malformed_slice_writes_nothing(slices: list[AppleSlice], tools: apple.AppleTools,
                                        tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "install" / "lib").mkdir(parents=True)
    bad = [slices[0], slices[1], AppleSlice("ios-simulator", "x86_64", broken)]
    with pytest.raises(PackageError) as err:
        apple.package_ios(bad, tmp_path / "out", SPEC, source_date_epoch=SDE, tools=tools)
    assert f"ios-simulator-x86_64: install/include not found in {broken}" in str(err.value)
    assert f"ios-simulator-x86_64: no install/lib/*.a in {broken}" in str(err.value)
    assert listing(tmp_path / "out") == [] and not (tmp_path / "out").exists()
