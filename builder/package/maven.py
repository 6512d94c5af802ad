"""A Maven repository layout for an AAR: org/pytorch/<artifact>/<version>/ + maven-metadata.xml.

Custom builds get a version suffix (``<release>-builder.<hash8>``) so they can never be mistaken for,
or overwrite, an official release. Every file gets .md5/.sha1/.sha256/.sha512 siblings (hex only,
as Maven Central serves them).
"""
from __future__ import annotations

import logging
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from builder import atomic
from builder.errors import PackageError, UsageError
from builder.hashing import bytes_digests, sha256_file

log = logging.getLogger("builder")

CHECKSUMS = ("md5", "sha1", "sha256", "sha512")
CUSTOM_MARK = "-builder."
_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Dependency:
    """A Maven artifact: what a POM depends on, and what javac compiles against (package.java finds its jar)."""

    group: str
    artifact: str
    version: str
    scope: str = "runtime"  # what Gradle's maven-publish writes for `implementation` deps

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def jar_path(self) -> PurePosixPath:
        """Its jar's place in a Maven repository, a folder or a URL: <group path>/<artifact>/<version>/<jar>."""
        return PurePosixPath(*self.group.split("."), self.artifact, self.version, f"{self.artifact}-{self.version}.jar")


@dataclass(frozen=True)
class Coordinates:
    artifact: str  # e.g. pytorch_android_lite
    version: str  # <release>-builder.<8 hex> (see custom_version)
    group: str = "org.pytorch"

    def folder(self, repo: Path) -> Path:
        return repo.joinpath(*self.group.split("."), self.artifact, self.version)

    @property
    def base_name(self) -> str:
        return f"{self.artifact}-{self.version}"


@dataclass(frozen=True)
class PomInfo:
    name: str = "PyTorch Android (custom build)"
    description: str = "PyTorch mobile runtime built from source by builder"
    url: str = "https://github.com/pytorch/pytorch"
    license_name: str = "BSD 3-Clause"
    license_url: str = "https://github.com/pytorch/pytorch/blob/main/LICENSE"


@dataclass(frozen=True)
class MavenResult:
    version_dir: Path
    files: tuple[Path, ...]  # everything written, checksum files included, sorted
    metadata: Path


def custom_version(release: str, digest: str) -> str:
    """The release version + a hex digest of the build config -> ``<release>-builder.<first 8 hex>``."""
    if not re.fullmatch(r"[0-9a-fA-F]{8,}", digest):
        raise UsageError(f"version digest must be at least 8 hex digits, got {digest!r}")
    base = release[1:] if release.startswith("v") else release
    if not _VERSION_RE.fullmatch(base) or CUSTOM_MARK in base:
        raise UsageError(f"not a release version: {release!r}")
    return f"{base}{CUSTOM_MARK}{digest[:8].lower()}"


def is_custom_version(version: str) -> bool:
    return CUSTOM_MARK in version


def pom_xml(coords: Coordinates, deps: Sequence[Dependency], info: PomInfo = PomInfo(),
            packaging: str = "aar") -> str:
    _check_coords(coords)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<project xmlns="http://maven.apache.org/POM/4.0.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 '
        'https://maven.apache.org/xsd/maven-4.0.0.xsd">',
        "  <modelVersion>4.0.0</modelVersion>",
        _tag("groupId", coords.group, 2), _tag("artifactId", coords.artifact, 2),
        _tag("version", coords.version, 2), _tag("packaging", packaging, 2),
        _tag("name", info.name, 2), _tag("description", info.description, 2),
        _tag("url", info.url, 2),
        "  <licenses>", "    <license>", _tag("name", info.license_name, 6),
        _tag("url", info.license_url, 6), "    </license>", "  </licenses>",
    ]
    if deps:
        lines.append("  <dependencies>")
        for dep in deps:  # caller's order = the release gradle's order
            lines += ["    <dependency>", _tag("groupId", dep.group, 6),
                      _tag("artifactId", dep.artifact, 6), _tag("version", dep.version, 6),
                      _tag("scope", dep.scope, 6), "    </dependency>"]
        lines.append("  </dependencies>")
    lines.append("</project>")
    return "\n".join(lines) + "\n"


