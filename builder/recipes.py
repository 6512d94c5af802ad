"""Release recipes: everything builder knows about one PyTorch release, loaded from recipes/<tag>.toml.

Code asks the recipe ("which defines turn on Vulkan at this release?"), never the version number.
The schema is enforced here on load: unknown keys, wrong types and unknown feature names are errors.
See recipes/README.md for the file format.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import RecipeError, UsageError, did_you_mean
from .recipe_jni import JavaSpec, JniSpec, parse_java, parse_jni

SCHEMA_VERSION = 1
TARGETS = ("android", "ios", "host")
FEATURES = (
    "lite_interpreter", "selected_ops", "tracing_based", "lightweight_dispatch",
    "vulkan", "vulkan_fp16", "vulkan_relaxed", "vulkan_shaderc", "vulkan_wrapper",
    "metal", "coreml",
)
# Size levers (recipe [size_levers.<name>]): what each means is the same at every release; which exist, their
# defines and whether they are on by default are per-release data.
LEVERS = (
    "selected_ops", "traced_ops", "gc_sections", "min_size_rel", "force_load_registrations", "strip", "lto",
    "lightweight_dispatch",
)
LINK_MODES = ("whole-archive", "registrations")
TAG_RE = re.compile(r"^v\d+\.\d+\.\d+$")
DefineValue = bool | str
Defines = Mapping[str, DefineValue]


def _ro(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class AnyOf:
    """Versions in any one of several specifier sets: a recipe's tested NDKs, one entry per NDK (or range) the
    release's own CI used (``ndk_tested = ["==19.2.5345600", "==21.4.7075529"]``). Used where a SpecifierSet is:
    ``contains``, ``in`` and ``str``; iterating gives the specifier sets."""

    specs: tuple[SpecifierSet, ...]

    def contains(self, version: Version | str, prereleases: bool | None = None) -> bool:
        return any(s.contains(version, prereleases=prereleases) for s in self.specs)

    def __contains__(self, version: Version | str) -> bool:
        return self.contains(version)

    def __iter__(self) -> Iterator[SpecifierSet]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __str__(self) -> str:
        return " or ".join(str(s) or "any" for s in self.specs)

    def texts(self) -> list[str]:
        return [str(s) for s in self.specs]


@dataclass(frozen=True)
class Conditional:
    """Defines that apply only when the NDK revision matches ``ndk`` (a version specifier)."""

    ndk: SpecifierSet
    defines: Defines


@dataclass(frozen=True)
class Feature:
    name: str
    targets: tuple[str, ...]
    on: Defines
    off: Defines
    default: bool
    requires: tuple[str, ...]
    submodules: tuple[str, ...]
    description: str
    default_targets: tuple[str, ...] = ()   # on by default for these targets (`default = true`: every target)


@dataclass(frozen=True)
class SizeLever:
    """One way to make the linked binary smaller, as it exists at one release.

    ``defines`` are CMake defines merged into every slice the lever applies to (keys ending in ``_FLAGS`` are
    appended to the slice's value, see plan.py); ``link``/``link_flags``/``strip`` say how a program or JNI
    library links against the build (``registrations``: force-load only the archive members with static
    initialisers instead of ``--whole-archive``). ``requires_feature`` turns that feature on with the lever;
    a recipe may only name features it has.
    """

    name: str
    description: str
    default: bool
    targets: tuple[str, ...]
    requires_feature: str | None
    defines: Defines
    link: str | None
    link_flags: tuple[str, ...]
    strip: bool
    notes: str
    # traced_ops: operators the release's own tracer always adds (called by app code around the model)
    always_included_ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemLib:
    name: str
    defines: Defines
    replaces: tuple[str, ...]   # submodules no longer needed
    packages: tuple[str, ...]   # Debian packages that provide it (documentation for users)


@dataclass(frozen=True)
class Target:
    name: str
    script: str
    generator: str
    build_type: str
    defines: Defines
    env: Mapping[str, str]
    submodules: tuple[str, ...]
    extra_defines: Defines = field(default_factory=_ro)   # builder's additions, each explained in the recipe
    conditionals: tuple[Conditional, ...] = ()
    # android
    abis: tuple[str, ...] = ()
    default_abis: tuple[str, ...] = ()
    api_level: int | None = None
    stl: str | None = None
    # ios
    platforms: Mapping[str, tuple[str, ...]] = field(default_factory=_ro)
    default_platforms: tuple[str, ...] = ()
    slice_defines: Defines = field(default_factory=_ro)
    deployment_target: str | None = None
    # packaging
    artifact_lite: str | None = None
    artifact_full: str | None = None
    jni: JniSpec | None = None           # android: the release's JNI project (builder.recipe_jni)
    java: JavaSpec | None = None         # android: the release's Java API


PROVENANCE_KINDS = ("real_tree", "reconstructed")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Provenance:
    """Where a recipe's facts come from: ``real_tree`` (read in the release's own tree at the tag: ``tree`` says which
    copy) or ``reconstructed`` (from other commits' files, listed in ``from_commits``); ``summary`` says what was read
    where. A real-tree recipe may still list commits for the few facts its tree lacks (e.g. CI files)."""

    facts: str
    summary: str
    tree: str | None = None
    from_commits: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "read from the real tree" if self.facts == "real_tree" else "reconstructed"


@dataclass(frozen=True)
class Recipe:
    tag: str
    version: Version
    commit: str | None
    commit_verified: bool
    commit_source: str
    sources: Mapping[str, str]          # file read -> commit (or ref) it was read at
    notes: str
    python: SpecifierSet
    cmake: SpecifierSet
    cmake_policy_minimum: str | None
    ndk_supported: SpecifierSet
    ndk_tested: AnyOf                    # tested when in any entry (one per NDK the release's CI used)
    ndk_default: str | None
    bytecode_max: int | None
    bytecode_min: int | None
    targets: Mapping[str, Target]
    features: Mapping[str, Feature]
    system_libs: Mapping[str, SystemLib]
    path: Path
    optional_submodules: Mapping[str, str] = field(default_factory=_ro)   # path -> what is lost without it
    size_levers: Mapping[str, SizeLever] = field(default_factory=_ro)
    python_modules: tuple[str, ...] = ()   # what the release's codegen imports in the Python configure runs
    provenance: Provenance = Provenance("reconstructed", "", None, ())
    default: bool = False                  # the release builder builds when no --tag is given (exactly one recipe)

    def has(self, feature: str, target: str | None = None) -> bool:
        f = self.features.get(feature)
        return f is not None and (target is None or target in f.targets)

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise UsageError(f"{self.tag} has no recipe for target '{name}'",
                             hint=f"targets: {', '.join(self.targets)}") from None

    def submodules_for(self, target: str, features: frozenset[str] = frozenset(),
                       system_libs: frozenset[str] = frozenset(), skipped: frozenset[str] = frozenset(),
                       jni: bool = False) -> tuple[str, ...]:
        """The submodules a build needs: the target's (and its JNI project's when ``jni``: an AAR is made), plus
        enabled features', minus system libs' and skipped."""
        t = self.target(target)
        needed = [*t.submodules, *(t.jni.submodules if jni and t.jni is not None else ())]
        for name in sorted(features):
            needed.extend(self.features[name].submodules)
        replaced = {p for lib in system_libs for p in self.system_libs[lib].replaces} | set(skipped)
        return tuple(sorted({p for p in needed if p not in replaced}))


# ---------------------------------------------------------------- loading

def _own_recipes() -> Path:
    """builder's own recipes: the checkout's recipes/ (a source or editable install), else the copy the wheel carries
    (builder/_release/recipes, with patches/ beside it). settings.recipes_dir overrides both."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "recipes"
    return checkout if (checkout / "README.md").is_file() else here / "_release" / "recipes"


