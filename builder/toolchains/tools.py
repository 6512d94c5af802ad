"""CMake, Ninja and compiler caches in the versions a recipe needs.

CMake/Ninja discovery is scikit-build-core's program search (PATH and the PyPI cmake/ninja wheels).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .. import atomic, proc
from ..errors import ToolchainError, UsageError, did_you_mean

CACHE_CHOICES = ("auto", "sccache", "ccache", "none")


@dataclass(frozen=True)
class Tool:
    name: str
    path: Path
    version: Version | None

    def describe(self) -> str:
        return f"{self.name} {self.version or '?'} ({self.path})"


def versions_file(cache_dir: Path | None) -> Path | None:
    """Where tools' answers to --version are kept between runs (None: ask every time)."""
    return cache_dir / "tool-versions.json" if cache_dir is not None else None


def find_cmake(spec: SpecifierSet, *, versions: Path | None = None) -> Tool:
    """The best CMake in ``spec`` among the PyPI wheel's and PATH's (scikit-build-core's search order and choice;
    the versions asked through proc and cached in ``versions``)."""
    from scikit_build_core.program_search import Program, best_program

    programs = [Program(p, _cached_version(p, ("-E", "capabilities"), _cmake_version, versions))
                for p in _candidates("cmake")]
    best = best_program(programs, version=spec)
    if best is None:
        seen = ", ".join(f"{p.version} at {p.path}" for p in programs) or "none"
        raise ToolchainError(f"no CMake {spec} found (found: {seen})",
                             hint=f'install one with: pip install "cmake{_pip_spec(spec)}"')
    return Tool("cmake", best.path, best.version)


NINJA = SpecifierSet(">=1.10")


def find_ninja(spec: SpecifierSet = NINJA, *, versions: Path | None = None) -> Tool:
    from scikit_build_core.program_search import Program, best_program

    programs = [Program(p, _cached_version(p, ("--version",), _plain_version, versions)) for p in _candidates("ninja")]
    best = best_program(programs, version=spec)
    if best is None:
        raise ToolchainError(f"no Ninja {spec} found", hint=f'install one with: pip install "ninja{_pip_spec(spec)}"')
    return Tool("ninja", best.path, best.version)


_PATH_NAMES = {"cmake": ("cmake", "cmake3"), "ninja": ("ninja-build", "ninja", "samu")}
_WHEEL_BIN = {"cmake": ("cmake", "data/bin/cmake"), "ninja": ("ninja", "data/bin/ninja")}


def _candidates(name: str) -> list[Path]:
    """The PyPI wheel's binary first, then PATH: the order of scikit-build-core's program_search.

    The wheel is located with find_spec rather than imported (importing `cmake` costs ~50 ms of start-up).
    """
    import importlib.util

    out: list[Path] = []
    module, rel = _WHEEL_BIN[name]
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        wheel_bin = Path(list(spec.submodule_search_locations)[0]) / rel
        if wheel_bin.is_file():
            out.append(wheel_bin)
    for exe in _PATH_NAMES[name]:
        found = proc.which(exe)
        if found and Path(found) not in out:
            out.append(Path(found))
    return out


def _cmake_version(stdout: str) -> Version | None:
    import json

    try:
        v = json.loads(stdout)["version"]
        return Version(f"{v['major']}.{v['minor']}.{v['patch']}")
    except (ValueError, KeyError, TypeError):
        return None


def _plain_version(stdout: str) -> Version | None:
    try:
        return Version(".".join(stdout.strip().split(".")[:3]))
    except ValueError:
        return None


def _cached_version(path: Path, args: tuple[str, ...], parse: Callable[[str], Version | None],
                    versions: Path | None) -> Version | None:
    """Ask a tool its version once per binary; see _cached_answer."""
    text = _cached_answer(path, args, lambda out: str(v) if (v := parse(out)) else None, versions)
    return Version(text) if text else None


def compiler_identity(environ: Mapping[str, str], *, versions: Path | None = None) -> str | None:
    """The host C++ compiler ($CXX, else c++) and its `--version` line: part of a host build's key."""
    found = proc.which(environ.get("CXX") or "c++", path=environ.get("PATH"))
    if found is None:
        return None
    line = _cached_answer(Path(found), ("--version",),
                          lambda out: out.strip().splitlines()[0] if out.strip() else None, versions)
    return f"{line} ({found})" if line else found


def _cached_answer(path: Path, args: tuple[str, ...], parse: Callable[[str], str | None],
                   cache_file: Path | None) -> str | None:
    """A tool's parsed answer to ``args``, asked once per binary (keyed by path, args, size and mtime) when there
    is a ``cache_file``, so start-up stays fast."""
    import json

    try:
        st = path.resolve().stat()
    except OSError:
        return None
    key = f"{path}|{' '.join(args)}|{st.st_size}|{st.st_mtime_ns}"
    cache: dict[str, str | None] = {}
    if cache_file is not None:
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    if not isinstance(cache, dict):      # valid JSON of another shape: start again
        cache = {}
    if key in cache and (cache[key] is None or isinstance(cache[key], str)):
        return cache[key]
    try:
        out = proc.run([path, *args], check=False, timeout=30).stdout
    except OSError:
        out = ""
    cache[key] = parse(out)
    if cache_file is not None:
        with contextlib.suppress(OSError):
            atomic.write_text(cache_file, json.dumps(cache, indent=1))
    return cache[key]


def _pip_spec(spec: SpecifierSet) -> str:
    return ",".join(str(s) for s in sorted(spec, key=str)) or ""


def all_tools(versions: Path | None = None) -> tuple[Tool, ...]:
    """Every CMake and Ninja candidate with its version (for `builder doctor`)."""
    found = [Tool("cmake", p, _cached_version(p, ("-E", "capabilities"), _cmake_version, versions))
             for p in _candidates("cmake")]
    found += [Tool("ninja", p, _cached_version(p, ("--version",), _plain_version, versions))
              for p in _candidates("ninja")]
    return tuple(found)


def find_launcher(choice: str, environ: Mapping[str, str]) -> Path | None:
    """The compiler launcher for --cache: auto picks sccache, then ccache; none disables."""
    if choice not in CACHE_CHOICES:
        raise UsageError(f"unknown --cache '{choice}'" + did_you_mean(choice, CACHE_CHOICES),
                         hint="use auto, sccache, ccache or none")
    if choice == "none":
        return None
    path_env = environ.get("PATH")
    names = ("sccache", "ccache") if choice == "auto" else (choice,)
    for name in names:
        found = proc.which(name, path=path_env)
        if found:
            return Path(found)
    if choice == "auto":
        return None
    raise ToolchainError(f"--cache {choice}: {choice} not found on PATH",
                         hint=f"install it (apt-get install {choice}) or use --cache auto/none")


def tool_version(path: Path, args: tuple[str, ...] = ("--version",)) -> str:
    """First line of `tool --version` (for doctor and manifests)."""
    try:
        out = proc.run([path, *args], check=False)
    except OSError:
        return "?"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "?"
