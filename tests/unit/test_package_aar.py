"""AAR assembly and its checks with pure-Python ELF images (no processes, no javac)."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from builder.errors import PackageError, UsageError
from builder.package import aar
from builder.package.aar import AarSpec, AbiInput
from tests.fixtures.package_fixtures import (
    SDE,
    fake_android_build,
    fake_classes_jar,
    forbid_processes,
    listing,
    tiny_elf,
)

ABIS = ("arm64-v8a", "armeabi-v7a", "x86", "x86_64")


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


@pytest.fixture
def builds(tmp_path: Path) -> dict[str, Path]:
    return {abi: fake_android_build(tmp_path / "build", abi) for abi in ABIS}


@pytest.fixture
def jar(tmp_path: Path) -> Path:
    return fake_classes_jar(tmp_path / "classes.jar")


def _inputs(builds: dict[str, Path]) -> list[AbiInput]:
    return [AbiInput(abi, path) for abi, path in builds.items()]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_aar_layout(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    out = tmp_path / "out" / "pytorch_android_lite.aar"
    result = aar.build_aar(_inputs(builds), out, AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = zf.read("AndroidManifest.xml").decode()
        assert zf.read("classes.jar") == jar.read_bytes()
        assert zf.read("R.txt") == b""
        assert b"-keep class org.pytorch" in zf.read("proguard.txt")
    for abi in ABIS:
        for lib in ("libpytorch_jni_lite.so", "libfbjni.so", "libc++_shared.so"):
            assert f"jni/{abi}/{lib}" in names
    assert "headers/torch/script.h" in names
    assert 'package="org.pytorch"' in manifest and 'android:minSdkVersion="21"' in manifest
    assert result.abis == ABIS and len(result.libs) == 12
    assert result.sha256 == _sha(out)
    assert not result.not_16k_aligned
    assert result.details()["libs"][0]["aligned_16k"] is True


def test_same_bytes_twice_and_from_parts(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    spec = AarSpec(ABIS)
    one = aar.build_aar(_inputs(builds), tmp_path / "one.aar", spec, classes_jar=jar, source_date_epoch=SDE)
    two = aar.build_aar(list(reversed(_inputs(builds))), tmp_path / "two.aar", spec, classes_jar=jar,
                        source_date_epoch=SDE)
    # "separate machines": each ABI staged on its own, parts gathered later in any order
    parts = [aar.stage_abi_part(AbiInput(abi, builds[abi]), spec, tmp_path / "parts" / abi)
             for abi in ("x86", "arm64-v8a", "x86_64", "armeabi-v7a")]
    three = aar.assemble_aar(parts, tmp_path / "three.aar", spec, classes_jar=jar, source_date_epoch=SDE)
    assert one.sha256 == two.sha256 == three.sha256
    assert json.loads((parts[0] / "part.json").read_text())["abi"] == "x86"


def test_missing_jni_lib_names_it_and_writes_nothing(tmp_path: Path, builds: dict[str, Path],
                                                     jar: Path) -> None:
    (builds["arm64-v8a"] / "install/lib/libpytorch_jni_lite.so").unlink()
    out_dir = tmp_path / "out"
    with pytest.raises(PackageError) as err:
        aar.build_aar(_inputs(builds), out_dir / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)
    assert str(err.value) == (f"arm64-v8a: install/lib/libpytorch_jni_lite.so not found in "
                              f"{builds['arm64-v8a']}")
    assert err.value.exit_code == 5
    assert not out_dir.exists()


def test_all_problems_reported_at_once(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    (builds["x86"] / "install/lib/libfbjni.so").unlink()
    inputs = [AbiInput("arm64-v8a", tmp_path / "nope")] + _inputs(builds)[1:]
    with pytest.raises(PackageError) as err:
        aar.build_aar(inputs, tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)
    text = str(err.value)
    assert f"arm64-v8a: build folder {tmp_path / 'nope'} not found" in text
    assert "x86: install/lib/libfbjni.so not found in" in text
    assert listing(tmp_path / "x.aar") == [] and not (tmp_path / "x.aar").exists()


def test_requested_abi_without_folder(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    with pytest.raises(PackageError, match="x86_64: requested but no build folder given"):
        aar.build_aar(_inputs(builds)[:3], tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar,
                      source_date_epoch=SDE)


def test_wrong_machine_in_abi_folder(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    (builds["x86"] / "install/lib/libfbjni.so").write_bytes(tiny_elf("EM_X86_64", soname="libfbjni.so"))
    with pytest.raises(PackageError, match="x86: libfbjni.so is EM_X86_64, expected EM_386"):
        aar.build_aar(_inputs(builds), tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)
    assert not (tmp_path / "x.aar").exists()


def test_not_elf(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    (builds["x86"] / "install/lib/libfbjni.so").write_text("not an elf")
    with pytest.raises(PackageError, match="x86: libfbjni.so is not a readable ELF"):
        aar.build_aar(_inputs(builds), tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)


def test_library_twice_in_one_abi(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    other = tmp_path / "ndk" / "libc++_shared.so"
    other.parent.mkdir()
    other.write_bytes(tiny_elf("EM_AARCH64", soname="libc++_shared.so", salt=b"different"))
    inputs = [AbiInput("arm64-v8a", builds["arm64-v8a"], extra_libs=(other,))] + _inputs(builds)[1:]
    with pytest.raises(PackageError, match=r"arm64-v8a: libc\+\+_shared.so given twice"):
        aar.build_aar(inputs, tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)


def test_same_soname_under_two_names(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    dup = tmp_path / "libfbjni_copy.so"
    dup.write_bytes(tiny_elf("EM_AARCH64", soname="libfbjni.so", salt=b"x"))
    inputs = [AbiInput("arm64-v8a", builds["arm64-v8a"], extra_libs=(dup,))] + _inputs(builds)[1:]
    with pytest.raises(PackageError, match="arm64-v8a: library libfbjni.so packaged twice"):
        aar.build_aar(inputs, tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)


def test_unmet_dt_needed(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    (builds["x86_64"] / "install/lib/libpytorch_jni_lite.so").write_bytes(
        tiny_elf("EM_X86_64", soname="libpytorch_jni_lite.so", needed=("libfbjni.so", "libomp.so")))
    with pytest.raises(PackageError, match="x86_64: libpytorch_jni_lite.so needs libomp.so"):
        aar.build_aar(_inputs(builds), tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar, source_date_epoch=SDE)


def test_static_stl_needs_no_libcxx(tmp_path: Path, jar: Path) -> None:
    em = "EM_AARCH64"
    build = fake_android_build(tmp_path / "b", "arm64-v8a", libs={
        "libfbjni.so": tiny_elf(em, soname="libfbjni.so"),
        "libpytorch_jni_lite.so": tiny_elf(em, soname="libpytorch_jni_lite.so", needed=("libfbjni.so",))})
    result = aar.build_aar([AbiInput("arm64-v8a", build)], tmp_path / "x.aar",
                           AarSpec(("arm64-v8a",), shared_stl=False), classes_jar=jar, source_date_epoch=SDE)
    assert [r.name for r in result.libs] == ["libfbjni.so", "libpytorch_jni_lite.so"]


def test_16k_alignment_reported_or_required(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    (builds["x86"] / "install/lib/libfbjni.so").write_bytes(
        tiny_elf("EM_386", soname="libfbjni.so", needed=("libc++_shared.so",), align=4096))
    result = aar.build_aar(_inputs(builds), tmp_path / "x.aar", AarSpec(ABIS), classes_jar=jar,
                           source_date_epoch=SDE)
    assert [(r.abi, r.name, r.load_align) for r in result.not_16k_aligned] == [("x86", "libfbjni.so", 4096)]
    with pytest.raises(PackageError, match="x86: libfbjni.so PT_LOAD alignment 4096 < 16384"):
        aar.build_aar(_inputs(builds), tmp_path / "y.aar", AarSpec(ABIS, require_16k=True), classes_jar=jar,
                      source_date_epoch=SDE)
    assert not (tmp_path / "y.aar").exists()


def test_damaged_part_refused(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    spec = AarSpec(("x86",))
    part = aar.stage_abi_part(AbiInput("x86", builds["x86"]), spec, tmp_path / "part")
    (part / "jni/x86/libfbjni.so").write_bytes(b"tampered")
    with pytest.raises(PackageError, match="x86: jni/x86/libfbjni.so in part .* is missing or changed"):
        aar.assemble_aar([part], tmp_path / "x.aar", spec, classes_jar=jar, source_date_epoch=SDE)
    with pytest.raises(PackageError, match="part.json not found"):
        aar.assemble_aar([tmp_path], tmp_path / "x.aar", spec, classes_jar=jar, source_date_epoch=SDE)
    assert not (tmp_path / "x.aar").exists()


def test_two_parts_for_one_abi(tmp_path: Path, builds: dict[str, Path], jar: Path) -> None:
    spec = AarSpec(("x86",))
    a = aar.stage_abi_part(AbiInput("x86", builds["x86"]), spec, tmp_path / "a")
    b = aar.stage_abi_part(AbiInput("x86", builds["x86"]), spec, tmp_path / "b")
    with pytest.raises(PackageError, match="x86: two parts given"):
        aar.assemble_aar([a, b], tmp_path / "x.aar", spec, classes_jar=jar, source_date_epoch=SDE)


def test_check_aar_on_foreign_archive(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.aar"
    with zipfile.ZipFile(bogus, "w") as zf:
        zf.writestr("jni/x86/libfoo.so", tiny_elf("EM_AARCH64", soname="libfoo.so"))
    with pytest.raises(PackageError) as err:
        aar.check_aar(bogus, AarSpec(("x86", "x86_64"), runtime_libs=(), shared_stl=False, jni_lib="libfoo.so"))
    text = str(err.value)
    assert "AndroidManifest.xml missing" in text
    assert "x86_64: requested but missing from the AAR" in text
    assert "x86: libfoo.so is EM_AARCH64, expected EM_386" in text


def test_manifest_package_validated() -> None:
    with pytest.raises(UsageError):
        aar.android_manifest("not a package", 21)


def test_ndk_libcxx_lookup(tmp_path: Path) -> None:
    lib = tmp_path / "toolchains/llvm/prebuilt/linux-x86_64/sysroot/usr/lib/aarch64-linux-android/libc++_shared.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"x")
    assert aar.ndk_libcxx_shared(tmp_path, "arm64-v8a") == lib
    with pytest.raises(Exception, match="x86: libc"):
        aar.ndk_libcxx_shared(tmp_path, "x86")
