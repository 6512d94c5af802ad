"""`builder doctor`: what this machine has for building mobile PyTorch. Returns rows; the CLI renders them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .toolchains import ndk as ndk_mod
from .toolchains import tools


@dataclass(frozen=True)
class Row:
    section: str
    name: str
    found: bool
    detail: str


def _version_of(name: str, args: tuple[str, ...], environ: Mapping[str, str]) -> Row:
    path = proc.which(name, path=environ.get("PATH"))
    if path is None:
        return Row("tools", name, False, "not found")
    return Row("tools", name, True, f"{tools.tool_version(Path(path), args)} ({path})")


def check(environ: Mapping[str, str], home: Path, host_os: str, *, cache_dir: Path | None = None,
          recipes_dir: Path | None = None) -> tuple[Row, ...]:
    from .recipes import load_all

    rows = [_version_of("git", ("--version",), environ)]
    rows += [Row("tools", t.name, t.version is not None, f"{t.version or '?'} ({t.path})")
             for t in tools.all_tools(tools.versions_file(cache_dir))]
    for name in ("cc", "c++", "clang", "gcc"):
        rows.append(_version_of(name, ("--version",), environ))
    for name in ("sccache", "ccache"):
        rows.append(_version_of(name, ("--version",), environ))
    recipes = load_all(recipes_dir)
    scan = ndk_mod.scan_ndks(environ, home)
    for info in scan.found:
        ok = [r.tag for r in recipes if info.revision in r.ndk_supported]
        rows.append(Row("android", f"NDK {info.revision}", True,
                        f"{info.path} (from {info.source}); builds {', '.join(ok) or 'no recipe'}"))
    for path, source, reason in scan.rejected:
        rows.append(Row("android", "NDK?", False, f"{path} (from {source}): {reason}"))
    if not scan.found:
        rows.append(Row("android", "NDK", False, "none found: set ANDROID_NDK or run `builder ndk install r21e`"))
    sdk = environ.get("ANDROID_HOME") or environ.get("ANDROID_SDK_ROOT")
    rows.append(Row("android", "SDK", bool(sdk and Path(sdk).is_dir()), sdk or "ANDROID_HOME not set"))
    rows.append(_java(environ))
    rows.append(_xcode(environ, host_os))
    return tuple(rows)


def _java(environ: Mapping[str, str]) -> Row:
    row = _version_of("javac", ("-version",), environ)
    return Row("android", "JDK (javac)", row.found, row.detail)


def _xcode(environ: Mapping[str, str], host_os: str) -> Row:
    if host_os != "Darwin":
        return Row("ios", "Xcode", False, f"iOS builds need macOS (this host: {host_os}); plans still work")
    row = _version_of("xcodebuild", ("-version",), environ)
    return Row("ios", "Xcode", row.found, row.detail)