RECIPES_DIR = _own_recipes()


def patches_dir(recipe: Recipe) -> Path:
    """patches/<tag>/ beside the recipes folder the recipe was read from."""
    return recipe.path.parent.parent / "patches" / recipe.tag


def available_tags(directory: Path | None = None) -> tuple[str, ...]:
    d = directory or RECIPES_DIR
    tags = [p.stem for p in d.glob("v*.toml")]
    return tuple(sorted(tags, key=lambda t: Version(t[1:])))


def load_recipe(tag: str, directory: Path | None = None) -> Recipe:
    d = directory or RECIPES_DIR
    tags = available_tags(d)
    if not TAG_RE.match(tag):
        example = tags[-1] if tags else "vX.Y.Z"
        raise UsageError(f"malformed tag '{tag}': tags look like {example}" + did_you_mean(tag, tags),
                         hint="see `builder recipes list`")
    if tag not in tags:
        raise UsageError(f"no recipe for tag '{tag}'" + did_you_mean(tag, tags),
                         hint="see `builder recipes list`")
    path = d / f"{tag}.toml"
    return _load_cached(path, path.stat().st_mtime_ns)


@cache
def _load_cached(path: Path, _mtime: int) -> Recipe:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path.name}: {exc}") from exc
    return parse_recipe(data, path)


