"""Maven repository layout, POM, checksums and metadata (no processes)."""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from builder.errors import PackageError, UsageError
from builder.package import maven
from builder.package.maven import Coordinates, Dependency
from tests.fixtures.package_fixtures import SDE, forbid_processes, listing

NS = {"m": "http://maven.apache.org/POM/4.0.0"}
DEPS = (Dependency("com.facebook.fbjni", "fbjni-java-only", "0.2.2"),
        Dependency("com.facebook.soloader", "nativeloader", "0.10.4"))


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_processes(monkeypatch)


@pytest.fixture
def aar_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.aar"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return path


def test_custom_version() -> None:
    assert maven.custom_version("v1.13.1", "0123456789abcdef") == "1.13.1-builder.01234567"
    assert maven.is_custom_version("1.13.1-builder.01234567")
    for bad in ("zz", "0123"):
        with pytest.raises(UsageError):
            maven.custom_version("1.13.1", bad)
    with pytest.raises(UsageError):
        maven.custom_version("1.13.1-builder.00000000", "0123456789")


def test_layout_checksums_pom_metadata(tmp_path: Path, aar_file: Path) -> None:
    version = maven.custom_version("1.13.1", "deadbeefcafe")
    coords = Coordinates("pytorch_android_lite", version)
    result = maven.publish_aar(aar_file, tmp_path / "repo", coords, DEPS, source_date_epoch=SDE)
    base = f"pytorch_android_lite-{version}"
    folder = f"org/pytorch/pytorch_android_lite/{version}"
    expected = {f"{folder}/{base}.{ext}{suffix}" for ext in ("aar", "pom")
                for suffix in ("", ".md5", ".sha1", ".sha256", ".sha512")}
    meta = "org/pytorch/pytorch_android_lite/maven-metadata.xml"
    expected |= {meta} | {f"{meta}.{a}" for a in ("md5", "sha1", "sha256", "sha512")}
    files = {p for p in listing(tmp_path / "repo") if not p.endswith(("pytorch", "org", "lite", version))}
    assert files == expected
    aar_out = tmp_path / "repo" / folder / f"{base}.aar"
    assert aar_out.read_bytes() == aar_file.read_bytes()
    for algo in ("md5", "sha1", "sha256", "sha512"):
        text = (tmp_path / "repo" / folder / f"{base}.aar.{algo}").read_text()
        assert text == hashlib.new(algo, aar_file.read_bytes()).hexdigest()
    pom = ET.parse(tmp_path / "repo" / folder / f"{base}.pom").getroot()
    assert pom.findtext("m:packaging", namespaces=NS) == "aar"
    assert pom.findtext("m:version", namespaces=NS) == version
    deps = [(d.findtext("m:groupId", namespaces=NS), d.findtext("m:artifactId", namespaces=NS),
             d.findtext("m:version", namespaces=NS), d.findtext("m:scope", namespaces=NS))
            for d in pom.iterfind("m:dependencies/m:dependency", NS)]
    assert deps == [("com.facebook.fbjni", "fbjni-java-only", "0.2.2", "runtime"),
                    ("com.facebook.soloader", "nativeloader", "0.10.4", "runtime")]
    md = ET.parse(result.metadata).getroot()
    assert md.findtext("versioning/latest") == version
    assert md.find("versioning/release") is None  # a custom build is never "the release"
    assert md.findtext("versioning/lastUpdated") == "20221215000000"


def test_metadata_keeps_other_versions(tmp_path: Path, aar_file: Path) -> None:
    repo = tmp_path / "repo"
    v1, v2 = "1.13.1-builder.aaaaaaaa", "1.13.1-builder.bbbbbbbb"
    maven.publish_aar(aar_file, repo, Coordinates("x", "1.13.1"), (), source_date_epoch=SDE,
                      allow_release_version=True)
    maven.publish_aar(aar_file, repo, Coordinates("x", v1), (), source_date_epoch=SDE)
    result = maven.publish_aar(aar_file, repo, Coordinates("x", v2), (), source_date_epoch=SDE)
    md = ET.parse(result.metadata).getroot()
    assert [v.text for v in md.iterfind("versioning/versions/version")] == ["1.13.1", v1, v2]
    assert md.findtext("versioning/latest") == v2
    assert md.findtext("versioning/release") == "1.13.1"


def test_official_looking_version_refused(tmp_path: Path, aar_file: Path) -> None:
    with pytest.raises(UsageError, match="looks official"):
        maven.publish_aar(aar_file, tmp_path / "repo", Coordinates("x", "1.13.1"), (), source_date_epoch=SDE)
    assert not (tmp_path / "repo").exists()


def test_republish_same_is_fine_different_is_refused(tmp_path: Path, aar_file: Path) -> None:
    coords = Coordinates("x", "1.0-builder.12345678")
    repo = tmp_path / "repo"
    maven.publish_aar(aar_file, repo, coords, DEPS, source_date_epoch=SDE)
    before = {p: (repo / p).read_bytes() for p in listing(repo) if (repo / p).is_file()}
    maven.publish_aar(aar_file, repo, coords, DEPS, source_date_epoch=SDE)
    assert {p: (repo / p).read_bytes() for p in listing(repo) if (repo / p).is_file()} == before
    other = tmp_path / "other.aar"
    other.write_bytes(b"different")
    with pytest.raises(PackageError, match="already in .* with different content"):
        maven.publish_aar(other, repo, coords, DEPS, source_date_epoch=SDE)
    assert {p: (repo / p).read_bytes() for p in listing(repo) if (repo / p).is_file()} == before


def test_missing_aar(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="AAR not found"):
        maven.publish_aar(tmp_path / "no.aar", tmp_path / "repo", Coordinates("x", "1-builder.12345678"), (),
                          source_date_epoch=SDE)
    assert not (tmp_path / "repo").exists()


def test_pom_escapes_and_validates() -> None:
    info = maven.PomInfo(description="a <b> & c")
    pom = maven.pom_xml(Coordinates("x", "1.0"), (), info)
    assert "a &lt;b&gt; &amp; c" in pom
    ET.fromstring(pom)
    with pytest.raises(UsageError):
        maven.pom_xml(Coordinates("x y", "1.0"), ())