def metadata_xml(coords: Coordinates, versions: Sequence[str], *, last_updated: int) -> str:
    """maven-metadata.xml. ``release`` only ever names a non-custom version."""
    releases = [v for v in versions if not is_custom_version(v)]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<metadata>",
             _tag("groupId", coords.group, 2), _tag("artifactId", coords.artifact, 2),
             "  <versioning>", _tag("latest", versions[-1], 4)]
    if releases:
        lines.append(_tag("release", releases[-1], 4))
    lines.append("    <versions>")
    lines += [_tag("version", v, 6) for v in versions]
    lines += ["    </versions>",
              _tag("lastUpdated", time.strftime("%Y%m%d%H%M%S", time.gmtime(last_updated)), 4),
              "  </versioning>", "</metadata>"]
    return "\n".join(lines) + "\n"


def publish_aar(aar: Path, repo: Path, coords: Coordinates, deps: Sequence[Dependency], *,
                source_date_epoch: int, info: PomInfo = PomInfo(),
                allow_release_version: bool = False, sources_jar: Path | None = None) -> MavenResult:
    """Lay ``aar`` out in the Maven repo at ``repo``; refuses to change a published version."""
    _check_coords(coords)
    if not aar.is_file():
        raise PackageError(f"AAR not found: {aar}")
    if not is_custom_version(coords.version) and not allow_release_version:
        raise UsageError(f"version {coords.version} looks official; custom builds must use "
                         f"custom_version() (e.g. {coords.version}{CUSTOM_MARK}<hash8>)")
    final = coords.folder(repo)
    pom = pom_xml(coords, deps, info).encode()
    if final.exists():
        _check_same_publication(final, coords, aar, pom)
    with atomic.atomic_dir(final) as tmp:
        shutil.copyfile(aar, tmp / f"{coords.base_name}.aar")
        (tmp / f"{coords.base_name}.pom").write_bytes(pom)
        if sources_jar is not None:
            shutil.copyfile(sources_jar, tmp / f"{coords.base_name}-sources.jar")
        for path in sorted(tmp.iterdir()):
            _write_checksums(path)
    meta = _update_metadata(repo, coords, source_date_epoch)
    files = tuple(sorted(final.iterdir()))
    log.info("published %s:%s:%s to %s", coords.group, coords.artifact, coords.version, repo)
    return MavenResult(final, files, meta)


def checksum_files(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(f"{path.name}.{algo}") for algo in CHECKSUMS)


def _write_checksums(path: Path) -> None:
    found = bytes_digests(path.read_bytes(), CHECKSUMS)
    for algo, target in zip(CHECKSUMS, checksum_files(path)):
        target.write_text(found[algo])


def _update_metadata(repo: Path, coords: Coordinates, source_date_epoch: int) -> Path:
    meta = repo.joinpath(*coords.group.split("."), coords.artifact, "maven-metadata.xml")
    versions = _read_versions(meta)
    if coords.version in versions:
        versions.remove(coords.version)
    versions.append(coords.version)  # deploy order, newest last (what Maven itself does)
    atomic.write_text(meta, metadata_xml(coords, versions, last_updated=source_date_epoch))
    found = bytes_digests(meta.read_bytes(), CHECKSUMS)
    for algo, target in zip(CHECKSUMS, checksum_files(meta)):
        atomic.write_text(target, found[algo])
    return meta


def _read_versions(meta: Path) -> list[str]:
    if not meta.is_file():
        return []
    try:
        root = ET.parse(meta).getroot()
    except ET.ParseError as exc:
        raise PackageError(f"{meta} is not valid XML ({exc}); fix or remove it") from exc
    return [v.text.strip() for v in root.iterfind("./versioning/versions/version") if v.text]


def _check_same_publication(final: Path, coords: Coordinates, aar: Path, pom: bytes) -> None:
    old_aar = final / f"{coords.base_name}.aar"
    old_pom = final / f"{coords.base_name}.pom"
    same = (old_aar.is_file() and sha256_file(old_aar) == sha256_file(aar)
            and old_pom.is_file() and old_pom.read_bytes() == pom)
    if not same:
        raise PackageError(f"{coords.group}:{coords.artifact}:{coords.version} is already in "
                           f"{final} with different content; published versions never change",
                           hint="bump the version or remove that folder")


def _check_coords(coords: Coordinates) -> None:
    for label, value in (("group", coords.group), ("artifact", coords.artifact)):
        if not _ID_RE.fullmatch(value):
            raise UsageError(f"bad Maven {label}: {value!r}")
    if not _VERSION_RE.fullmatch(coords.version):
        raise UsageError(f"bad Maven version: {coords.version!r}")


def _tag(name: str, value: str, indent: int) -> str:
    return f"{' ' * indent}<{name}>{escape(value)}</{name}>"