def load_release(tag: str | None, directory: Path | None = None) -> Recipe:
    """The recipe of ``tag``, or of the default release (the recipe marked ``default = true``) when no tag is given."""
    return load_recipe(tag or default_tag(directory), directory)


def default_tag(directory: Path | None = None) -> str:
    """The tag of the one recipe marked ``default = true`` (what a build without --tag builds)."""
    marked = [r.tag for r in load_all(directory) if r.default]
    if len(marked) != 1:
        raise RecipeError(f"exactly one recipe must say `default = true`, found {len(marked)}"
                          + (f" ({', '.join(marked)})" if marked else ""))
    return marked[0]


def load_all(directory: Path | None = None) -> tuple[Recipe, ...]:
    d = directory or RECIPES_DIR
    return tuple(load_recipe(t, d) for t in available_tags(d))


class _Reader:
    """Typed access to a TOML table that remembers what was read, so unknown keys are errors."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        if not isinstance(data, Mapping):
            raise RecipeError(f"{where}: expected a table")
        self.data, self.where = data, where
        self.seen: set[str] = set()

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., ) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise RecipeError(f"{self.where}: missing key '{key}'")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RecipeError(f"{self.where}.{key}: expected {kind}, got {type(value).__name__}")
        return value

    def table(self, key: str, required: bool = False) -> _Reader:
        return _Reader(self.get(key, dict, ... if required else {}), f"{self.where}.{key}")

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list, list(default))
        if not all(isinstance(v, str) for v in value):
            raise RecipeError(f"{self.where}.{key}: expected a list of strings")
        return tuple(value)

    def defines(self, key: str) -> Defines:
        value = self.get(key, dict, {})
        for k, v in value.items():
            if not isinstance(v, (bool, str)):
                raise RecipeError(f"{self.where}.{key}.{k}: define values are true/false or strings")
        return _ro(value)

    def env(self, key: str) -> Mapping[str, str]:
        value = self.get(key, dict, {})
        if not all(isinstance(v, str) for v in value.values()):
            raise RecipeError(f"{self.where}.{key}: environment values must be strings")
        return _ro(value)

    def spec(self, key: str, default: str | None = None) -> SpecifierSet:
        text = self.get(key, str, default if default is not None else ...)
        try:
            return SpecifierSet(text)
        except InvalidSpecifier as exc:
            raise RecipeError(f"{self.where}.{key}: {exc}") from exc

    def spec_list(self, key: str) -> AnyOf:
        """One specifier set (a string) or several (a non-empty list of strings): versions in any of them."""
        value = self.get(key, (str, list))
        texts = [value] if isinstance(value, str) else value
        if not texts or not all(isinstance(v, str) for v in texts):
            raise RecipeError(f"{self.where}.{key}: expected a specifier string or a non-empty list of them")
        specs = []
        for text in texts:
            try:
                specs.append(SpecifierSet(text))
            except InvalidSpecifier as exc:
                raise RecipeError(f"{self.where}.{key}: {exc}") from exc
        return AnyOf(tuple(specs))

    def named_tables(self, allowed: tuple[str, ...], what: str) -> Iterator[tuple[str, _Reader]]:
        """Each sub-table, by name (a name not in ``allowed`` is an error), checked for unknown keys after use."""
        for name in self.data:
            if name not in allowed:
                raise RecipeError(f"{self.where}: unknown {what} '{name}'" + did_you_mean(name, allowed))
            reader = self.table(name)
            yield name, reader
            reader.done()
        self.done()

    def done(self) -> None:
        extra = set(self.data) - self.seen
        if extra:
            key = sorted(extra)[0]
            raise RecipeError(f"{self.where}: unknown key '{key}'" + did_you_mean(key, self.seen))


def parse_recipe(data: Mapping[str, Any], path: Path) -> Recipe:
    r = _Reader(data, path.name)
    if r.get("schema", int) != SCHEMA_VERSION:
        raise RecipeError(f"{path.name}: schema must be {SCHEMA_VERSION}")
    tag = r.get("tag", str)
    if tag != path.stem or not TAG_RE.match(tag):
        raise RecipeError(f"{path.name}: tag '{tag}' does not match the file name")
    commit = r.get("commit", str, None)
    if commit is not None and not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise RecipeError(f"{path.name}: commit must be 40 hex digits")
    req, rt = r.table("requirements", required=True), r.table("runtime")
    features = _parse_features(r.table("features"))
    recipe = Recipe(
        tag=tag, version=Version(tag[1:]), commit=commit,
        commit_verified=r.get("commit_verified", bool, False) and commit is not None,
        commit_source=r.get("commit_source", str),
        sources=_ro(r.get("sources", dict)), notes=r.get("notes", str, ""),
        python=req.spec("python"), python_modules=req.strings("python_modules"), cmake=req.spec("cmake"),
        cmake_policy_minimum=req.get("cmake_policy_minimum", str, None),
        ndk_supported=req.spec("ndk_supported"), ndk_tested=req.spec_list("ndk_tested"),
        ndk_default=req.get("ndk_default", str, None),
        bytecode_max=rt.get("bytecode_max", int, None), bytecode_min=rt.get("bytecode_min", int, None),
        targets=_ro({name: _parse_target(name, r.table("targets").table(name, required=True))
                     for name in r.get("targets", dict)}),
        features=features, system_libs=_parse_system_libs(r.table("system_libs")), path=path,
        optional_submodules=r.env("optional_submodules"),
        size_levers=_parse_size_levers(r.table("size_levers")),
        provenance=_parse_provenance(r.table("provenance", required=True)), default=r.get("default", bool, False))
    for reader in (req, rt):
        reader.done()
    r.done()
    _check_consistency(recipe)
    return recipe


def _parse_provenance(p: _Reader) -> Provenance:
    facts = p.get("facts", str)
    if facts not in PROVENANCE_KINDS:
        raise RecipeError(f"{p.where}.facts: '{facts}' is not one of {', '.join(PROVENANCE_KINDS)}"
                          + did_you_mean(facts, PROVENANCE_KINDS))
    prov = Provenance(facts=facts, summary=p.get("summary", str).strip(), tree=p.get("tree", str, None),
                      from_commits=p.strings("from_commits"))
    p.done()
    if not prov.summary:
        raise RecipeError(f"{p.where}.summary: say what was read where")
    wrong = [c for c in prov.from_commits if not COMMIT_RE.fullmatch(c)]
    if wrong:
        raise RecipeError(f"{p.where}.from_commits: '{wrong[0]}' is not a 40-hex commit")
    if facts == "real_tree" and not prov.tree:
        raise RecipeError(f"{p.where}: facts = \"real_tree\" needs `tree` (which copy of the release's tree was read)")
    if facts == "reconstructed" and (prov.tree or not prov.from_commits):
        raise RecipeError(f"{p.where}: facts = \"reconstructed\" needs `from_commits` (the commits whose files "
                          "the facts were reconstructed from) and no `tree`")
    return prov


def _parse_target(name: str, t: _Reader) -> Target:
    if name not in TARGETS:
        raise RecipeError(f"{t.where}: unknown target" + did_you_mean(name, TARGETS))
    conds = tuple(_parse_conditional(_Reader(c, f"{t.where}.when[{i}]"))
                  for i, c in enumerate(t.get("when", list, [])))
    platforms = t.get("platforms", dict, {})
    target = Target(
        name=name, script=t.get("script", str), generator=t.get("generator", str, "Ninja"),
        build_type=t.get("build_type", str), defines=t.defines("defines"), env=t.env("env"),
        submodules=t.strings("submodules"), extra_defines=t.defines("extra_defines"), conditionals=conds,
        abis=t.strings("abis"), default_abis=t.strings("default_abis"),
        api_level=t.get("api_level", int, None),
        stl=t.get("stl", str, None),
        platforms=_ro({k: tuple(v) for k, v in platforms.items()}),
        default_platforms=t.strings("default_platforms"), slice_defines=t.defines("slice_defines"),
        deployment_target=t.get("deployment_target", str, None),
        artifact_lite=t.get("artifact_lite", str, None), artifact_full=t.get("artifact_full", str, None),
        jni=_sub(t, "jni", lambda r: parse_jni(r.get, r.defines, r.strings)),
        java=_sub(t, "java", lambda r: parse_java(r.get, r.strings, r.where)))
    t.done()
    if not set(target.default_abis) <= set(target.abis):
        raise RecipeError(f"{t.where}: default_abis must be a subset of abis")
    return target


def _sub(t: _Reader, key: str, parse: Any) -> Any:
    """An optional sub-table parsed by ``parse(reader)``; every key of it must be read."""
    if key not in t.data:
        return None
    reader = t.table(key)
    value = parse(reader)
    reader.done()
    return value


def _parse_conditional(c: _Reader) -> Conditional:
    cond = Conditional(ndk=c.spec("ndk"), defines=c.defines("defines"))
    c.done()
    return cond


def _parse_features(table: _Reader) -> Mapping[str, Feature]:
    out = {}
    for name, f in table.named_tables(FEATURES, "feature"):
        targets = f.strings("targets", TARGETS)
        default_targets = _default_targets(f, targets)
        out[name] = Feature(
            name=name, targets=targets, on=f.defines("on"), off=f.defines("off"),
            default=bool(default_targets),
            requires=f.strings("requires"), submodules=f.strings("submodules"),
            description=f.get("description", str, ""), default_targets=default_targets)
    return _ro(out)


def _default_targets(f: _Reader, targets: tuple[str, ...]) -> tuple[str, ...]:
    """``default = true`` (every target of the feature), ``false``, or a list of targets (the release's own default
    differs per target, e.g. USE_VULKAN is ON for Android only)."""
    value = f.get("default", (bool, list), False)
    if isinstance(value, bool):
        return targets if value else ()
    chosen = tuple(str(v) for v in value)
    wrong = [t for t in chosen if t not in targets]
    if wrong:
        raise RecipeError(f"{f.where}: default names {', '.join(wrong)}, not among its targets {', '.join(targets)}")
    return chosen


def _parse_size_levers(table: _Reader) -> Mapping[str, SizeLever]:
    out = {}
    for name, lv in table.named_tables(LEVERS, "size lever"):
        link = lv.get("link", str, None)
        if link is not None and link not in LINK_MODES:
            raise RecipeError(f"{lv.where}.link: '{link}' is not a link mode" + did_you_mean(link, LINK_MODES))
        out[name] = SizeLever(
            name=name, description=lv.get("description", str), default=lv.get("default", bool, False),
            targets=lv.strings("targets", TARGETS), requires_feature=lv.get("requires_feature", str, None),
            defines=lv.defines("defines"), link=link, link_flags=lv.strings("link_flags"),
            strip=lv.get("strip", bool, False), notes=lv.get("notes", str, ""),
            always_included_ops=lv.strings("always_included_ops"))
        lv.done()
        if not (out[name].defines or out[name].link or out[name].link_flags or out[name].strip
                or out[name].requires_feature):
            raise RecipeError(f"{lv.where}: the lever changes nothing (no defines, link, link_flags, strip "
                              "or requires_feature)")
    return _ro(out)


def _parse_system_libs(table: _Reader) -> Mapping[str, SystemLib]:
    out = {}
    for name in table.data:
        s = table.table(name)
        out[name] = SystemLib(name=name, defines=s.defines("defines"), replaces=s.strings("replaces"),
                              packages=s.strings("packages"))
        s.done()
    table.done()
    return _ro(out)


def _check_consistency(recipe: Recipe) -> None:
    for f in recipe.features.values():
        for dep in f.requires:
            if dep not in recipe.features:
                raise RecipeError(f"{recipe.path.name}: feature {f.name} requires unknown feature {dep}")
        for t in f.targets:
            if t not in TARGETS:
                raise RecipeError(f"{recipe.path.name}: feature {f.name} names unknown target {t}")
    for lever in recipe.size_levers.values():
        where = f"{recipe.path.name}: size lever {lever.name}"
        for t in lever.targets:
            if t not in TARGETS:
                raise RecipeError(f"{where} names unknown target {t}")
            if t not in recipe.targets:
                raise RecipeError(f"{where} names target {t}, which the recipe does not build")
        if lever.requires_feature is not None:
            feature = recipe.features.get(lever.requires_feature)
            if feature is None:   # a lever a release lacks must never be offered
                raise RecipeError(f"{where} requires feature {lever.requires_feature}, which {recipe.tag} lacks")
            if not set(lever.targets) <= set(feature.targets):
                raise RecipeError(f"{where}: targets {', '.join(lever.targets)} but feature "
                                  f"{feature.name} builds for {', '.join(feature.targets)}")
    if not recipe.sources:
        raise RecipeError(f"{recipe.path.name}: [sources] must cite the files the recipe was read from")
    if recipe.ndk_default is not None:
        try:
            default = Version(recipe.ndk_default)
        except InvalidVersion:
            raise RecipeError(f"{recipe.path.name}: ndk_default '{recipe.ndk_default}' is not an NDK revision "
                              "(Pkg.Revision, e.g. 19.2.5345600)") from None
        if len(default.release) < 3 or not recipe.ndk_supported.contains(default, prereleases=True):
            raise RecipeError(f"{recipe.path.name}: ndk_default {recipe.ndk_default} must be a full revision "
                              f"inside ndk_supported ({recipe.ndk_supported})")


def summary(recipe: Recipe) -> dict[str, Any]:
    """A JSON-ready description (for `builder recipes show --json`)."""
    def spec(s: SpecifierSet) -> str:
        return str(s)

    return {
        "tag": recipe.tag, "default": recipe.default, "commit": recipe.commit,
        "commit_verified": recipe.commit_verified,
        "provenance": {"facts": recipe.provenance.facts, "label": recipe.provenance.label,
                       "tree": recipe.provenance.tree, "from_commits": list(recipe.provenance.from_commits),
                       "summary": recipe.provenance.summary},
        "commit_source": recipe.commit_source, "sources": dict(recipe.sources), "notes": recipe.notes,
        "python": spec(recipe.python), "cmake": spec(recipe.cmake),
        "cmake_policy_minimum": recipe.cmake_policy_minimum,
        "ndk": {"supported": spec(recipe.ndk_supported), "tested": recipe.ndk_tested.texts(),
                "default": recipe.ndk_default},
        "bytecode": {"min": recipe.bytecode_min, "max": recipe.bytecode_max},
        "features": {n: {"targets": list(f.targets), "default": list(f.default_targets), "on": dict(f.on),
                         "off": dict(f.off)} for n, f in recipe.features.items()},
        "system_libs": {n: {"defines": dict(s.defines), "replaces": list(s.replaces), "packages": list(s.packages)}
                        for n, s in recipe.system_libs.items()},
        "optional_submodules": dict(recipe.optional_submodules),
        "size_levers": {n: {"description": lv.description, "default": lv.default, "targets": list(lv.targets),
                            "requires_feature": lv.requires_feature, "defines": dict(lv.defines),
                            "link": lv.link, "link_flags": list(lv.link_flags), "strip": lv.strip,
                            "notes": lv.notes, **({"always_included_ops": list(lv.always_included_ops)}
                                        if lv.always_included_ops else {})}
                            for n, lv in recipe.size_levers.items()},
        "targets": {n: _target_summary(t) for n, t in recipe.targets.items()},
    }


def _target_summary(t: Target) -> dict[str, Any]:
    out: dict[str, Any] = {"script": t.script, "build_type": t.build_type, "defines": dict(t.defines),
                           "extra_defines": dict(t.extra_defines),
                           "env": dict(t.env), "submodules": list(t.submodules)}
    if t.abis:
        out.update(abis=list(t.abis), default_abis=list(t.default_abis), api_level=t.api_level, stl=t.stl)
    if t.platforms:
        out.update(platforms={k: list(v) for k, v in t.platforms.items()},
                   deployment_target=t.deployment_target)
    out.update(artifact_lite=t.artifact_lite, artifact_full=t.artifact_full)
    return out
