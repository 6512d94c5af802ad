"""Finding, identifying and choosing an Android NDK.

Everything here is pure apart from reading files: the environment and the home folder are
passed in by the caller, never read from ``os.environ`` here.

Request syntax (``parse_ndk_request``):

* ``21.4.7075529`` — an exact ``Pkg.Revision`` (``-beta1``/``-rc1`` suffixes allowed);
* ``21.4`` — any NDK whose revision starts with 21.4;
* ``r21e`` / ``21e`` / ``r21`` / ``21`` — Google's release names: the letter is the minor
  version (no letter = 0, ``b`` = 1, ... ``e`` = 4), so ``r21e`` is 21.4.x and ``r21`` is 21.0.x;
* ``r23-beta2`` — a beta of a release;
* ``latest`` / ``any`` / empty — whatever is found (see the precedence below);
* anything that looks like a path (contains ``/``, starts with ``~`` or ``.``) — that folder.

Which NDK is used (``select_ndk``), first rule that applies:

1. ``--ndk PATH`` — that folder; ``--ndk VERSION`` — an NDK of that version found anywhere below
   (when several match: a tested one, then a supported one, then the newest, then the first in this order);
2. ``ANDROID_NDK``, then ``ANDROID_NDK_HOME``, then ``ANDROID_NDK_ROOT`` — the first of them that is set
   is used, even when the SDK folders hold other (newer, tested) NDKs; one set to something that is not
   an NDK is an error, never skipped;
3. the SDK folders: ``$ANDROID_HOME/ndk/*``, ``$ANDROID_SDK_ROOT/ndk/*`` (and their ``ndk-bundle``),
   ``~/Android/Sdk``, ``~/Library/Android/sdk`` — the newest NDK the recipe tested, else the newest it
   supports, else the newest.

(builder.toml's ``ndk`` comes after the environment variables and before the SDK folders, as every
builder.toml setting comes after the environment: see ``builder.config``.) ``explain_choice`` says which
rule chose the NDK; the plan prints it.
"""
from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from builder import proc
from builder.errors import ToolchainError

log = logging.getLogger("builder")

TOOLCHAIN_FILE = Path("build/cmake/android.toolchain.cmake")
PROPERTIES_FILE = "source.properties"
NDK_ENV_VARS = ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
SDK_ENV_VARS = ("ANDROID_HOME", "ANDROID_SDK_ROOT")
HOME_SDKS = ("Android/Sdk", "Library/Android/sdk")

_RELEASE_RE = re.compile(r"^r?(?P<major>\d+)(?P<letter>[a-z])?(?:-?(?P<pre>beta|rc)(?P<pre_n>\d+))?$")
_VERSION_RE = re.compile(r"^\d+(?:\.\d+){1,3}(?:-?(?:beta|rc|b)\d+)?$")
_ANY_WORDS = frozenset({"", "any", "latest", "default"})


class VersionSet(Protocol):
    """A SpecifierSet, or a recipe's ``AnyOf`` (several: tested when in any)."""

    def contains(self, item: Version, prereleases: bool | None = None) -> bool: ...


@dataclass(frozen=True)
class NdkRequest:
    """What the user asked for. ``kind`` is ``any``, ``release``, ``version`` or ``path``."""

    kind: str
    text: str
    major: int | None = None
    minor: int | None = None
    pre: str | None = None          # "b2", "rc1" for beta/rc release requests
    version: Version | None = None  # exact revision (3+ components) for kind == "version"
    path: Path | None = None

    def matches(self, revision: Version) -> bool:
        if self.kind == "any":
            return True
        if self.kind == "path":
            return False
        if self.version is not None:
            return revision == self.version
        rel = revision.release + (0, 0)
        if (rel[0], rel[1]) != (self.major, self.minor):
            return False
        if self.pre is None:
            return revision.pre is None
        return revision.pre is not None and f"{revision.pre[0]}{revision.pre[1]}" == self.pre

    def describe(self) -> str:
        if self.kind == "release" and self.major is not None:
            return f"{self.text} (= {self.major}.{self.minor}.x)"
        return self.text


