"""classes.jar for an AAR: the release's org.pytorch.* sources, reproducible jars, the compile classpath.

The javac run itself is the plan's JavaCompileStep (package.android_outputs.compile_java runs it).

Compile-time jars (android.jar, fbjni-java-only, nativeloader) are looked up in the Android SDK,
~/.m2 and the Gradle cache, or passed explicitly. Nothing is downloaded.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import PackageError, ToolchainError
from builder.package import archive
from builder.package.maven import Dependency

log = logging.getLogger("builder")

JAR_MANIFEST = b"Manifest-Version: 1.0\r\nCreated-By: builder\r\n\r\n"


MavenDep = Dependency   # the compile-time jars javac needs are Maven artifacts too


def java_sources(src_root: Path, *, exclude: Sequence[str] = ()) -> tuple[Path, ...]:
    """Sorted .java files under ``src_root`` minus ``exclude`` (paths relative to it, posix).

    For the lite AAR pass android/pytorch_android/src/main/java; for the full-JIT AAR exclude
    org/pytorch/LiteModuleLoader.java and org/pytorch/LiteNativePeer.java like the release gradle.
    """
    if not src_root.is_dir():
        raise PackageError(f"Java source folder {src_root} not found")
    skip = set(exclude)
    found = sorted(p for p in src_root.rglob("*.java") if p.relative_to(src_root).as_posix() not in skip)
    if not found:
        raise PackageError(f"no .java files under {src_root}")
    return tuple(found)


def write_jar(dest: Path, classes_dir: Path, *, source_date_epoch: int) -> Path:
    """A reproducible jar of ``classes_dir`` with a minimal manifest."""
    entries = [archive.Entry("META-INF", "dir"),
               archive.file_entry("META-INF/MANIFEST.MF", JAR_MANIFEST),
               *archive.tree_entries(classes_dir, executable=lambda _p: False)]
    return archive.write_zip(dest, entries, source_date_epoch=source_date_epoch)


# --- compile-time classpath discovery ---------------------------------------------------------

@dataclass(frozen=True)
class ClasspathSearch:
    """Where compile-time jars may live: the SDK (``env``'s ANDROID_SDK_ROOT / ANDROID_HOME unless ``sdk_root``),
    ~/.m2 and the Gradle cache (``env``'s GRADLE_USER_HOME). ``env`` is the machine's environment, passed in."""

    sdk_root: Path | None = None
    android_api: int | None = None  # None: highest installed platform
    m2_repo: Path | None = None
    gradle_home: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=Path.home)


def find_compile_classpath(deps: Sequence[MavenDep], search: ClasspathSearch | None = None,
                           *, explicit: Sequence[Path] = ()) -> tuple[Path, ...]:
    """android.jar + one jar per dep. ``explicit`` jars win (matched by '<artifact>-' prefix)."""
    search = search or ClasspathSearch()
    jars = list(explicit)
    names = [p.name for p in explicit]
    if not any(n == "android.jar" for n in names):
        jars.insert(0, find_android_jar(search))
    for dep in deps:
        if not any(n.startswith(f"{dep.artifact}-") or n == f"{dep.artifact}.jar" for n in names):
            jars.append(find_maven_jar(dep, search))
    return tuple(jars)


def find_android_jar(search: ClasspathSearch) -> Path:
    roots = [search.sdk_root] if search.sdk_root else [
        Path(search.env[k]) for k in ("ANDROID_SDK_ROOT", "ANDROID_HOME") if search.env.get(k)]
    if not roots:
        raise ToolchainError("android.jar: no Android SDK (ANDROID_SDK_ROOT / ANDROID_HOME unset)",
                             hint="set ANDROID_SDK_ROOT or pass the android.jar explicitly")
    for root in roots:
        platforms = root / "platforms"
        if search.android_api is not None:
            jar = platforms / f"android-{search.android_api}" / "android.jar"
            if jar.is_file():
                return jar
            continue
        apis = sorted((_api_level(p.name), p) for p in platforms.glob("android-*")
                      if (p / "android.jar").is_file() and _api_level(p.name) >= 0)
        if apis:
            return apis[-1][1] / "android.jar"
    want = f"android-{search.android_api}" if search.android_api is not None else "android-*"
    raise ToolchainError(f"android.jar not found in {', '.join(f'{r}/platforms/{want}' for r in roots)}",
                         hint="install the platform with sdkmanager or pass the jar explicitly")


def find_maven_jar(dep: MavenDep, search: ClasspathSearch) -> Path:
    """``dep``'s jar from ~/.m2 or the Gradle module cache (no network)."""
    m2 = search.m2_repo or search.home / ".m2" / "repository"
    gradle = search.gradle_home or Path(search.env.get("GRADLE_USER_HOME") or search.home / ".gradle")
    file_name = dep.jar_path().name
    candidates = [m2 / dep.jar_path()]
    cache = gradle / "caches" / "modules-2" / "files-2.1" / dep.group / dep.artifact / dep.version
    candidates += sorted(cache.glob(f"*/{file_name}"))
    for path in candidates:
        if path.is_file():
            return path
    raise ToolchainError(f"{dep}: {file_name} not found in {m2} or {cache}",
                         hint="fetch it once with Gradle/Maven or pass the jar explicitly")


def _api_level(name: str) -> int:
    match = re.fullmatch(r"android-(\d+)", name)
    return int(match.group(1)) if match else -1


def arg_quote(arg: str) -> str:
    """Quote one argument for a javac @argfile."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
