"""Compile-time classpath discovery and reproducible jars (no processes)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from builder.errors import PackageError, ToolchainError
from builder.package import java
from builder.package.java import ClasspathSearch, MavenDep
from tests.fixtures.package_fixtures import SDE, forbid_processes

FBJNI = MavenDep("com.facebook.fbjni", "fbjni-java-only", "0.2.2")
LOADER = MavenDep("com.facebook.soloader", "nativeloader", "0.10.4")


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK")
    return path


def test_finds_sdk_m2_and_gradle_cache(tmp_path: Path) -> None:
    sdk = tmp_path / "sdk"
    _touch(sdk / "platforms/android-28/android.jar")
    newest = _touch(sdk / "platforms/android-33/android.jar")
    fbjni = _touch(tmp_path / "home/.m2/repository/com/facebook/fbjni/fbjni-java-only/0.2.2/fbjni-java-only-0.2.2.jar")
    loader = _touch(tmp_path / "home/.gradle/caches/modules-2/files-2.1/com.facebook.soloader/nativeloader/"
                               "0.10.4/0123abcd/nativeloader-0.10.4.jar")
    search = ClasspathSearch(env={"ANDROID_SDK_ROOT": str(sdk)}, home=tmp_path / "home")
    assert java.find_compile_classpath([FBJNI, LOADER], search) == (newest, fbjni, loader)
    pinned = ClasspathSearch(env={"ANDROID_HOME": str(sdk)}, home=tmp_path / "home", android_api=28)
    assert java.find_android_jar(pinned) == sdk / "platforms/android-28/android.jar"


def test_explicit_jars_win(tmp_path: Path) -> None:
    explicit = (tmp_path / "android.jar", tmp_path / "fbjni-java-only-0.2.2.jar")
    search = ClasspathSearch(env={}, home=tmp_path)
    with pytest.raises(ToolchainError, match="nativeloader-0.10.4.jar not found"):
        java.find_compile_classpath([FBJNI, LOADER], search, explicit=explicit)
    assert java.find_compile_classpath([FBJNI], search, explicit=explicit) == explicit


def test_missing_sdk(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="no Android SDK"):
        java.find_android_jar(ClasspathSearch(env={}, home=tmp_path))
    with pytest.raises(ToolchainError, match="android-30"):
        java.find_android_jar(ClasspathSearch(sdk_root=tmp_path, android_api=30, env={}, home=tmp_path))


def test_java_sources(tmp_path: Path) -> None:
    for rel in ("org/pytorch/Module.java", "org/pytorch/LiteModuleLoader.java", "org/pytorch/x.txt"):
        _touch(tmp_path / rel)
    found = java.java_sources(tmp_path, exclude=["org/pytorch/LiteModuleLoader.java"])
    assert [p.name for p in found] == ["Module.java"]
    with pytest.raises(PackageError):
        java.java_sources(tmp_path / "missing")


def test_argfile_lines_quote_what_javac_would_split() -> None:
    # javac @argfile: a line is one argument only when quoted; quotes and backslashes inside are escaped
    assert java.arg_quote('/a b/C.java') == '"/a b/C.java"'
    assert java.arg_quote('/a"b\\c/C.java') == '"/a\\"b\\\\c/C.java"'


def test_write_jar_manifest_first(tmp_path: Path) -> None:
    _touch(tmp_path / "classes/org/pytorch/Module.class")
    jar = java.write_jar(tmp_path / "c.jar", tmp_path / "classes", source_date_epoch=SDE)
    with zipfile.ZipFile(jar) as zf:
        assert zf.namelist()[:2] == ["META-INF/", "META-INF/MANIFEST.MF"]
