"""plan(config) -> Plan: the exact, ordered steps of a build. Pure: reads files, runs nothing.

The target decides which steps a build has (``config.target.steps``); this module has what every target shares:
the slice plans (defines in their documented order, the key that names a build folder), the source steps, the
libtorch configure/build/install of a slice, the facts a manifest records. CMake defines are typed data;
``steps.render_define`` is the one place they become ``-DKEY=VALUE``.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import source
from .errors import RecipeError
from .hashing import sha256_file_or_missing, sha256_json
from .levers import lever_defines, link_spec
from .recipes import DefineValue
from .steps import (
    BuildFacts,
    CMakeBuildStep,
    CMakeConfigureStep,
    CMakeInstallStep,
    CMakeProject,
    HostSdkStep,
    NdkInstallStep,
    Step,
    render_define,
    render_value,
)
from .targets.base import Slice
from .toolchains.ndk import release_name

if TYPE_CHECKING:
    from .config import BuildConfig

log = logging.getLogger("builder")
STAMP = ".builder-done.json"
__all__ = ["STAMP", "Plan", "SlicePlan", "for_checked_out", "for_installed_ndk", "plan", "render_define",
           "render_value", "slice_defines"]


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
        return tree_key(self.config, self.slices)

    def to_json(self) -> dict[str, Any]:
        c = self.config
        ls = link_spec(c.recipe, c.size_levers)
        link_json = {"mode": ls.mode, "flags": list(ls.flags), "strip": ls.strip}
        return {
            "target": c.target.name, "tag": c.recipe.tag, "commit": c.recipe.commit,
            "commit_verified": c.recipe.commit_verified, "source": str(c.source_path),
            "submodules": list(c.submodules), "patches": [p.name for p in c.patches],
            "features": sorted(c.features), "system_libs": sorted(c.system_libs),
            "size_levers": list(c.size_levers), "link": link_json,
            "ndk": {"path": str(c.ndk.path), "revision": str(c.ndk.revision), "source": c.ndk.source,
                    "why": c.ndk_reason} if c.ndk else None,
            "cmake": c.cmake.describe(), "ninja": c.ninja.describe(),
            "launcher": str(c.launcher) if c.launcher else None, "warnings": list(c.warnings),
            "slices": [{"name": s.slice.name, "key": s.key, "build_dir": str(s.build_dir),
                        "install_dir": str(s.install_dir), "artifact": str(self.artifact(s)),
                        "defines": {k: render_value(v) for k, v in s.defines.items()}} for s in self.slices],
            "steps": [s.to_json() for s in self.steps],
        }

    def artifact(self, sp: SlicePlan) -> Path:
        """What packaging writes for a slice: host, the SDK tarball (named by the slice's key); android / ios, the
        install folder (packaged later by `builder package`)."""
        for step in self.steps:
            if isinstance(step, HostSdkStep) and step.install_dir == sp.install_dir:
                return step.dest
        return sp.install_dir

    def to_text(self) -> str:
        lines = [f"# builder plan: {self.config.target.name} {self.config.recipe.tag} "
                 f"({len(self.slices)} slice{'s' if len(self.slices) != 1 else ''})"]
        if self.config.ndk is not None:
            ndk = self.config.ndk
            lines.append(f"# NDK {ndk.revision} ({release_name(ndk.revision)}) at {ndk.path}"
                         + (f", {self.config.ndk_reason}" if self.config.ndk_reason else ""))
        lines += [f"# warning: {w}" for w in self.config.warnings]
        if self.config.source.allow_unpinned:
            lines.append("# --allow-unpinned: build folders below are named for the recipe's commit; when the tag "
                         "checks out another commit, the run names them after that one (and says so)")
        if self.config.size_levers:
            lines.append(f"# size levers: {', '.join(self.config.size_levers)} "
                         f"(programs linking it: {link_spec(self.config.recipe, self.config.size_levers).describe()})")
        for step in self.steps:
            lines.append(f"# {step.kind}: {step.describe()}")
            text = step.shell()
            if text:
                lines.append(text)
        return "\n".join(lines) + "\n"


def plan(config: BuildConfig) -> Plan:
    slices = tuple(plan_slice(config, s) for s in config.slices)
    return Plan(config, config.target.steps(config, slices), slices)


def for_checked_out(the_plan: Plan, commit: str) -> Plan | None:
    """The plan whose keys hold ``commit``, the commit checked out, when it is not the recipe's (--allow-unpinned: a
    moved tag, a --source tree elsewhere): a build of it must never be found "up to date" by a later build of the
    pinned commit (or the reverse). None when it is the recipe's."""
    recipe = the_plan.config.recipe
    if not commit or (recipe.commit and commit.startswith(recipe.commit.lower())):
        return None
    log.warning("building commit %s, not the recipe's %s: build folders are keyed by it", commit[:12],
                (recipe.commit or "(none)")[:12])
    config = dataclasses.replace(the_plan.config, recipe=dataclasses.replace(recipe, commit=commit,
                                                                           commit_verified=False))
    return plan(config)


