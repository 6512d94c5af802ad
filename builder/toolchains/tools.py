"""CMake, Ninja and compiler caches in the versions a recipe needs.

CMake/Ninja discovery is scikit-build-core's program search (PATH and the PyPI cmake/ninja wheels).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .. import proc
from ..errors import ToolchainError, UsageError, did_you_mean

CACHE_CHOICES = ("auto", "sccache", "ccache", "none")


@dataclass(frozen=True)
class Tool:
    name: str
    path: Path
    version: Version | None

    def describe(self) -> str:
        return f"{self.name} {self.version or '?'} ({self.path})"


def find_cmake(spec: SpecifierSet) -> Tool:
    from scikit_build_core.program_search import best_program, get_cmake_programs

    programs = list(get_cmake_programs())
    best = best_program(programs, version=spec)
    if best is None:
        seen = ", ".join(f"{p.version} at {p.path}" for p in programs) or "none"
        raise ToolchainError(f"no CMake {spec} found (found: {seen})",
                             hint=f'install one with: pip install "cmake{_pip_spec(spec)}"')
    return Tool("cmake", best.path, best.version)


def find_ninja(spec: SpecifierSet = SpecifierSet(">=1.10")) -> Tool:
    from scikit_build_core.program_search import best_program, get_ninja_programs

    programs = list(get_ninja_programs())
    best = best_program(programs, version=spec)
    if best is None:
        raise ToolchainError(f"no Ninja {spec} found", hint=f'install one with: pip install "ninja{_pip_spec(spec)}"')
    return Tool("ninja", best.path, best.version)


def _pip_spec(spec: SpecifierSet) -> str:
    return ",".join(str(s) for s in sorted(spec, key=str)) or ""


def all_cmakes() -> tuple[Tool, ...]:
    from scikit_build_core.program_search import get_cmake_programs, get_ninja_programs

    found = [Tool("cmake", p.path, p.version) for p in get_cmake_programs()]
    found += [Tool("ninja", p.path, p.version) for p in get_ninja_programs()]
    return tuple(found)


def find_launcher(choice: str, environ: dict[str, str] | None = None) -> Path | None:
    """The compiler launcher for --cache: auto picks sccache, then ccache; none disables."""
    if choice not in CACHE_CHOICES:
        raise UsageError(f"unknown --cache '{choice}'" + did_you_mean(choice, CACHE_CHOICES),
                         hint="use auto, sccache, ccache or none")
    if choice == "none":
        return None
    path_env = (environ or os.environ).get("PATH")
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
