"""plan(config) -> Plan: the exact, ordered steps of a build. Pure: reads files, runs nothing.

CMake defines are typed data; ``render_define`` is the one place they become ``-DKEY=VALUE``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import source
from .config import BuildConfig, cmake_major
from .errors import RecipeError
from .levers import lever_defines, link_spec
from .proc import render
from .recipes import DefineValue
from .toolchains.ndk import release_name
from .targets.base import Slice, get_target

STAMP = ".builder-done.json"


@dataclass(frozen=True)
class Step:
    kind: str                      # source | configure | build | install | package
    title: str
    argv: tuple[str, ...] = ()
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    slice: str | None = None
    data: Any = None               # kind-specific payload (git action, install paths, ...)
    script: tuple[str, ...] = ()   # for in-process steps (git via GitPython): equivalent shell lines

    def shell(self) -> str:
        if self.argv:
            return render(self.argv, self.cwd, self.env)
        return "\n".join(self.script) if self.script else f"# {self.title}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "argv": list(self.argv),
                "cwd": str(self.cwd) if self.cwd else None, "env": dict(self.env), "slice": self.slice,
                "shell": self.shell()}


@dataclass(frozen=True)
class SlicePlan:
    slice: Slice
    key: str                       # hash of everything that changes this slice's output
    build_dir: Path
    install_dir: Path
    defines: Mapping[str, DefineValue | Path]
    env: Mapping[str, str]


@dataclass(frozen=True)
class Plan:
    config: BuildConfig
    steps: tuple[Step, ...]
    slices: tuple[SlicePlan, ...]

    @property
    def tree_key(self) -> str:
        """What the files a build generates into the shared source tree depend on (see intree): the source and
        every define and environment setting all slices share. One plan's slices (ABIs, architectures) write the
        same files there, so they do not count as each other's "other configuration"."""
        shared_defines = _shared(s.defines for s in self.slices)
        shared_env = _shared(s.env for s in self.slices)
        shared_defines.pop("CMAKE_INSTALL_PREFIX", None)
        c = self.config
        payload = {"commit": c.recipe.commit, "source": str(c.source_path), "target": c.target,
                   "patches": [(p.name, _sha_file(p)) for p in c.patches],
                   "ops": _sha_file(c.ops_file) if c.ops_file else None,
                   "defines": {k: render_value(v) for k, v in shared_defines.items()}, "env": shared_env}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        c = self.config
        ls = link_spec(c.recipe, c.size_levers)
        link_json = {"mode": ls.mode, "flags": list(ls.flags), "strip": ls.strip}
        return {
            "target": c.target, "tag": c.recipe.tag, "commit": c.recipe.commit,
            "commit_verified": c.recipe.commit_verified, "source": str(c.source_path),
            "submodules": list(c.submodules), "patches": [p.name for p in c.patches],
            "features": sorted(c.features), "system_libs": sorted(c.system_libs),
            "size_levers": list(c.size_levers), "link": link_json,
            "ndk": {"path": str(c.ndk.path), "revision": str(c.ndk.revision), "source": c.ndk.source,
                    "why": c.ndk_reason} if c.ndk else None,
            "cmake": c.cmake.describe(), "ninja": c.ninja.describe(),
            "launcher": str(c.launcher) if c.launcher else None, "warnings": list(c.warnings),
            "slices": [{"name": s.slice.name, "key": s.key, "build_dir": str(s.build_dir),
                        "install_dir": str(s.install_dir),
                        "defines": {k: render_value(v) for k, v in s.defines.items()}} for s in self.slices],
            "steps": [s.to_json() for s in self.steps],
        }

    def to_text(self) -> str:
        lines = [f"# builder plan: {self.config.target} {self.config.recipe.tag} "
                 f"({len(self.slices)} slice{'s' if len(self.slices) != 1 else ''})"]
        if self.config.ndk is not None:
            ndk = self.config.ndk
            lines.append(f"# NDK {ndk.revision} ({release_name(ndk.revision)}) at {ndk.path}"
                         + (f", {self.config.ndk_reason}" if self.config.ndk_reason else ""))
        lines += [f"# warning: {w}" for w in self.config.warnings]
        if self.config.size_levers:
            lines.append(f"# size levers: {', '.join(self.config.size_levers)} "
                         f"(programs linking it: {link_spec(self.config.recipe, self.config.size_levers).describe()})")
        for step in self.steps:
            lines.append(f"# {step.kind}: {step.title}")
            if step.argv or step.script:
                lines.append(step.shell())
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ defines

