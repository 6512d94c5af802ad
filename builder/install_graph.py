"""What the install needs built, from the build graph: CMake's file API (install rules, targets) and Ninja's own graph
(which edge writes each installed file). Pure: reads files in a build folder, runs nothing.

``cmake --build DIR`` builds ``all``, and ``all`` holds every target not marked EXCLUDE_FROM_ALL, linked or not: in
PyTorch's mobile builds, XNNPACK's ``all_microkernels`` OBJECT library (thousands of compiles) that nothing links or
installs (docs/real_pytorch_notes.md).
Ninja's ``install`` depends on ``all``. So the build step builds only the targets the install rules name, plus the
targets whose custom commands write files that install(FILES/DIRECTORY) copies, then ``cmake --install`` (which builds
nothing). The same rule for every release and project, read from the configured build folder:

- the file API query ``.cmake/api/v1/query/codemodel-v2`` is written before configure; configure answers in
  ``.cmake/api/v1/reply`` (codemodel 2.4+, CMake 3.22+, has each directory's ``installers``);
- ``target`` installers name targets; ``file`` and ``directory`` installers name paths: every Ninja edge writing such
  a file (or a file under such a folder) is needed, through the CMake target that owns its custom command (the target
  lists ``<main output>.rule`` among its sources), or by the file's own path when no target owns it;
- ``export`` installers copy files configure wrote; an install(CODE/SCRIPT), install(RUNTIME_DEPENDENCY_SET) or an
  installer kind this module does not know may need anything: then ``all``.

A folder without a reply (configured before builder asked, or by an older CMake) builds ``all``: the answer is None.
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUERY = Path(".cmake/api/v1/query/codemodel-v2")
REPLY = Path(".cmake/api/v1/reply")
MIN_MINOR = 4                 # codemodel 2.4: directory objects carry "installers"
# export: files configure writes; cxxModuleBmi: a target's C++ module interfaces (CMake 4 lists one per target in an
# export set, modules or not): that target
KNOWN = frozenset({"target", "file", "directory", "fileSet", "export", "cxxModuleBmi"})


@dataclass(frozen=True)
class InstallNeeds:
    """What ``cmake --build --target`` gets so that ``cmake --install`` finds everything; or why ``all``."""

    targets: tuple[str, ...]                      # CMake target names, sorted
    paths: tuple[str, ...] = ()                   # Ninja outputs no target owns (relative to the build folder)
    why: Mapping[str, str] = field(default_factory=dict)       # target -> the install rule needing it
    everything: str | None = None                 # why the whole of `all` is built instead

    @property
    def build_args(self) -> tuple[str, ...]:
        """``--target ...`` for ``cmake --build``; () builds ``all``."""
        names = (*self.targets, *self.paths)
        return () if self.everything or not names else ("--target", *names)

    def describe(self) -> str:
        if self.everything:
            return f"all (the install's needs are unknown: {self.everything})"
        return (f"{len(self.targets)} target(s) the install rules need, not `all`"
                + (f", and {len(self.paths)} installed file(s) no target owns" if self.paths else ""))


def write_query(build_dir: Path) -> None:
    """Ask configure for the codemodel (an empty file is the query); idempotent."""
    query = build_dir / QUERY
    query.parent.mkdir(parents=True, exist_ok=True)
    if not query.exists():
        query.write_bytes(b"")


def has_reply(build_dir: Path) -> bool:
    return _codemodel_file(build_dir) is not None


def needs(build_dir: Path) -> InstallNeeds | None:
    """The targets the install needs, from the build folder's file API reply and build.ninja; None without a reply.
    Cached per reply and build.ninja (a plan asks several times; build.ninja is megabytes)."""
    found = _codemodel_file(build_dir)
    if found is None:
        return None
    index = found[1]
    try:
        return _needs(build_dir, index, (_mtime(index), _mtime(build_dir / "build.ninja")))
    except (KeyError, TypeError, IndexError, OSError, json.JSONDecodeError) as exc:
        return _everything(f"the file API reply {index.name} is unreadable ({type(exc).__name__}: {exc})")


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=16)
def _needs(build_dir: Path, index: Path, _stamp: tuple[int, ...]) -> InstallNeeds:
    reply = index.parent
    codemodel = _load(reply / _load(index)["reply"]["codemodel-v2"]["jsonFile"])
    if codemodel["version"].get("minor", 0) < MIN_MINOR:
        return _everything(f"CMake's codemodel {codemodel['version']} has no install rules (2.{MIN_MINOR}+ has)")
    if not (build_dir / "build.ninja").is_file():
        return _everything("no build.ninja (another generator) to find what writes the installed files")
    config = codemodel["configurations"][0]
    source = Path(codemodel["paths"]["source"])
    targets = [_load(reply / t["jsonFile"]) | {"name": t["name"]} for t in config["targets"]]
    by_id = {t["id"]: t["name"] for t in targets if t.get("type") != "INTERFACE_LIBRARY"}   # nothing to build
    why: dict[str, str] = {}
    wanted: list[Path] = []
    for directory in config["directories"]:
        installers = _load(reply / directory["jsonFile"]).get("installers", []) if "jsonFile" in directory else []
        for inst in installers:
            kind = inst.get("type")
            if kind not in KNOWN:
                return _everything(f"an install({kind}) rule in {directory.get('source', '.')}/CMakeLists.txt")
            target = inst.get("targetId") or inst.get("cxxModuleBmiTarget", {}).get("id")
            if kind in ("target", "cxxModuleBmi") and target in by_id:     # not listed: an interface library
                why.setdefault(by_id[target], f"install(TARGETS) to {inst.get('destination', '?')}")
            elif kind in ("file", "directory", "fileSet"):
                wanted += (_absolute(_from(p), source) for p in inst.get("paths", ()))
    owners = _rule_owners(targets, source)
    paths: list[str] = []
    for outputs in _edges_writing(build_dir, wanted):
        owner = next((owners[o] for o in outputs if o in owners), None)
        if owner is not None:
            why.setdefault(owner, f"writes {_short(outputs[0], build_dir)}, which the install copies")
        else:
            paths.append(_short(outputs[0], build_dir))
    return InstallNeeds(tuple(sorted(why)), tuple(sorted(set(paths))), dict(sorted(why.items())))


def _everything(reason: str) -> InstallNeeds:
    return InstallNeeds((), (), {}, everything=reason)


def _codemodel_file(build_dir: Path) -> tuple[Path, Path] | None:
    """(the reply folder, the newest index file) when that index answers the codemodel query."""
    reply = build_dir / REPLY
    try:
        index = max(reply.glob("index-*.json"))
        _load(index)["reply"]["codemodel-v2"]["jsonFile"]
        return reply, index
    except (ValueError, KeyError, TypeError, OSError, json.JSONDecodeError):
        return None


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path}: not a JSON object")
    return data


def _from(path: str | Mapping[str, str]) -> str:
    return path if isinstance(path, str) else path["from"]


def _absolute(path: str, base: Path) -> Path:
    return Path(os.path.normpath(path if os.path.isabs(path) else base / path))


def _short(path: Path, build_dir: Path) -> str:
    try:
        return str(path.relative_to(build_dir))
    except ValueError:
        return str(path)


def _rule_owners(targets: Sequence[Mapping[str, Any]], source: Path) -> dict[Path, str]:
    """Custom command main output -> the target listing ``<output>.rule`` among its sources (CMake's convention;
    relative source paths are relative to the top-level source folder)."""
    owners: dict[Path, str] = {}
    for target in targets:
        for src in target.get("sources", ()):
            path = str(src.get("path", ""))
            if src.get("isGenerated") and path.endswith(".rule"):
                owners.setdefault(_absolute(path[: -len(".rule")], source), str(target["name"]))
    return owners


def _edges_writing(build_dir: Path, wanted: Sequence[Path]) -> Iterator[tuple[Path, ...]]:
    """Every Ninja edge (its outputs) writing a wanted file or a file under a wanted folder."""
    files = set(wanted)
    folders = tuple(f"{w}{os.sep}" for w in wanted)
    for outputs in ninja_edges(build_dir):
        if any(o in files or str(o).startswith(folders) for o in outputs):
            yield outputs


def ninja_edges(build_dir: Path) -> Iterator[tuple[Path, ...]]:
    """The outputs of each ``build`` statement of ``build_dir/build.ninja`` (explicit and implicit), absolute; not
    ``phony`` ones (CMake declares the files configure read, and target names, as phony outputs)."""
    text = (build_dir / "build.ninja").read_text(encoding="utf-8", errors="replace").replace("$\n", "")
    workdir = f"{build_dir}{os.sep}"
    for line in text.splitlines():
        if not line.startswith("build "):
            continue
        outs, rest = _unescaped_words(line[len("build "):], stop=":")
        if rest.split(maxsplit=1)[:1] in (["phony"], ["RERUN_CMAKE"], ["CLEAN"], ["HELP"]) \
                or all(o.endswith(".util") for o in outs):      # CMake's utility targets (install, edit_cache)
            continue
        paths = [w.replace("${cmake_ninja_workdir}", workdir) for w in outs if w != "|"]
        yield tuple(_absolute(p, build_dir) for p in paths)


def _unescaped_words(text: str, stop: str) -> tuple[list[str], str]:
    """Ninja's words up to the first unescaped ``stop`` (``$ `` is a space, ``$:`` a colon, ``$$`` a dollar), and the
    text after it."""
    words: list[str] = []
    word: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text) and text[i + 1] in " :$":
            word.append(text[i + 1])
            i += 2
            continue
        if ch == stop:
            i += 1
            break
        if ch == " ":
            if word:
                words.append("".join(word))
            word = []
        else:
            word.append(ch)
        i += 1
    if word:
        words.append("".join(word))
    return words, text[i:]