@dataclass(frozen=True)
class NdkInfo:
    path: Path
    revision: Version
    source: str

    def describe(self) -> str:
        return f"{self.revision} at {self.path} (from {self.source})"

    @property
    def standin(self) -> bool:
        """A labelled stand-in NDK (builder's tests: its source.properties says STAND-IN): Linux ELF outputs."""
        try:
            return "STAND-IN" in (self.path / "source.properties").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False


@dataclass(frozen=True)
class NdkScan:
    """All NDKs found, plus candidate folders that were looked at and rejected (with why)."""

    found: tuple[NdkInfo, ...]
    rejected: tuple[tuple[Path, str, str], ...] = ()   # (path, source, reason)


def release_name(revision: Version) -> str:
    """21.4.7075529 -> 'r21e'; 21.0.x -> 'r21'; 23.0.x-beta2 -> 'r23-beta2'."""
    major, minor = (revision.release + (0, 0))[:2]
    name = f"r{major}" + (chr(ord("a") + minor) if 0 < minor < 26 else "")
    if revision.pre is not None:
        kind = "beta" if revision.pre[0] == "b" else revision.pre[0]
        name += f"-{kind}{revision.pre[1]}"
    return name


def parse_ndk_request(text: str) -> NdkRequest:
    raw = text.strip()
    low = raw.lower()
    if low in _ANY_WORDS:
        return NdkRequest("any", raw or "any")
    if _looks_like_path(raw):
        return NdkRequest("path", raw, path=Path(raw).expanduser())
    m = _RELEASE_RE.match(low)
    if m:
        letter = m.group("letter")
        minor = 0 if letter is None else max(ord(letter) - ord("a"), 0)
        pre = None
        if m.group("pre"):
            pre = ("b" if m.group("pre") == "beta" else "rc") + m.group("pre_n")
        return NdkRequest("release", raw, major=int(m.group("major")), minor=minor, pre=pre)
    if _VERSION_RE.match(low):
        try:
            ver = Version(low)
        except InvalidVersion:
            ver = None
        if ver is not None:
            if len(ver.release) >= 3:
                return NdkRequest("version", raw, major=ver.release[0], minor=ver.release[1], version=ver)
            return NdkRequest("release", raw, major=ver.release[0], minor=ver.release[1],
                              pre=_pre_text(ver))
    raise ToolchainError(
        f"cannot read NDK request {text!r}",
        hint="use a version like 21.4.7075529, a release like r21e, or a path to an NDK folder")


def _pre_text(ver: Version) -> str | None:
    return None if ver.pre is None else f"{ver.pre[0]}{ver.pre[1]}"


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith(("~", "."))
            or (os.altsep is not None and os.altsep in text))


# ---------------------------------------------------------------------------------------------
# Reading one NDK folder