def render_value(value: DefineValue | Path) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)


def render_define(key: str, value: DefineValue | Path) -> str:
    return f"-D{key}={render_value(value)}"


class _Strict(dict):
    def __missing__(self, key: str) -> str:
        raise RecipeError(f"unknown placeholder {{{key}}} in a recipe define")


def _fill(defines: Mapping[str, DefineValue], values: Mapping[str, str]) -> dict[str, DefineValue]:
    table = _Strict(values)
    return {k: v.format_map(table) if isinstance(v, str) else v for k, v in defines.items()}


def slice_defines(config: BuildConfig, slice_: Slice) -> dict[str, DefineValue | Path]:
    """Every define for one slice, in the documented order (last wins)."""
    recipe, target = config.recipe, config.recipe.target(config.target)
    tmod = get_target(config.target)
    values = {"source": str(config.source_path), "python": str(config.python),
              "python_purelib": str(config.python_purelib),
              "ops_file": str(config.ops_file) if config.ops_file else "", **tmod.placeholders(config, slice_)}
    layers: list[Mapping[str, DefineValue]] = [target.defines]
    if config.ndk is not None:
        layers += [c.defines for c in target.conditionals if config.ndk.revision in c.ndk]
    layers += [target.extra_defines, target.slice_defines]
    for name, feature in recipe.features.items():
        if config.target in feature.targets:
            layers.append(feature.on if name in config.features else feature.off)
    layers += [recipe.system_libs[name].defines for name in sorted(config.system_libs)]
    layers.append(_builder_defines(config))
    layers.append(tmod.defines(config, slice_))
    out: dict[str, DefineValue | Path] = {}
    for layer in layers:
        out.update(_fill(layer, values))
    for layer in lever_defines(config.recipe, config.size_levers):   # size levers, after builder's own
        merge_lever_defines(out, _fill(layer, values))
    out.update(dict(config.user_defines))
    return out


def merge_lever_defines(out: dict[str, DefineValue | Path], layer: Mapping[str, DefineValue]) -> None:
    """A size lever's defines: keys ending in ``_FLAGS`` are appended (space-separated) to the slice's value,
    so e.g. iOS's CMAKE_CXX_FLAGS=-fobjc-arc survives; other keys replace. The one place this rule lives."""
    for key, value in layer.items():
        current = out.get(key)
        if key.endswith("_FLAGS") and current not in (None, "") and not isinstance(current, bool):
            if f" {' '.join(str(value).split())} " not in f" {' '.join(str(current).split())} ":
                out[key] = f"{current} {value}"
        else:
            out[key] = value


def _builder_defines(config: BuildConfig) -> dict[str, DefineValue]:
    target = config.recipe.target(config.target)
    out: dict[str, DefineValue] = {"CMAKE_BUILD_TYPE": target.build_type,
                                   "CMAKE_MAKE_PROGRAM": str(config.ninja.path)}
    if config.launcher is not None:
        out["CMAKE_C_COMPILER_LAUNCHER"] = str(config.launcher)
        out["CMAKE_CXX_COMPILER_LAUNCHER"] = str(config.launcher)
    if config.recipe.cmake_policy_minimum and cmake_major(config) >= 4:
        out["CMAKE_POLICY_VERSION_MINIMUM"] = config.recipe.cmake_policy_minimum
    return out


# ------------------------------------------------------------------ keys and layout

