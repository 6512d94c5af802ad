"""manifest.json content, determinism, size reports and comparisons (no processes)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from builder.errors import PackageError
from builder.package import archive, manifest
from builder.package.manifest import ManifestInputs, Patch
from tests.fixtures.package_fixtures import SDE, forbid_processes


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


INPUTS = ManifestInputs(
    tag="v1.13.1", commit="49444c3e546bf240bed24a101e747422d1f8a0ee",
    submodules={"third_party/XNNPACK": "ae108ef4", "third_party/cpuinfo": "8ec7bd91"},
    patches=(Patch("0001-fix.patch", "ab" * 32),),
    toolchain={"ndk": "25.1.8937393"}, cmake_version="3.25.1", ninja_version="1.11.1",
    defines={"BUILD_LITE_INTERPRETER": "ON", "USE_XNNPACK": "ON"},
    ops=("aten::conv2d", "aten::add.Tensor", "aten::conv2d"), target="android",
    builder_version="0.1.0", source_date_epoch=SDE)


def _aar(path: Path, sizes: dict[str, int]) -> Path:
    entries = [archive.file_entry(name, b"x" * size) for name, size in sizes.items()]
    return archive.write_zip(path, entries, source_date_epoch=SDE)


def test_contents(tmp_path: Path) -> None:
    art = _aar(tmp_path / "a.aar", {"classes.jar": 10, "jni/x86/libfoo.so": 100, "headers/a.h": 5})
    doc = manifest.build_manifest(INPUTS, art, details={"abis": ("x86",), "where": Path("a/b")})
    assert doc["tag"] == "v1.13.1" and doc["commit"].startswith("49444c3e")
    assert doc["submodules"]["third_party/XNNPACK"] == "ae108ef4"
    assert doc["patches"] == [{"name": "0001-fix.patch", "sha256": "ab" * 32}]
    assert doc["toolchain"] == {"ndk": "25.1.8937393", "cmake": "3.25.1", "ninja": "1.11.1"}
    assert doc["defines"]["USE_XNNPACK"] == "ON"
    assert doc["ops"]["list"] == ["aten::add.Tensor", "aten::conv2d"]
    assert doc["ops"]["sha256"] == hashlib.sha256(b"aten::add.Tensor\naten::conv2d\n").hexdigest()
    assert doc["artifact"] == {"name": "a.aar", "kind": "aar", "sha256": archive.sha256_file(art),
                               "size": art.stat().st_size}
    files = {f["path"]: f for f in doc["files"]}
    assert files["jni/x86/libfoo.so"] == {"path": "jni/x86/libfoo.so", "size": 100, "group": "x86",
                                          "sha256": hashlib.sha256(b"x" * 100).hexdigest()}
    assert files["headers/a.h"]["group"] == "common"
    assert doc["details"] == {"abis": ["x86"], "where": "a/b"}


def test_not_selective_and_explicit_op_sha(tmp_path: Path) -> None:
    art = _aar(tmp_path / "a.aar", {"x": 1})
    doc = manifest.build_manifest(ManifestInputs(tag="t", commit="c"), art)
    assert doc["ops"] is None and doc["selective"] is False
    doc = manifest.build_manifest(ManifestInputs(tag="t", commit="c", ops=("a",), op_list_sha256="f" * 64), art)
    assert doc["ops"]["sha256"] == "f" * 64


def test_deterministic_json(tmp_path: Path) -> None:
    art = _aar(tmp_path / "a.aar", {"jni/x86/b.so": 2, "jni/x86/a.so": 1})
    text1 = manifest.manifest_json(manifest.build_manifest(INPUTS, art))
    reordered = ManifestInputs(**{**INPUTS.__dict__, "defines": dict(reversed(list(INPUTS.defines.items()))),
                                  "submodules": dict(reversed(list(INPUTS.submodules.items())))})
    text2 = manifest.manifest_json(manifest.build_manifest(reordered, art))
    assert text1 == text2
    assert list(json.loads(text1)) == sorted(json.loads(text1))
    path = manifest.write_manifest(json.loads(text1), manifest.manifest_path(art))
    assert path.name == "a.aar.manifest.json" and path.read_text() == text1
    assert manifest.load_manifest(path) == json.loads(text1)


def test_config_digest_ignores_timestamp_only() -> None:
    later = ManifestInputs(**{**INPUTS.__dict__, "source_date_epoch": SDE + 1})
    changed = ManifestInputs(**{**INPUTS.__dict__, "defines": {"USE_XNNPACK": "OFF"}})
    assert manifest.config_digest(INPUTS) == manifest.config_digest(later)
    assert manifest.config_digest(INPUTS) != manifest.config_digest(changed)


def test_groups() -> None:
    assert manifest.file_group("jni/arm64-v8a/libx.so") == "arm64-v8a"
    assert manifest.file_group("LibTorch-Lite.xcframework/ios-arm64/LibTorch-Lite.framework/LibTorch-Lite") == "ios-arm64"
    assert manifest.file_group("LibTorch-Lite.xcframework/Info.plist") == "common"
    assert manifest.file_group("libtorch/lib/libtorch.a") == "lib"
    assert manifest.file_group("libtorch/include/torch/script.h") == "include"
    assert manifest.file_group("AndroidManifest.xml") == "common"


def test_tar_and_dir_artifacts(tmp_path: Path) -> None:
    tree = tmp_path / "X.xcframework"
    (tree / "ios-arm64").mkdir(parents=True)
    (tree / "ios-arm64" / "bin").write_bytes(b"1234")
    (tree / "Info.plist").write_bytes(b"<plist/>")
    doc = manifest.build_manifest(INPUTS, tree)
    assert {f["path"]: f["group"] for f in doc["files"]} == {"Info.plist": "common", "ios-arm64/bin": "ios-arm64"}
    assert doc["artifact"]["kind"] == "dir" and doc["artifact"]["size"] == 12
    tgz = archive.write_tar_gz(tmp_path / "sdk.tar.gz", archive.tree_entries(tree, "libtorch/lib"),
                               source_date_epoch=SDE)
    doc = manifest.build_manifest(INPUTS, tgz)
    assert {f["group"] for f in doc["files"]} == {"lib"}


def test_size_report_and_compare(tmp_path: Path) -> None:
    old = manifest.build_manifest(INPUTS, _aar(tmp_path / "old.aar", {
        "jni/x86/libtorch.so": 100, "jni/arm64-v8a/libtorch.so": 200, "jni/arm64-v8a/libfbjni.so": 50,
        "classes.jar": 10, "gone.txt": 3}))
    new = manifest.build_manifest(INPUTS, _aar(tmp_path / "new.aar", {
        "jni/x86/libtorch.so": 90, "jni/arm64-v8a/libtorch.so": 260, "jni/arm64-v8a/libfbjni.so": 50,
        "classes.jar": 10, "jni/arm64-v8a/libnew.so": 5}))
    rows = manifest.size_report(new)
    assert [(r.group, r.files, r.bytes, r.largest) for r in rows] == [
        ("arm64-v8a", 3, 315, "jni/arm64-v8a/libtorch.so"), ("common", 1, 10, "classes.jar"),
        ("x86", 1, 90, "jni/x86/libtorch.so")]
    grew = manifest.compare(old, new)
    assert [(r.group, r.path, r.old, r.new, r.delta) for r in grew] == [
        ("arm64-v8a", "", 250, 315, 65),
        ("arm64-v8a", "jni/arm64-v8a/libtorch.so", 200, 260, 60),
        ("arm64-v8a", "jni/arm64-v8a/libnew.so", 0, 5, 5)]
    assert grew[1].percent == pytest.approx(30.0) and grew[2].percent is None
    everything = manifest.compare(old, new, only_grown=False)
    assert ("x86", "jni/x86/libtorch.so", -10) in [(r.group, r.path, r.delta) for r in everything]
    assert ("common", "gone.txt", -3) in [(r.group, r.path, r.delta) for r in everything]


def test_load_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text("{")
    with pytest.raises(PackageError, match="not valid JSON"):
        manifest.load_manifest(bad)
    bad.write_text("{}")
    with pytest.raises(PackageError, match="not a builder manifest"):
        manifest.load_manifest(bad)
    with pytest.raises(PackageError, match="not found"):
        manifest.load_manifest(tmp_path / "none.json")
    with pytest.raises(PackageError, match="artifact .* not found"):
        manifest.build_manifest(INPUTS, tmp_path / "none.aar")
