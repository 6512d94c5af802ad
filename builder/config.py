"""BuildRequest (what the user asked) -> resolve() -> BuildConfig (everything a plan needs), frozen.

Precedence: CLI > environment > config file (builder.toml) > recipe > defaults. resolve() validates everything and
reports all problems at once, before any side effect (it only reads files and asks tools their versions).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from . import checks
from . import recipes as recipes_mod
from . import settings as settings_mod
from .errors import UsageError, ValidationErrors, did_you_mean
from .levers import choose as choose_levers
from .recipes import Defines, Recipe
from .settings import Environment, Settings
from .source import SourceSpec
from .targets import get_target
from .targets.base import Slice, Target
from .toolchains import ndk as ndk_mod
from .toolchains import tools

if TYPE_CHECKING:
    from .targets.android_aar import JavaToolchain

UPSTREAM = "https://github.com/pytorch/pytorch.git"
TOOL_ENV = ("CXX", "LIBRARY_PATH", "OBJCOPY")   # what steps that compile outside CMake take from the machine
FLAG_FEATURES = {"vulkan": "vulkan", "vulkan_fp16": "vulkan_fp16", "vulkan_relaxed": "vulkan_relaxed",
                 "vulkan_shaderc": "vulkan_shaderc", "vulkan_wrapper": "vulkan_wrapper", "metal": "metal",
                 "coreml": "coreml", "tracing_based": "tracing_based",
                 "lightweight_dispatch": "lightweight_dispatch"}


BuildRequest = Settings   # what a build command was asked (the settings model every command shares)


@dataclass(frozen=True)
class BuildConfig:
    target: Target
    recipe: Recipe
    source: SourceSpec
    source_path: Path
    submodules: tuple[str, ...]
    patches: tuple[Path, ...]
    slices: tuple[Slice, ...]
    features: frozenset[str]
    system_libs: frozenset[str]
    ops_file: Path | None
    user_defines: tuple[tuple[str, str], ...]
    ndk: ndk_mod.NdkInfo | None
    java: JavaToolchain | None        # android: javac, android.jar, the Maven jars (None: no AAR)
    api_level: int | None
    stl: str | None
    deployment_target: str | None
    cmake: tools.Tool
    ninja: tools.Tool
    launcher: Path | None
    out_dir: Path
    python: Path
    python_purelib: Path
    jobs: int
    page_size_16k: bool
    host_os: str
    warnings: tuple[str, ...] = ()
    ndk_reason: str | None = None     # why this NDK (which precedence rule chose it), printed in the plan
    compiler: str | None = None       # host C++ compiler and version (android: the NDK's revision stands for it)
    size_levers: tuple[str, ...] = ()    # chosen size levers (recipe [size_levers]), in recipe order
    ndk_install: str | None = None       # the NDK version to install before building (--install-ndk, missing)
    cache_dir: Path = Path("builder-cache")   # builder's cache: git mirror and work trees, downloads, runners
    source_date_epoch: int | None = None      # SOURCE_DATE_EPOCH given; else archives take the commit's date
    models: tuple[Path, ...] = ()
    verify_models: bool = False
    shapes: str = "1x3x224x224"
    tool_env: Mapping[str, str] = field(default_factory=dict)   # the machine's CXX, LIBRARY_PATH, OBJCOPY

    @property
    def cmake_major(self) -> int:
        return (self.cmake.version or Version("0")).major

    @property
    def lite(self) -> bool:
        return "lite_interpreter" in self.features

    @property
    def artifact(self) -> str | None:
        t = self.recipe.target(self.target.name)
        return t.artifact_lite if self.lite else t.artifact_full


# ------------------------------------------------------------------ resolve

def resolve(request: BuildRequest, env: Environment) -> BuildConfig:
    """Settings (layered: command line > environment > builder.toml, see builder.settings) + the release recipe +
    the machine -> everything a plan needs. Every problem is reported at once; nothing is changed on disk."""
    problems: list[UsageError] = []
    request = settings_mod.layer(request, env, problems)     # a malformed setting is a problem, its value unused
    try:
        recipe = recipes_mod.load_release(request.tag, request.recipes_dir)
    except UsageError as exc:                                # an unknown tag stops here, with the others
        settings_mod.raise_all([*problems, exc])
        raise
    warnings: list[str] = []
    target = get_target(request.target)
    recipe.target(request.target)
    slices = target.slices(request, recipe, problems)
    features = _features(request, recipe, problems)
    ops_file, ops_format = _ops_file(request, env, recipe, features, problems, _source_path(request, recipe, env))
    if ops_format == "tracing":
        features = features | {"tracing_based"}
    levers = choose_levers(recipe, request.target, defaults=request.size_levers, names=request.levers,
                           has_ops=request.ops_file is not None, ops_format=ops_format)
    problems.extend(levers.problems)
    warnings.extend(levers.warnings)
    features = features | levers.features
    system_libs = _system_libs(request, recipe, problems)
    skipped = _skipped(request, recipe, problems, warnings)
    toolchain = target.toolchain(request, recipe, features, env, problems, warnings)
    checks.jobs_and_out(request.jobs, request.out or env.cwd / "builder-out", problems)
    checks.api_level(request.api_level, slices, toolchain.ndk, problems)
    checks.mirror(request.mirror, problems)
    _defines_syntax(request.defines, problems)
    _python_modules(recipe, problems)
    cmake, ninja = _tools(request, recipe, problems)
    launcher = _launcher(request, env, problems)
    if problems:
        raise ValidationErrors(problems) if len(problems) > 1 else problems[0]
    assert cmake is not None and ninja is not None
    t = recipe.target(request.target)
    assert request.cache_dir is not None
    cache = request.cache_dir
    spec = SourceSpec(repo_url=request.repo or UPSTREAM, mirror=request.mirror, source_dir=request.source_dir,
                      cache_dir=cache / "git", allow_unpinned=request.allow_unpinned)
    import sysconfig

    return BuildConfig(
        target=target, recipe=recipe, source=spec,
        source_path=_source_path(request, recipe, env).resolve(),
        submodules=recipe.submodules_for(request.target, features, system_libs, skipped,
                                         jni=toolchain.java is not None),   # the JNI project's: an AAR
        patches=tuple(sorted(recipes_mod.patches_dir(recipe).glob("*.patch"))), slices=slices,
        features=features, system_libs=system_libs, ops_file=ops_file, user_defines=request.defines,
        ndk=toolchain.ndk, java=toolchain.java, api_level=request.api_level or t.api_level, stl=t.stl,
        deployment_target=request.deployment_target or t.deployment_target,
        cmake=cmake, ninja=ninja, launcher=launcher, compiler=toolchain.compiler,
        out_dir=(request.out or env.cwd / "builder-out").resolve(),
        python=Path(sys.executable), python_purelib=Path(sysconfig.get_path("purelib")),
        jobs=request.jobs or os.cpu_count() or 2, page_size_16k=request.page_size_16k,
        host_os=env.host_os, warnings=tuple(warnings), size_levers=levers.levers,
        ndk_install=toolchain.ndk_install, ndk_reason=toolchain.ndk_reason, cache_dir=cache,
        source_date_epoch=request.source_date_epoch, models=request.models,
        verify_models=request.verify_models, shapes=request.shapes,
        tool_env={k: v for k, v in env.environ.items() if k in TOOL_ENV})


def _features(request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> frozenset[str]:
    wanted = {name for name, f in recipe.features.items() if request.target in f.default_targets}
    if request.lite is not None:
        ok = _want(recipe, request.target, "lite_interpreter", "--lite" if request.lite else "--full-jit",
                   problems, enable=request.lite)
        wanted.discard("lite_interpreter")
        if request.lite and ok:
            wanted.add("lite_interpreter")
    if request.ops_file is not None and _want(recipe, request.target, "selected_ops", "--ops", problems):
        wanted.add("selected_ops")
    for flag in request.features:
        name = FLAG_FEATURES.get(flag)
        if name is None:
            problems.append(UsageError(f"unknown feature '{flag}'" + did_you_mean(flag, FLAG_FEATURES)))
        elif _want(recipe, request.target, name, "--" + flag.replace("_", "-"), problems):
            wanted.add(name)
    for flag in request.without:
        name = FLAG_FEATURES.get(flag)
        if name is None:
            problems.append(UsageError(f"unknown feature '{flag}'" + did_you_mean(flag, FLAG_FEATURES)))
        elif flag in request.features:
            problems.append(UsageError(f"--{flag} and --no-{flag} both given", hint="pass one of them"))
        else:
            wanted.discard(name)
    for name in sorted(wanted):
        for dep in recipe.features[name].requires:
            if dep not in wanted:
                problems.append(UsageError(f"{name.replace('_', '-')} needs {dep.replace('_', '-')}",
                                           hint=f"add --{dep.replace('_', '-')}" if dep != "selected_ops"
                                           else "add --ops FILE"))
    return frozenset(wanted)


def _want(recipe: Recipe, target: str, name: str, flag: str, problems: list[UsageError], enable: bool = True) -> bool:
    feature = recipe.features.get(name)
    if feature is None:
        if enable or name != "lite_interpreter":
            problems.append(UsageError(f"{flag}: {recipe.tag} has no {name.replace('_', ' ')}",
                                       hint=_releases_with(recipe, name)))
        return False
    if target not in feature.targets:
        problems.append(UsageError(f"{flag} is not available for {target}",
                                   hint=f"{name} builds for: {', '.join(feature.targets)}"))
        return False
    return True


def _releases_with(recipe: Recipe, feature: str) -> str:
    tags = [r.tag for r in recipes_mod.load_all(recipe.path.parent) if feature in r.features]
    return f"releases with it: {', '.join(tags)}" if tags else "no supported release has it"


def _system_libs(request: BuildRequest, recipe: Recipe, problems: list[UsageError]) -> frozenset[str]:
    out = set()
    for name in request.system_libs:
        if name not in recipe.system_libs:
            problems.append(UsageError(f"unknown --system-lib '{name}' for {recipe.tag}"
                                       + did_you_mean(name, recipe.system_libs),
                                       hint="choose from " + (", ".join(
                                           f"{n} (Debian: {', '.join(lib.packages)})" if lib.packages else n
                                           for n, lib in recipe.system_libs.items()) or "none")))
        else:
            out.add(name)
    return frozenset(out)


def _source_path(request: BuildRequest, recipe: Recipe, env: Environment) -> Path:
    if request.source_dir is not None:
        return request.source_dir
    assert request.cache_dir is not None, "layered settings always name the cache"
    return SourceSpec(cache_dir=request.cache_dir / "git").worktree_dir(recipe.tag)


def _skipped(request: BuildRequest, recipe: Recipe, problems: list[UsageError], warnings: list[str]) -> frozenset[str]:
    out = set()
    for path in request.skip_submodules:
        if path not in recipe.optional_submodules:
            problems.append(UsageError(f"--skip-submodule {path}: {recipe.tag} cannot build without it"
                                       + did_you_mean(path, recipe.optional_submodules),
                                       hint="optional: " + (", ".join(recipe.optional_submodules) or "none")))
            continue
        warnings.append(f"building without {path}: {recipe.optional_submodules[path]}")
        out.add(path)
    return frozenset(out)


def _ops_file(request: BuildRequest, env: Environment, recipe: Recipe, features: frozenset[str],
              problems: list[UsageError], tree: Path) -> tuple[Path | None, str | None]:
    """The op list and its format (plain or tracing), read once. It must parse; its names are checked against the
    release when its tree is already here. A tracing list turns TRACING_BASED on; it and the tracing_based feature
    need each other."""
    if request.ops_file is None:
        return None, None
    from .models.ops import load_known_ops, load_op_list, validate_ops

    path = request.ops_file if request.ops_file.is_absolute() else env.cwd / request.ops_file
    fmt = None
    try:
        oplist, fmt = load_op_list(path)
        if (tree / "aten/src/ATen/native/native_functions.yaml").is_file():
            validate_ops(oplist.names, load_known_ops(tree))
    except UsageError as exc:
        problems.extend(exc.problems if isinstance(exc, ValidationErrors) else [exc])
    if fmt == "tracing" and not recipe.has("tracing_based", request.target):
        problems.append(UsageError(f"{path} is a tracing-based op list, but {recipe.tag} has no tracing-based "
                                   f"selective build for {request.target}",
                                   hint=f"write a plain one: builder ops MODEL --tag {recipe.tag} -o ops.yaml"))
    elif fmt == "plain" and "tracing_based" in features:
        problems.append(UsageError(f"--feature tracing_based needs a tracing-based op list, and {path} is a plain one",
                                   hint=f"write one with: builder ops MODEL --tag {recipe.tag} --trace FULL_BUILD "
                                        "-o ops.yaml"))
    return path.resolve(), fmt


def _python_modules(recipe: Recipe, problems: list[UsageError]) -> None:
    """The release's codegen runs in this Python at configure time (PYTHON_EXECUTABLE): it must be a Python the
    release supports (requirements.python), with what the codegen imports (requirements.python_modules)."""
    import importlib.util

    version = ".".join(str(v) for v in sys.version_info[:3])
    if version not in recipe.python:
        problems.append(UsageError(f"{recipe.tag}'s build runs its code generation in Python {recipe.python}; "
                                   f"{sys.executable} is {version}",
                                   hint="run builder with a Python the release supports"))

    missing = [m for m in recipe.python_modules if importlib.util.find_spec(m) is None]
    if missing:
        pip_names = {"yaml": "pyyaml"}
        problems.append(UsageError(
            f"{recipe.tag}'s code generation needs Python modules missing from {sys.executable}: {', '.join(missing)}",
            hint=f"{sys.executable} -m pip install {' '.join(pip_names.get(m, m) for m in missing)}"))


def _defines_syntax(defines: tuple[tuple[str, str], ...], problems: list[UsageError]) -> None:
    for key, _ in defines:
        if not key or not key.replace("_", "").replace(":", "").isalnum():
            problems.append(UsageError(f"-D '{key}': not a CMake variable name", hint="use -D NAME=VALUE"))


def _tools(request: BuildRequest, recipe: Recipe,
           problems: list[UsageError]) -> tuple[tools.Tool | None, tools.Tool | None]:
    found: list[tools.Tool | None] = []
    versions = tools.versions_file(request.cache_dir)
    finders: tuple[Callable[[], tools.Tool], ...] = (lambda: tools.find_cmake(recipe.cmake, versions=versions),
                                                     lambda: tools.find_ninja(versions=versions))
    for finder in finders:
        try:
            found.append(finder())
        except UsageError as exc:
            problems.append(exc)
            found.append(None)
    return found[0], found[1]


def _launcher(request: BuildRequest, env: Environment, problems: list[UsageError]) -> Path | None:
    try:
        return tools.find_launcher(request.cache or "auto", dict(env.environ))
    except UsageError as exc:
        problems.append(exc)
        return None


__all__ = ["BuildRequest", "BuildConfig", "Environment", "resolve", "Defines"]