def read_properties(text: str) -> dict[str, str]:
    """Java-style ``key = value`` lines (comments with # or !)."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            continue
        props[line[:sep].strip()] = line[sep + 1:].strip()
    return props


def parse_revision(value: str) -> Version:
    """``21.4.7075529`` or ``23.0.7196353-beta2`` or ``25.0.8141415 rc1`` -> Version."""
    cleaned = re.sub(r"\s+", "-", value.strip())
    return Version(cleaned)


def inspect_ndk(path: Path, source: str = "path") -> NdkInfo:
    """Identify the NDK in ``path`` or raise ToolchainError saying why it is not one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ToolchainError(f"{path} (from {source}) does not exist")
    if not path.is_dir():
        raise ToolchainError(f"{path} (from {source}) is not a folder, so not an NDK")
    props_file = path / PROPERTIES_FILE
    if not props_file.is_file():
        raise ToolchainError(
            f"{path} (from {source}) is not an NDK: it has no {PROPERTIES_FILE}",
            hint="point at the folder that contains source.properties and build/")
    try:
        props = read_properties(props_file.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise ToolchainError(f"{path} (from {source}): cannot read {PROPERTIES_FILE}: {exc}") from exc
    raw = props.get("Pkg.Revision")
    if not raw:
        raise ToolchainError(f"{path} (from {source}) is not an NDK: {PROPERTIES_FILE} has no Pkg.Revision")
    try:
        revision = parse_revision(raw)
    except InvalidVersion as exc:
        raise ToolchainError(
            f"{path} (from {source}) is not an NDK: Pkg.Revision {raw!r} is not a version") from exc
    if not (path / TOOLCHAIN_FILE).is_file():
        raise ToolchainError(
            f"{path} (from {source}) is not a usable NDK: {TOOLCHAIN_FILE} is missing",
            hint="the NDK looks incomplete; reinstall it")
    return NdkInfo(path, revision, source)


# ---------------------------------------------------------------------------------------------
# Searching

def candidate_dirs(env: Mapping[str, str], home: Path) -> tuple[tuple[Path, str], ...]:
    """(folder, source) pairs in search order; nothing is read except folder listings."""
    out: list[tuple[Path, str]] = []
    for var in NDK_ENV_VARS:
        if env.get(var):
            out.append((Path(env[var]).expanduser(), var))
    sdks = [(Path(env[v]).expanduser(), v) for v in SDK_ENV_VARS if env.get(v)]
    sdks += [(home / rel, f"~/{rel}") for rel in HOME_SDKS]
    for sdk, label in sdks:
        out.extend((d, f"{label}/ndk") for d in _versioned_children(sdk / "ndk"))
        out.append((sdk / "ndk-bundle", f"{label}/ndk-bundle"))
    return tuple(out)


def _versioned_children(folder: Path) -> list[Path]:
    try:
        children = [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return []

    def key(p: Path) -> tuple[int, Version | str]:
        try:
            return (1, parse_revision(p.name))
        except InvalidVersion:
            return (0, p.name)
    # Newest first; unparseable names after versions, alphabetical among themselves.
    versions = sorted((c for c in children if key(c)[0]), key=key, reverse=True)
    others = sorted((c for c in children if not key(c)[0]), key=lambda p: p.name)
    return versions + others


def scan_ndks(env: Mapping[str, str], home: Path) -> NdkScan:
    found: list[NdkInfo] = []
    rejected: list[tuple[Path, str, str]] = []
    seen: set[str] = set()
    for path, source in candidate_dirs(env, home):
        explicit = source in NDK_ENV_VARS
        if not explicit and not path.exists():
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            found.append(inspect_ndk(path, source))
        except ToolchainError as exc:
            log.debug("skipping %s: %s", path, exc.message)
            rejected.append((path, source, exc.message))
    return NdkScan(tuple(found), tuple(rejected))


def find_ndks(env: Mapping[str, str], home: Path) -> tuple[NdkInfo, ...]:
    """Every NDK found, in search order, deduplicated by real path."""
    return scan_ndks(env, home).found


def default_sdk_root(env: Mapping[str, str], home: Path, system: str) -> Path:
    """Where ``builder ndk install`` puts NDKs: $ANDROID_HOME, $ANDROID_SDK_ROOT, else Studio's default."""
    for var in SDK_ENV_VARS:
        if env.get(var):
            return Path(env[var]).expanduser()
    return home / ("Library/Android/sdk" if system.lower() == "darwin" else "Android/Sdk")


# ---------------------------------------------------------------------------------------------
# Choosing

def env_choice(found: Sequence[NdkInfo], rejected: Iterable[tuple[Path, str, str]] = ()
               ) -> NdkInfo | tuple[Path, str, str] | None:
    """The NDK named by the first of ANDROID_NDK, ANDROID_NDK_HOME, ANDROID_NDK_ROOT that is set: its NdkInfo,
    or its (path, variable, reason) when it is not a usable NDK; None when none of them is set."""
    rejected = tuple(rejected)
    for var in NDK_ENV_VARS:
        hit = next((n for n in found if n.source == var), None)
        if hit is not None:
            return hit
        bad = next((r for r in rejected if r[1] == var), None)
        if bad is not None:
            return bad
    return None


def select_ndk(request: NdkRequest, found: Sequence[NdkInfo], supported: SpecifierSet,
               tested: VersionSet, force: bool = False,
               rejected: Iterable[tuple[Path, str, str]] = ()) -> tuple[NdkInfo, tuple[str, ...]]:
    """Pick the NDK to use (precedence in the module docstring); return it with warnings.

    ``found``/``rejected`` are a scan_ndks() result, in search order. Raises ToolchainError if none fits.
    """
    rejected = tuple(rejected)
    if request.kind == "path":
        assert request.path is not None
        chosen = inspect_ndk(request.path, "path")
    elif request.kind == "any" and (named := env_choice(found, rejected)) is not None:
        if not isinstance(named, NdkInfo):
            path, var, why = named
            raise ToolchainError(
                f"{var}={path} is set, so it is the NDK to use, but it is not one: {why}",
                hint=f"point {var} at an NDK folder (the one holding {PROPERTIES_FILE}), unset it"
                     + (f" to use one of the {len(found)} other NDKs found" if found else "")
                     + ", pass --ndk VERSION|PATH, or run `builder ndk install <version>`")
        chosen = named
    else:
        chosen = _pick(request, found, supported, tested, rejected)
    return chosen, _check_range(chosen, found, supported, tested, force)


def explain_choice(request: NdkRequest, chosen: NdkInfo, found: Sequence[NdkInfo], supported: SpecifierSet,
                   tested: VersionSet, asked_by: str = "--ndk") -> str:
    """Why select_ndk chose ``chosen``, in one line for the plan, which prints it after the NDK's revision and
    path (``asked_by`` names where a version or path request came from: ``--ndk`` or ``builder.toml``)."""
    where = chosen.source
    if request.kind == "path":
        return f"{asked_by} {request.text}"
    if request.kind != "any":
        return f"{asked_by} {request.text}, found in {where}"
    others = [n for n in found if n.path != chosen.path]
    if chosen.source in NDK_ENV_VARS:
        unset = NDK_ENV_VARS[:NDK_ENV_VARS.index(chosen.source)]
        text = f"from {where} ({_no_ndk(request)}" + "".join(f", no {v}" for v in unset) + ")"
        if others:
            n = len(others)
            text += f"; {n} other NDK{'s' if n != 1 else ''} found come{'s' if n == 1 else ''} later in the search"
        return text
    if not others:
        how = "the only NDK found"
    elif _contains(tested, chosen.revision):
        how = f"the newest the recipe tested, of {len(found)} found"
    elif _contains(supported, chosen.revision):
        how = f"the newest supported (none tested), of {len(found)} found"
    else:
        how = f"the newest (none supported), of {len(found)} found"
    return f"from {where}: {how} ({_no_ndk(request)}, {', '.join(NDK_ENV_VARS)} unset)"


def _no_ndk(request: NdkRequest) -> str:
    return "no --ndk" if request.text == "any" else f"--ndk {request.text}"


def _pick(request: NdkRequest, found: Sequence[NdkInfo], supported: SpecifierSet,
          tested: VersionSet, rejected: tuple[tuple[Path, str, str], ...]) -> NdkInfo:
    matches = [n for n in found if request.matches(n.revision)]
    if not matches:
        what = "no Android NDK found" if request.kind == "any" else \
            f"NDK {request.describe()} is not installed"
        lines = [what + "; " + _found_summary(found, supported, rejected)]
        want = request.text if request.kind != "any" else "<version>"
        raise ToolchainError(" ".join(lines), hint=f"run `builder ndk install {want}` "
                             f"(supported: {_spec_text(supported)}), or set ANDROID_NDK to an NDK folder")

    def rank(n: NdkInfo) -> tuple[bool, bool, Version]:
        return (_contains(tested, n.revision), _contains(supported, n.revision), n.revision)
    best = max(rank(n) for n in matches)
    return next(n for n in matches if rank(n) == best)   # first in search order among equals


def _check_range(chosen: NdkInfo, found: Sequence[NdkInfo], supported: SpecifierSet,
                 tested: VersionSet, force: bool) -> tuple[str, ...]:
    warnings: list[str] = []
    if not _contains(supported, chosen.revision):
        if not force:
            via = f" (from {chosen.source})" if chosen.source in NDK_ENV_VARS else ""
            raise ToolchainError(
                f"NDK {chosen.revision} ({release_name(chosen.revision)}) at {chosen.path}{via} is outside the "
                f"supported range {_spec_text(supported)}; " + _found_summary(found, supported, ()),
                hint="install a supported NDK with `builder ndk install <version>`"
                     + (f" or pick one with --ndk VERSION (or point {chosen.source} at it)" if via else "")
                     + ", or pass --force-ndk to try this one anyway")
        warnings.append(f"NDK {chosen.revision} is outside the supported range {_spec_text(supported)}; "
                        "continuing because of --force-ndk")
    if not _contains(tested, chosen.revision):
        warnings.append(f"NDK {chosen.revision} ({release_name(chosen.revision)}) has not been tested "
                        f"with this recipe (tested: {_spec_text(tested)})")
    return tuple(warnings)


def _contains(spec: VersionSet, version: Version) -> bool:
    return spec.contains(version, prereleases=True)


def _spec_text(spec: VersionSet) -> str:
    return str(spec) or "any"


def _found_summary(found: Sequence[NdkInfo], supported: SpecifierSet,
                   rejected: tuple[tuple[Path, str, str], ...]) -> str:
    if not found:
        text = "found none"
    else:
        parts = []
        for n in found:
            mark = "supported" if _contains(supported, n.revision) else "unsupported"
            parts.append(f"{n.revision} ({release_name(n.revision)}, {mark}) at {n.path} [{n.source}]")
        text = "found: " + "; ".join(parts)
    if rejected:
        text += "; ignored: " + "; ".join(f"{src}={p}: {why}" for p, src, why in rejected)
    return text


# ---------------------------------------------------------------------------------------------
# glslc (Vulkan shader compiler shipped in the NDK's shader-tools)

def host_tag(system: str, machine: str) -> str:
    """The NDK's prebuilt folder name for a host: linux-x86_64, darwin-x86_64, windows-x86_64."""
    # The NDK ships x86_64 host binaries only (Apple silicon runs them through Rosetta), so
    # ``machine`` does not change the tag; it is accepted so callers need not know that.
    _ = machine
    return f"{system.lower()}-x86_64"


def find_glslc(ndk: NdkInfo | Path | None, *, env: Mapping[str, str] | None = None,
               system: str | None = None, machine: str | None = None) -> Path | None:
    """The NDK's shader-tools glslc, else glslc on ``env['PATH']``; None when neither exists.

    ``env`` is the caller's environment; without it (or without PATH in it) only the NDK is
    searched. ``system``/``machine`` default to this host (platform.system()/machine()).
    """
    system = system or platform.system()
    exe = "glslc.exe" if system.lower() == "windows" else "glslc"
    if ndk is not None:
        candidate = _shader_tools(ndk, system, machine) / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    path_var = (env or {}).get("PATH")
    if path_var is None:
        return None
    hit = proc.which(exe, path=path_var)
    return Path(hit) if hit else None


def glslc(ndk: NdkInfo | Path | None, *, env: Mapping[str, str] | None = None,
          system: str | None = None, machine: str | None = None) -> Path:
    """Like find_glslc, but raises ToolchainError naming both places it looked."""
    hit = find_glslc(ndk, env=env, system=system, machine=machine)
    if hit is not None:
        return hit
    where = "" if ndk is None else f"{_shader_tools(ndk, system or platform.system(), machine)} or "
    raise ToolchainError(f"glslc (Vulkan shader compiler) not found in {where}PATH",
                         hint="Vulkan builds need it: use an NDK that has shader-tools, or install glslc")


def _shader_tools(ndk: NdkInfo | Path, system: str, machine: str | None) -> Path:
    root = ndk.path if isinstance(ndk, NdkInfo) else Path(ndk)
    return root / "shader-tools" / host_tag(system, machine or platform.machine())
