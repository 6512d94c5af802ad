"""One release from per-ABI parts built on separate machines, with what one machine's build would publish.

A per-ABI `builder android` writes a Maven folder (``maven/<group>/<artifact>/<version>/``: the AAR, its POM and
sources jar). ``builder assemble --publication FOLDER`` takes that folder as the description of the Java side (the
AAR's manifest, R.txt and res/, proguard.txt and classes.jar; the POM's coordinates and dependencies; the sources
jar), the parts for the native side, and writes the AAR a one-invocation build of all those ABIs writes (the same
bytes) and its Maven folder, at the version that build names (``--version``; `builder android --json` plans it).
"""
from __future__ import annotations

import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from builder.errors import PackageError
from builder.package import aar as aar_mod
from builder.package.elf import read_elf
from builder.package.maven import Coordinates, Dependency, MavenResult, publish_aar

_POM = "{http://maven.apache.org/POM/4.0.0}"


@dataclass(frozen=True)
class Publication:
    """What a per-ABI build published, read back."""

    folder: Path
    coords: Coordinates
    dependencies: tuple[Dependency, ...]
    sources_jar: Path | None
    spec: aar_mod.AarSpec                     # package, minSdk, proguard, the libraries every ABI ships
    extra_entries: tuple[tuple[str, bytes], ...]   # R.txt and res/
    classes_jar: bytes


def read_publication(folder: Path) -> Publication:
    """The Maven version folder of a per-ABI build: one .aar, one .pom, optionally one -sources.jar."""
    aars, poms = sorted(folder.glob("*.aar")), sorted(folder.glob("*.pom"))
    if len(aars) != 1 or len(poms) != 1:
        raise PackageError(f"{folder} is not a Maven version folder of one AAR (found {len(aars)} .aar, "
                           f"{len(poms)} .pom)", hint="pass maven/<group>/<artifact>/<version> of a per-ABI build")
    coords, deps = _read_pom(poms[0])
    sources = folder / f"{coords.base_name}-sources.jar"
    with zipfile.ZipFile(aars[0]) as zf:
        names = zf.namelist()
        manifest = zf.read("AndroidManifest.xml").decode()
        extra = tuple((n, zf.read(n)) for n in names if n == "R.txt" or (n.startswith("res/") and not n.endswith("/")))
        proguard = zf.read("proguard.txt").decode() if "proguard.txt" in names else aar_mod.DEFAULT_PROGUARD
        classes = zf.read("classes.jar")
        libs = {n: zf.read(n) for n in names if re.fullmatch(r"jni/[^/]+/[^/]+\.so", n)}
    package = re.search(r'package="([^"]+)"', manifest)
    min_sdk = re.search(r'minSdkVersion="(\d+)"', manifest)
    if not (package and min_sdk and libs):
        raise PackageError(f"{aars[0]}: no package, minSdkVersion or jni/ libraries: not an AAR builder wrote")
    jni_lib, runtime_libs, shared_stl, accepted = _libraries(libs)
    spec = aar_mod.AarSpec(abis=(), jni_lib=jni_lib, runtime_libs=runtime_libs, shared_stl=shared_stl,
                           package=package.group(1), min_sdk=int(min_sdk.group(1)), proguard=proguard,
                           extra_system_libs=accepted)
    return Publication(folder, coords, deps, sources if sources.is_file() else None, spec, extra, classes)


def _libraries(libs: dict[str, bytes]) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
    """The JNI library, runtime libraries and STL of the published ABI, and the DT_NEEDED it accepted as system
    libraries (a stand-in NDK's glibc ones): what the parts must hold and may need."""
    abi = sorted({n.split("/")[1] for n in libs})[0]
    mine = {n.rsplit("/", 1)[1]: data for n, data in libs.items() if n.split("/")[1] == abi}
    infos = {name: read_elf(data, what=f"{abi}: {name}") for name, data in mine.items()}
    jni = [n for n in mine if n.startswith("libpytorch_jni")]
    if len(jni) != 1:
        raise PackageError(f"{abi}: expected one libpytorch_jni*.so in the published AAR, found {sorted(jni)}")
    present = set(mine) | {i.soname for i in infos.values() if i.soname}
    accepted = sorted({d for i in infos.values() for d in i.needed} - present - aar_mod.SYSTEM_LIBS)
    return (jni[0], tuple(sorted(set(mine) - {jni[0], aar_mod.STL_SHARED})), aar_mod.STL_SHARED in mine,
            tuple(accepted))


def _read_pom(pom: Path) -> tuple[Coordinates, tuple[Dependency, ...]]:
    try:
        root = ET.parse(pom).getroot()
    except ET.ParseError as exc:
        raise PackageError(f"{pom}: not a readable POM ({exc})") from exc

    def text(node: ET.Element, tag: str) -> str:
        found = node.find(f"{_POM}{tag}")
        if found is None or not (found.text or "").strip():
            raise PackageError(f"{pom}: <{tag}> missing")
        return (found.text or "").strip()
    deps = tuple(Dependency(text(d, "groupId"), text(d, "artifactId"), text(d, "version"),
                            (d.findtext(f"{_POM}scope") or "runtime").strip())
                 for d in root.iterfind(f"{_POM}dependencies/{_POM}dependency"))
    return Coordinates(text(root, "artifactId"), text(root, "version"), text(root, "groupId")), deps


def assemble_release(parts: Sequence[Path], publication: Path, out: Path, *, version: str | None,
                     source_date_epoch: int, system_libs: Sequence[str] = ()
                     ) -> tuple[aar_mod.AarResult, MavenResult]:
    """``out/<artifact>-<version>.aar`` from ``parts`` and ``out/maven/...`` beside it. ``system_libs``: more
    libraries the device provides (a stand-in NDK's glibc ones), beyond those the publication's AAR needed."""
    pub = read_publication(publication)
    coords = replace(pub.coords, version=version or pub.coords.version)
    abis = tuple(aar_mod.read_part(p).abi for p in parts)
    spec = replace(pub.spec, abis=abis,
                   extra_system_libs=tuple(sorted({*pub.spec.extra_system_libs, *system_libs})))
    dest = out / f"{coords.base_name}.aar"
    with tempfile.TemporaryDirectory(prefix="builder-assemble-") as tmp:
        classes = Path(tmp) / "classes.jar"
        classes.write_bytes(pub.classes_jar)
        result = aar_mod.assemble_aar(parts, dest, spec, classes_jar=classes, source_date_epoch=source_date_epoch,
                                      extra_entries=pub.extra_entries)
    maven = publish_aar(dest, out / "maven", coords, pub.dependencies, source_date_epoch=source_date_epoch,
                        sources_jar=pub.sources_jar)
    return result, maven