def _shared(mappings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The items every mapping has, with the same value."""
    maps = list(mappings)
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(k in m and m[k] == v for m in maps[1:])}


def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def slice_key(config: BuildConfig, slice_: Slice, defines: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """A hash of everything that changes a slice's output; a changed input means a fresh build folder."""
    payload = {
        "commit": config.recipe.commit, "tag": config.recipe.tag, "target": config.target,
        "slice": slice_.name, "patches": [(p.name, _sha_file(p)) for p in config.patches],
        "submodules": list(config.submodules),
        "ndk": str(config.ndk.revision) if config.ndk else None,
        "toolchain_file": _sha_file(config.ndk.path / "build/cmake/android.toolchain.cmake") if config.ndk else None,
        "api_level": config.api_level, "defines": {k: render_value(v) for k, v in defines.items()
                                                   if k != "CMAKE_INSTALL_PREFIX"},
        "ops": _sha_file(config.ops_file) if config.ops_file else None,
        "env": dict(env), "compiler": config.compiler,
        "source": str(config.source_path),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def plan_slice(config: BuildConfig, slice_: Slice) -> SlicePlan:
    tmod = get_target(config.target)
    env = {**config.recipe.target(config.target).env, **tmod.env(config, slice_)}
    defines = slice_defines(config, slice_)
    key = slice_key(config, slice_, defines, env)
    build_dir = config.out_dir / "build" / f"{config.target}-{slice_.name}-{key[:12]}"
    install_dir = build_dir / "install"
    defines = {**defines, "CMAKE_INSTALL_PREFIX": install_dir}
    return SlicePlan(slice_, key, build_dir, install_dir, defines, {**env, **cache_env(config)})


def cache_env(config: BuildConfig) -> dict[str, str]:
    """Compiler-cache settings that make hits possible across build folders; not part of the output key.

    Build folders are named by their key and PyTorch compiles with -I<build folder>/..., so ccache must hash
    paths relative to the working directory (CCACHE_BASEDIR=/ rewrites every absolute path; folders at the same
    depth then share entries) and not the directory itself (CCACHE_NOHASHDIR).
    """
    if config.launcher is None or "ccache" not in config.launcher.name or "sccache" in config.launcher.name:
        return {}
    return {"CCACHE_BASEDIR": "/", "CCACHE_NOHASHDIR": "1"}


def build_steps(config: BuildConfig, sp: SlicePlan) -> list[Step]:
    cmake = str(config.cmake.path)
    gen = config.recipe.target(config.target).generator
    configure = (cmake, "-S", str(config.source_path), "-B", str(sp.build_dir), "-G", gen,
                 *(render_define(k, v) for k, v in sp.defines.items()))
    staging = sp.build_dir / "install.partial"
    name = sp.slice.name
    return [
        Step("configure", f"configure {name}", configure, None, sp.env, name, sp),
        Step("build", f"build {name}", (cmake, "--build", str(sp.build_dir), "-j", str(config.jobs)),
             None, sp.env, name, sp),
        Step("install", f"install {name} (staged, then renamed to {sp.install_dir})",
             (cmake, "--install", str(sp.build_dir), "--prefix", str(staging)), None, sp.env, name, sp),
    ]


def ndk_steps(config: BuildConfig) -> list[Step]:
    if not config.ndk_install or config.ndk is None:
        return []
    return [Step("ndk", f"install NDK {config.ndk_install} into {config.ndk.path} (pinned checksum)",
                 script=(f"builder ndk install {config.ndk_install} --sdk {config.ndk.path.parent.parent}",),
                 data=config.ndk_install)]


def source_steps(config: BuildConfig) -> list[Step]:
    actions = source.plan_checkout(config.source, config.recipe.tag, config.recipe.commit,
                                   config.submodules, config.patches)
    return [Step("source", a.title, (), None, {}, None, a, tuple(a.shell)) for a in actions]


def plan(config: BuildConfig) -> Plan:
    slices = tuple(plan_slice(config, s) for s in config.slices)
    steps = ndk_steps(config) + source_steps(config)
    for sp in slices:
        steps += build_steps(config, sp)
    steps.append(package_step(config))
    return Plan(config, tuple(steps), slices)


def package_step(config: BuildConfig) -> Step:
    if config.target == "host":
        what = f"host SDK {config.out_dir / (str(config.artifact) + '-' + config.recipe.tag + '.tar.gz')}"
    else:
        what = "install folders"
    return Step("package", f"package {what} with manifest.json (tag, commit, submodules, patches, defines, files)")
