"""Size levers: which ones a build uses (chosen per release from the recipe's [size_levers]) and how they link.

Pure except :func:`strip_keep_debug`, which runs objcopy through ``proc``. A lever the release lacks is never
chosen: the recipe is the only list of what exists, and ``choose`` refuses names it does not hold.

* ``choose(recipe, target, ...)`` -> ``LeverChoice`` (names, the features they turn on, problems, warnings);
* ``link_spec(recipe, names)`` -> ``LinkSpec`` (link mode, extra link flags, strip) for a program or JNI library
  linking against the build;
* ``strip_keep_debug(binary, ...)`` -> the stripped copy and its ``.debug`` file (``--add-gnu-debuglink``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolchainError, UsageError, did_you_mean
from .recipes import LEVERS, Defines, Recipe, SizeLever

DEFAULT_LINK = "whole-archive"


@dataclass(frozen=True)
class LeverChoice:
    levers: tuple[str, ...]                 # in recipe order
    features: frozenset[str]                # features the levers turn on (requires_feature)
    problems: tuple[UsageError, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkSpec:
    """How a program (the verify runner, a JNI library) links libtorch_cpu under the chosen levers."""

    mode: str = DEFAULT_LINK               # whole-archive | registrations
    flags: tuple[str, ...] = ()             # extra linker driver flags, e.g. -Wl,--gc-sections
    strip: bool = False                     # strip after linking, keeping a .debug file

    def describe(self) -> str:
        parts = [f"link {self.mode}", *self.flags]
        if self.strip:
            parts.append("strip (debug file kept)")
        return ", ".join(parts)


def available(recipe: Recipe, target: str) -> tuple[SizeLever, ...]:
    """The levers this release has for ``target``, in recipe order."""
    return tuple(lv for lv in recipe.size_levers.values() if target in lv.targets)


def releases_with(name: str, recipes: Sequence[Recipe] | None = None) -> tuple[str, ...]:
    if recipes is None:
        from .recipes import load_all

        recipes = load_all()
    return tuple(r.tag for r in recipes if name in r.size_levers)


def choose(recipe: Recipe, target: str, *, defaults: bool = False, names: Sequence[str] = (),
           has_ops: bool = False, ops_format: str | None = None,
           recipes: Sequence[Recipe] | None = None) -> LeverChoice:
    """The levers for a build: the release's defaults for ``target`` (``--size-levers``) plus ``names``
    (``--lever``). Unknown names, levers the release lacks or that do not apply to ``target`` are problems;
    a default lever that cannot apply (selected_ops without ``--ops``, traced_ops without a traced op list)
    is a warning. ``ops_format``: plain or tracing, the shape of the --ops file."""
    traced = has_ops and ops_format == "tracing"
    problems: list[UsageError] = []
    warnings: list[str] = []
    chosen: set[str] = set()
    if defaults:
        for lv in available(recipe, target):
            if not lv.default:
                continue
            if lv.requires_feature == "selected_ops" and not has_ops:
                warnings.append(f"size lever {lv.name} needs an operator list: pass --ops FILE "
                                "(e.g. from `builder ops MODEL -o ops.yaml`); building all operators")
                continue
            if lv.requires_feature == "tracing_based" and not traced:
                if has_ops:
                    warnings.append(f"size lever {lv.name} needs a traced op list (root operators and what they "
                                    "call): `builder ops MODEL --trace FULL_BUILD -o ops.yaml`; registering every "
                                    "operator")
                continue
            chosen.add(lv.name)
    for name in names:
        lever = recipe.size_levers.get(name)
        if name not in LEVERS:
            problems.append(UsageError(f"unknown size lever '{name}'" + did_you_mean(name, LEVERS),
                                       hint=f"levers: {', '.join(LEVERS)}"))
        elif lever is None:
            tags = releases_with(name, recipes)
            problems.append(UsageError(f"--lever {name}: {recipe.tag} has no {name} size lever",
                                       hint=f"releases with it: {', '.join(tags)}" if tags
                                       else "no supported release has it"))
        elif target not in lever.targets:
            problems.append(UsageError(f"--lever {name} is not available for {target} at {recipe.tag}",
                                       hint=f"{name} applies to: {', '.join(lever.targets)}"))
        elif lever.requires_feature == "selected_ops" and not has_ops:
            problems.append(UsageError(f"--lever {name} needs an operator list", hint="add --ops FILE"))
        elif lever.requires_feature == "tracing_based" and not traced:
            problems.append(UsageError(f"--lever {name} needs a traced op list",
                                       hint="write one with: builder ops MODEL --trace FULL_BUILD -o ops.yaml, "
                                            "and pass it with --ops"))
        else:
            chosen.add(name)
    ordered = tuple(n for n in recipe.size_levers if n in chosen)
    features = frozenset(f for n in ordered if (f := recipe.size_levers[n].requires_feature) is not None)
    return LeverChoice(ordered, features, tuple(problems), tuple(warnings))


def link_spec(recipe: Recipe, names: Sequence[str]) -> LinkSpec:
    """Link mode, flags and stripping for ``names`` (levers of ``recipe``); whole-archive when no lever links."""
    mode = DEFAULT_LINK
    flags: list[str] = []
    strip = False
    for name in names:
        lever = recipe.size_levers[name]
        if lever.link is not None:
            mode = lever.link
        flags += [f for f in lever.link_flags if f not in flags]
        strip = strip or lever.strip
    return LinkSpec(mode, tuple(flags), strip)


def lever_defines(recipe: Recipe, names: Sequence[str]) -> tuple[Defines, ...]:
    """The define layers of the chosen levers, in recipe order (plan.py merges them, appending ``*_FLAGS``)."""
    return tuple(recipe.size_levers[n].defines for n in recipe.size_levers if n in names)


def table(recipes: Sequence[Recipe]) -> tuple[tuple[str, dict[str, str]], ...]:
    """(tag, {lever: cell}) per release for a lever-per-release table: 'default', 'opt-in' or '' (absent);
    targets in brackets when the lever does not cover every target of the release."""
    rows = []
    for r in recipes:
        cells = {}
        for name in LEVERS:
            lv = r.size_levers.get(name)
            if lv is None:
                cells[name] = ""
                continue
            cell = "default" if lv.default else "opt-in"
            if set(lv.targets) != set(r.targets):
                cell += f" ({', '.join(lv.targets)})"
            cells[name] = cell
        rows.append((r.tag, cells))
    return tuple(rows)


# ------------------------------------------------------------------ strip with a kept debug file

@dataclass(frozen=True)
class Stripped:
    binary: Path      # stripped, with a .gnu_debuglink to debug
    debug: Path       # symbols and DWARF (objcopy --only-keep-debug)


def find_objcopy(environ: Mapping[str, str]) -> str:
    """$OBJCOPY (from the machine's ``environ``), else objcopy or llvm-objcopy on PATH."""
    from . import proc

    for candidate in (environ.get("OBJCOPY"), "objcopy", "llvm-objcopy"):
        if candidate and (proc.which(candidate) or Path(candidate).is_file()):
            return candidate
    raise ToolchainError("no objcopy to strip with", hint="install binutils (or llvm), or set OBJCOPY")


def strip_keep_debug(binary: Path, out: Path | None = None, *, objcopy: str | None = None) -> Stripped:
    """``objcopy --only-keep-debug`` first (the symbols survive in ``<out>.debug``), then
    ``objcopy --strip-all --add-gnu-debuglink`` into ``out`` (default ``<binary>.stripped``).
    Linking with ``-s`` instead would leave nothing to keep."""
    from . import proc

    tool = objcopy or find_objcopy({})
    out = out or binary.with_name(binary.name + ".stripped")
    debug = out.with_name(out.name + ".debug")
    out.unlink(missing_ok=True)
    proc.run([tool, "--only-keep-debug", binary, debug])
    proc.run([tool, "--strip-all", f"--add-gnu-debuglink={debug}", binary, out])
    return Stripped(out, debug)