def for_installed_ndk(the_plan: Plan) -> Plan:
    """The plan as the next run will make it, the NDK being installed now: keys hold its toolchain file's digest
    (not "missing"), so the next run is not a full rebuild."""
    return plan(dataclasses.replace(the_plan.config, ndk_install=None))



# ------------------------------------------------------------------ defines


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise RecipeError(f"unknown placeholder {{{key}}} in a recipe define")


def _fill(defines: Mapping[str, DefineValue], values: Mapping[str, str]) -> dict[str, DefineValue]:
    table = _Strict(values)
    return {k: v.format_map(table) if isinstance(v, str) else v for k, v in defines.items()}


def slice_defines(config: BuildConfig, slice_: Slice) -> dict[str, DefineValue | Path]:
    """Every define for one slice, in the documented order (last wins)."""
    recipe, target = config.recipe, config.recipe.target(config.target.name)
    values = {"source": str(config.source_path), "python": str(config.python),
              "python_purelib": str(config.python_purelib),
              "ops_file": str(config.ops_file) if config.ops_file else "",
              **config.target.placeholders(config, slice_)}
    layers: list[Mapping[str, DefineValue]] = [target.defines]
    if config.ndk is not None:
        layers += [c.defines for c in target.conditionals if config.ndk.revision in c.ndk]
    layers += [target.extra_defines, target.slice_defines]
    for name, feature in recipe.features.items():
        if config.target.name in feature.targets:
            layers.append(feature.on if name in config.features else feature.off)
    layers += [recipe.system_libs[name].defines for name in sorted(config.system_libs)]
    layers.append(_builder_defines(config))
    layers.append(config.target.defines(config, slice_))
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
    target = config.recipe.target(config.target.name)
    out: dict[str, DefineValue] = {"CMAKE_BUILD_TYPE": target.build_type,
                                   "CMAKE_MAKE_PROGRAM": str(config.ninja.path)}
    if config.launcher is not None:
        out["CMAKE_C_COMPILER_LAUNCHER"] = str(config.launcher)
        out["CMAKE_CXX_COMPILER_LAUNCHER"] = str(config.launcher)
    if config.recipe.cmake_policy_minimum and config.cmake_major >= 4:
        out["CMAKE_POLICY_VERSION_MINIMUM"] = config.recipe.cmake_policy_minimum
    return out


# ------------------------------------------------------------------ keys and layout


