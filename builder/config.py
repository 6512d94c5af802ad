"""BuildRequest (what the user asked) -> resolve() -> BuildConfig (everything a plan needs), frozen.

Precedence: CLI > environment > config file (builder.toml) > recipe > defaults. resolve() validates everything and
reports all problems at once, before any side effect (it only reads files and asks tools their versions).
"""
from __future__ import annotations

import os
import platform
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from packaging.version import Version

from . import recipes as recipes_mod
from .errors import UsageError, ValidationErrors, did_you_mean
from .levers import choose as choose_levers
from .recipes import Defines, Recipe
from .source import SourceSpec
from .targets import get_target
from .targets.base import Slice, Target
from .toolchains import ndk as ndk_mod
from .toolchains import tools

UPSTREAM = "https://github.com/pytorch/pytorch.git"
DEFAULT_TAG = "v1.13.1"
FLAG_FEATURES = {"vulkan": "vulkan", "vulkan_fp16": "vulkan_fp16", "vulkan_relaxed": "vulkan_relaxed",
                 "vulkan_shaderc": "vulkan_shaderc", "vulkan_wrapper": "vulkan_wrapper", "metal": "metal",
                 "coreml": "coreml", "tracing_based": "tracing_based",
                 "lightweight_dispatch": "lightweight_dispatch"}


@dataclass(frozen=True)
class BuildRequest:
    """Raw user intent. ``None`` means "not given" so lower layers (env, config file, recipe) can fill it."""

    target: str
    tag: str | None = None
    abis: tuple[str, ...] = ()
    api_level: int | None = None
    ops_file: Path | None = None
    lite: bool | None = None
    features: tuple[str, ...] = ()
    without: tuple[str, ...] = ()          # features turned off (--no-vulkan), even where the release has them on
    platforms: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    deployment_target: str | None = None
    defines: tuple[tuple[str, str], ...] = ()
    system_libs: tuple[str, ...] = ()
    skip_submodules: tuple[str, ...] = ()
    out: Path | None = None
    ndk: str | None = None
    ndk_from: str = "--ndk"              # where ``ndk`` came from: --ndk, or builder.toml (after ANDROID_NDK*)
    force_ndk: bool = False
    install_ndk: bool = False
    repo: str | None = None
    mirror: str | None = None
    source_dir: Path | None = None
    allow_unpinned: bool = False
    cache: str | None = None
    jobs: int | None = None
    page_size_16k: bool = False
    config_file: Path | None = None
    size_levers: bool = False            # --size-levers: the release's default levers for the target
    levers: tuple[str, ...] = ()         # --lever NAME (repeatable)
    models: tuple[Path, ...] = ()        # --model: build for these models (their operators are the op list)
    verify_models: bool = True           # and run each on the build against torch (targets that can)
    shapes: str = "1x3x224x224"          # random inputs of these shapes for that check
    aar: bool = True                     # android: the JNI library, classes.jar, AAR and Maven folder (--no-aar)
    android_sdk: Path | None = None      # android: an SDK holding android.jar of the release's compileSdk
    maven_repo: Path | None = None       # android: a Maven repository folder with the release's Java dependencies


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
    java: Any | None                  # android: builder.targets.android_aar.JavaToolchain (None: no AAR)
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


@dataclass(frozen=True)
class Environment:
    """What resolve() may look at outside the request: passed in, so tests control it."""

    environ: Mapping[str, str]
    home: Path
    host_os: str           # platform.system(): Linux, Darwin, Windows
    cwd: Path

    @classmethod
    def current(cls) -> Environment:
        return cls(dict(os.environ), Path.home(), platform.system(), Path.cwd())


