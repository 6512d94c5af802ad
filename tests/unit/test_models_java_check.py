"""builder.models.java_check, the parts that read files only (the JVM run: tests/integration/test_aar_e2e.py)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.models.java_check import CHECK_SOURCE, choose_slice, java_tools


def _aar(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_the_check_program_ships_as_package_data() -> None:
    text = CHECK_SOURCE.read_text()
    assert "org.pytorch.LiteModuleLoader" in text and "getDataAsFloatArray" in text


def test_an_aar_without_this_machines_abi_names_the_abi_to_add(tmp_path: Path) -> None:
    aar = _aar(tmp_path / "a.aar", {"classes.jar": b"", "jni/arm64-v8a/libpytorch_jni_lite.so": b""})
    with pytest.raises(UsageError) as err:
        choose_slice(aar, "x86_64")
    assert "(its ABIs: arm64-v8a)" in str(err.value) and "--abi x86_64" in (err.value.hint or "")


def test_an_aar_without_classes_or_jni_library_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no classes.jar"):
        choose_slice(_aar(tmp_path / "a.aar", {"jni/x86_64/libfbjni.so": b""}), "x86_64")
    with pytest.raises(UsageError, match="no libpytorch_jni_lite.so or libpytorch_jni.so"):
        choose_slice(_aar(tmp_path / "b.aar", {"classes.jar": b"", "jni/x86_64/libfbjni.so": b""}), "x86_64")


def test_not_a_zip_and_missing_files_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "x.aar").write_text("not a zip")
    with pytest.raises(UsageError, match="not an AAR"):
        choose_slice(tmp_path / "x.aar", "x86_64")
    with pytest.raises(UsageError, match="AAR not found"):
        choose_slice(tmp_path / "missing.aar", "x86_64")


def test_java_tools_reports_every_missing_part_at_once(tmp_path: Path) -> None:
    aar = _aar(tmp_path / "a.aar", {"classes.jar": b""})
    with pytest.raises(UsageError) as err:
        java_tools(aar, "v1.13.1", None, tmp_path / "m2", tmp_path / "sdk", {"PATH": str(tmp_path)}, tmp_path,
                   lambda tag: tmp_path / "no-checkout")
    text = str(err.value)
    for part in ("java not found", "javac not found", "nativeloader:0.10.4", "android.jar of API 28"):
        assert part in text
    assert "fbjni" in text          # neither in a Maven folder nor in a checkout


def test_java_tools_needs_the_release_when_no_manifest_is_beside_the_aar(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--tag") as err:
        java_tools(_aar(tmp_path / "a.aar", {}), None, None, None, None, {}, tmp_path, lambda tag: tmp_path)
    assert "--tag" in (err.value.hint or "")