def _shared(mappings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The items every mapping has, with the same value."""
    maps = list(mappings)
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(k in m and m[k] == v for m in maps[1:])}


def tree_key(config: BuildConfig, slices: tuple[SlicePlan, ...]) -> str:
    """What the files a build generates into the shared source tree depend on (see intree): the source and
    every define and environment setting all slices share. One plan's slices (ABIs, architectures) write the
    same files there, so they do not count as each other's "other configuration"."""
    shared_defines = _shared(s.defines for s in slices)
    shared_env = _shared(s.env for s in slices)
    c = config
    return sha256_json({"commit": c.recipe.commit, "source": str(c.source_path), "target": c.target.name,
                        "patches": [(p.name, sha256_file_or_missing(p)) for p in c.patches],
                        "ops": ops_digest(c), "defines": keyed_defines(c, shared_defines), "env": shared_env})


def ops_digest(config: BuildConfig) -> str | None:
    """What the build reads from the op list (operators, not comments naming the models), or None."""
    from .models.ops import op_list_digest

    return op_list_digest(config.ops_file) if config.ops_file else None


def keyed_defines(config: BuildConfig, defines: Mapping[str, Any]) -> dict[str, str]:
    """The defines as a key holds them: without the install prefix (inside the keyed folder), and the op list's
    path as a token (its content is keyed by ``ops_digest``: the same list at another path is the same build)."""
    ops = str(config.ops_file) if config.ops_file else None
    return {k: "<op list>" if ops and render_value(v) == ops else render_value(v)
            for k, v in defines.items() if k != "CMAKE_INSTALL_PREFIX"}


def slice_key(config: BuildConfig, slice_: Slice, defines: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """A hash of everything that changes a slice's output; a changed input means a fresh build folder."""
    return sha256_json({
        "commit": config.recipe.commit, "tag": config.recipe.tag, "target": config.target.name,
        "slice": slice_.name, "patches": [(p.name, sha256_file_or_missing(p)) for p in config.patches],
        "submodules": list(config.submodules),
        "ndk": str(config.ndk.revision) if config.ndk else None,
        "toolchain_file": sha256_file_or_missing(config.ndk.path / "build/cmake/android.toolchain.cmake")
        if config.ndk else None,
        "api_level": config.api_level, "defines": keyed_defines(config, defines), "ops": ops_digest(config),
        "env": dict(env), "compiler": config.compiler,
        "source": str(config.source_path),
    })


def plan_slice(config: BuildConfig, slice_: Slice) -> SlicePlan:
    env = {**config.recipe.target(config.target.name).env, **config.target.env(config, slice_)}
    defines = slice_defines(config, slice_)
    key = slice_key(config, slice_, defines, env)
    build_dir = config.out_dir / "build" / f"{config.target.name}-{slice_.name}-{key[:12]}"
    install_dir = build_dir / "install"
    defines = {**defines, "CMAKE_INSTALL_PREFIX": install_dir}
    return SlicePlan(slice_, key, build_dir, install_dir, defines, {**env, **cache_env(config, build_dir)})


def cache_env(config: BuildConfig, build_dir: Path) -> dict[str, str]:
    """Compiler-cache settings that make hits possible across build folders; not part of the output key.

    Ninja gives paths inside the build folder relative (``-I aten/src``, generated sources) and paths outside it
    absolute (the source checkout, shared by every build folder of a tag). ccache rewrites absolute paths under
    CCACHE_BASEDIR relative to the working directory (the build folder): with the build folder as the base, the
    build's own absolute paths become relative and the source checkout's stay absolute, so the same build in
    another folder, at any depth, hashes the same command lines and preprocessed text. (CCACHE_BASEDIR=/ made every
    path relative to the build folder: a build folder at another depth missed every object.) CCACHE_NOHASHDIR: the
    working directory is not hashed either.
    """
    if config.launcher is None or "ccache" not in config.launcher.name or "sccache" in config.launcher.name:
        return {}
    return {"CCACHE_BASEDIR": str(build_dir), "CCACHE_NOHASHDIR": "1"}


# ------------------------------------------------------------------ steps every target shares


def ndk_steps(config: BuildConfig) -> list[Step]:
    """Install the NDK first when --install-ndk found it missing."""
    if not config.ndk_install or config.ndk is None:
        return []
    sdk = config.ndk.path.parent.parent
    return [NdkInstallStep(title=f"install NDK {config.ndk_install} into {config.ndk.path} (pinned checksum)",
                           version=config.ndk_install, sdk_root=sdk, ndk_path=config.ndk.path,
                           download_dir=config.cache_dir / "downloads")]


def source_steps(config: BuildConfig) -> list[Step]:
    """Fetch the tag, verify its commit, the work tree, the submodules, the patches: git exactly as it runs."""
    return list(source.plan_checkout(config.source, config.recipe.tag, config.recipe.commit or "",
                                     config.submodules, config.patches))


def libtorch_project(config: BuildConfig, sp: SlicePlan, shared_tree_key: str) -> CMakeProject:
    meta = {"tag": config.recipe.tag, "target": config.target.name, "slice": sp.slice.name, "key": sp.key,
            "defines": {k: render_value(v) for k, v in sp.defines.items()}, "env": dict(sp.env)}
    return CMakeProject(name=sp.slice.name, slice=sp.slice.name, source_dir=config.source_path,
                        build_dir=sp.build_dir, install_dir=sp.install_dir, key=sp.key, cmake=config.cmake.path,
                        env=sp.env, tree_key=shared_tree_key, meta=meta, build_for_install=True)


def cmake_steps(project: CMakeProject, generator: str, defines: Mapping[str, DefineValue | int | Path],
                jobs: int) -> list[Step]:
    """Configure, build and install one CMake project (the install staged, then renamed into place)."""
    name = project.name
    return [
        CMakeConfigureStep(title=f"configure {name}", slice=project.slice, project=project, generator=generator,
                           defines=defines),
        CMakeBuildStep(title=f"build {name}", slice=project.slice, project=project, jobs=jobs),
        CMakeInstallStep(title=f"install {name} (staged, then renamed to {project.install_dir})",
                         slice=project.slice, project=project),
    ]


def libtorch_steps(config: BuildConfig, slices: tuple[SlicePlan, ...]) -> list[Step]:
    """libtorch's configure/build/install for every slice, in the release's mobile configuration."""
    shared = tree_key(config, slices)
    generator = config.recipe.target(config.target.name).generator
    out: list[Step] = []
    for sp in slices:
        out += cmake_steps(libtorch_project(config, sp, shared), generator, sp.defines, config.jobs)
    return out


def build_facts(config: BuildConfig, sp: SlicePlan, label: str, toolchain: Mapping[str, str]) -> BuildFacts:
    """What a manifest records about the build of ``sp``, known before anything runs."""
    return BuildFacts(target=label, slice=sp.slice.name, key=sp.key,
                      defines={k: render_value(v) for k, v in sp.defines.items()}, env=dict(sp.env),
                      toolchain=dict(toolchain))


MANIFEST_CONTENT = "with manifest.json (tag, commit, submodules, patches, defines, files)"