def cache_dir(env: Environment) -> Path:
    if "BUILDER_CACHE_DIR" in env.environ:
        return Path(env.environ["BUILDER_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("builder"))


# ------------------------------------------------------------------ layering: env and config file

def apply_layers(request: BuildRequest, env: Environment) -> BuildRequest:
    """Fill what the CLI left unset from the environment, then from the config file."""
    layered = _from_env(request, env.environ)
    return _from_config_file(layered, env)


def _from_env(request: BuildRequest, environ: Mapping[str, str]) -> BuildRequest:
    updates: dict[str, Any] = {}
    if request.tag is None and environ.get("BUILDER_TAG"):
        updates["tag"] = environ["BUILDER_TAG"]
    if request.ops_file is None and environ.get("SELECTED_OP_LIST"):
        updates["ops_file"] = Path(environ["SELECTED_OP_LIST"])
    if request.jobs is None and environ.get("MAX_JOBS", "").isdigit():
        updates["jobs"] = int(environ["MAX_JOBS"])
    if request.mirror is None and environ.get("BUILDER_MIRROR"):
        updates["mirror"] = environ["BUILDER_MIRROR"]
    if request.cache is None and environ.get("BUILDER_CACHE"):
        updates["cache"] = environ["BUILDER_CACHE"]
    return replace(request, **updates)


_CONFIG_KEYS = {"tag": str, "abis": list, "api_level": int, "ops_file": str, "lite": bool, "features": list,
                "platforms": list, "arches": list, "deployment_target": str, "system_libs": list, "out": str,
                "ndk": str, "repo": str, "mirror": str, "source_dir": str, "cache": str, "jobs": int,
                "defines": dict}


def _from_config_file(request: BuildRequest, env: Environment) -> BuildRequest:
    path = request.config_file or env.cwd / "builder.toml"
    if not path.is_file():
        if request.config_file is not None:
            raise UsageError(f"config file {path} not found", hint="check --config")
        return request
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", hint="fix the file or pass --config") from exc
    section = {**{k: v for k, v in data.items() if not isinstance(v, dict) or k == "defines"},
               **data.get(request.target, {})}
    updates: dict[str, Any] = {}
    for key, value in section.items():
        if key not in _CONFIG_KEYS:
            raise UsageError(f"{path}: unknown key '{key}'" + did_you_mean(key, _CONFIG_KEYS))
        if not isinstance(value, _CONFIG_KEYS[key]):
            raise UsageError(f"{path}: '{key}' must be a {_CONFIG_KEYS[key].__name__}")
        updates[key] = _config_value(key, value, getattr(request, key))
    updates = {k: v for k, v in updates.items() if v is not None}
    if "ndk" in updates:
        updates["ndk_from"] = "builder.toml"
    return replace(request, **updates)


def _config_value(key: str, value: Any, current: Any) -> Any:
    """The config file fills only what is unset; -D defines from the file come before the CLI's."""
    if key == "defines":
        return tuple((str(k), _define_text(v)) for k, v in value.items()) + current
    if current not in (None, (), False):
        return None
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if key in ("ops_file", "out", "source_dir"):
        return Path(value)
    return value


def _define_text(value: Any) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)


# ------------------------------------------------------------------ resolve

def resolve(request: BuildRequest, env: Environment | None = None) -> BuildConfig:
    env = env or Environment.current()
    request = apply_layers(request, env)
    recipe = recipes_mod.load_recipe(request.tag or DEFAULT_TAG)   # an unknown tag stops here
    problems: list[UsageError] = []
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
    _defines_syntax(request.defines, problems)
    _python_modules(recipe, problems)
    cmake, ninja = _tools(recipe, problems)
    launcher = _launcher(request, env, problems)
    if problems:
        raise ValidationErrors(problems) if len(problems) > 1 else problems[0]
    assert cmake is not None and ninja is not None
    t = recipe.target(request.target)
    cache = cache_dir(env)
    spec = SourceSpec(repo_url=request.repo or UPSTREAM, mirror=request.mirror, source_dir=request.source_dir,
                      cache_dir=cache / "git", allow_unpinned=request.allow_unpinned)
    import sysconfig

    return BuildConfig(
        target=target, recipe=recipe, source=spec,
        source_path=_source_path(request, recipe, env).resolve(),
        submodules=recipe.submodules_for(request.target, features, system_libs, skipped),
        patches=tuple(sorted(recipes_mod.patches_dir(recipe.tag).glob("*.patch"))), slices=slices,
        features=features, system_libs=system_libs, ops_file=ops_file, user_defines=request.defines,
        ndk=toolchain.ndk, java=toolchain.java, api_level=request.api_level or t.api_level, stl=t.stl,
        deployment_target=request.deployment_target or t.deployment_target,
        cmake=cmake, ninja=ninja, launcher=launcher, compiler=toolchain.compiler,
        out_dir=(request.out or env.cwd / "builder-out").resolve(),
        python=Path(sys.executable), python_purelib=Path(sysconfig.get_path("purelib")),
        jobs=request.jobs or os.cpu_count() or 2, page_size_16k=request.page_size_16k,
        host_os=env.host_os, warnings=tuple(warnings), size_levers=levers.levers,
        ndk_install=toolchain.ndk_install, ndk_reason=toolchain.ndk_reason, cache_dir=cache,
        source_date_epoch=_epoch(env.environ), models=request.models,
        verify_models=request.verify_models, shapes=request.shapes)


def _epoch(environ: Mapping[str, str]) -> int | None:
    value = environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else None


def _features(request: BuildRequest, recipe: Recipe, problems: list) -> frozenset[str]:
    wanted = {name for name, f in recipe.features.items() if request.target in f.default_targets}
    if request.lite is not None:
        ok = _want(recipe, request.target, "lite_interpreter", "--lite" if request.lite else "--full-jit",
                   problems, enable=request.lite)
        wanted.discard("lite_interpreter")
        if request.lite and ok:
            wanted.add("lite_interpreter")
    if request.ops_file is not None:
        if _want(recipe, request.target, "selected_ops", "--ops", problems):
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


def _want(recipe: Recipe, target: str, name: str, flag: str, problems: list, enable: bool = True) -> bool:
    feature = recipe.features.get(name)
    if feature is None:
        if enable or name != "lite_interpreter":
            problems.append(UsageError(f"{flag}: {recipe.tag} has no {name.replace('_', ' ')}",
                                       hint=_releases_with(name)))
        return False
    if target not in feature.targets:
        problems.append(UsageError(f"{flag} is not available for {target}",
                                   hint=f"{name} builds for: {', '.join(feature.targets)}"))
        return False
    return True


def _releases_with(feature: str) -> str:
    tags = [r.tag for r in recipes_mod.load_all() if feature in r.features]
    return f"releases with it: {', '.join(tags)}" if tags else "no supported release has it"


def _system_libs(request: BuildRequest, recipe: Recipe, problems: list) -> frozenset[str]:
    out = set()
    for name in request.system_libs:
        if name not in recipe.system_libs:
            problems.append(UsageError(f"unknown --system-lib '{name}' for {recipe.tag}"
                                       + did_you_mean(name, recipe.system_libs),
                                       hint=f"choose from {', '.join(recipe.system_libs) or 'none'}"))
        else:
            out.add(name)
    return frozenset(out)


def _source_path(request: BuildRequest, recipe: Recipe, env: Environment) -> Path:
    if request.source_dir is not None:
        return request.source_dir
    return SourceSpec(cache_dir=cache_dir(env) / "git").worktree_dir(recipe.tag)


def _skipped(request: BuildRequest, recipe: Recipe, problems: list, warnings: list) -> frozenset[str]:
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


def _ops_file(request: BuildRequest, env: Environment, recipe: Recipe, features: frozenset[str], problems: list,
              tree: Path) -> tuple[Path | None, str | None]:
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


def _python_modules(recipe: Recipe, problems: list) -> None:
    """The release's codegen runs in this Python at configure time (PYTHON_EXECUTABLE): what it imports must be here."""
    import importlib.util

    missing = [m for m in recipe.python_modules if importlib.util.find_spec(m) is None]
    if missing:
        pip_names = {"yaml": "pyyaml"}
        problems.append(UsageError(
            f"{recipe.tag}'s code generation needs Python modules missing from {sys.executable}: {', '.join(missing)}",
            hint=f"{sys.executable} -m pip install {' '.join(pip_names.get(m, m) for m in missing)}"))


def _defines_syntax(defines: tuple[tuple[str, str], ...], problems: list) -> None:
    for key, _ in defines:
        if not key or not key.replace("_", "").replace(":", "").isalnum():
            problems.append(UsageError(f"-D '{key}': not a CMake variable name", hint="use -D NAME=VALUE"))


def _tools(recipe: Recipe, problems: list) -> tuple[tools.Tool | None, tools.Tool | None]:
    found: list[tools.Tool | None] = []
    for finder in (lambda: tools.find_cmake(recipe.cmake), tools.find_ninja):
        try:
            found.append(finder())
        except UsageError as exc:
            problems.append(exc)
            found.append(None)
    return found[0], found[1]


def _launcher(request: BuildRequest, env: Environment, problems: list) -> Path | None:
    try:
        return tools.find_launcher(request.cache or "auto", dict(env.environ))
    except UsageError as exc:
        problems.append(exc)
        return None


def request_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(BuildRequest))


__all__ = ["BuildRequest", "BuildConfig", "Environment", "resolve", "Defines"]
