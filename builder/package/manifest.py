"""manifest.json beside every artifact: what went in (source, patches, toolchain, defines, ops)
and what came out (every file with sha256 and size). Plus size reports and comparisons as data.

The JSON is deterministic (sorted keys, fixed layout), so manifests can be diffed and hashed.
"""
from __future__ import annotations

import json
import re
import tarfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import atomic
from builder.errors import PackageError
from builder.hashing import sha256_bytes, sha256_file, sha256_json, sha256_stream

MANIFEST_FORMAT = 1
_SDK_DIRS = ("include", "lib", "share", "bin")


@dataclass(frozen=True)
class Patch:
    name: str
    sha256: str

    @classmethod
    def from_file(cls, path: Path) -> Patch:
        return cls(path.name, sha256_file(path))


@dataclass(frozen=True)
class ManifestInputs:
    tag: str  # the release tag (a recipe's)
    commit: str
    submodules: Mapping[str, str] = field(default_factory=dict)  # path -> commit
    patches: tuple[Patch, ...] = ()  # in the order applied
    toolchain: Mapping[str, str] = field(default_factory=dict)  # e.g. {"ndk": "25.1.8937393"}
    cmake_version: str = ""
    ninja_version: str = ""
    defines: Mapping[str, str] = field(default_factory=dict)  # every -D given to CMake
    ops: tuple[str, ...] | None = None  # selective-build op list; None: every op
    op_list_sha256: str | None = None  # of the op-list file as given; default: of ops_text(ops)
    target: str = ""  # e.g. "android-arm64-v8a", "ios", "host"
    builder_version: str = ""
    source_date_epoch: int = 0


@dataclass(frozen=True)
class SizeRow:
    group: str  # ABI, xcframework library identifier, SDK folder, or "common"
    files: int
    bytes: int
    largest: str
    largest_bytes: int


@dataclass(frozen=True)
class SizeDelta:
    group: str
    path: str  # "" for the group's total
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def percent(self) -> float | None:
        return None if self.old == 0 else 100.0 * self.delta / self.old


def ops_text(ops: Sequence[str]) -> str:
    """Canonical op-list text (sorted, unique, one per line) -- what op_list sha256 is over."""
    return "".join(f"{op}\n" for op in sorted(set(ops)))


def config_digest(inputs: ManifestInputs) -> str:
    """sha256 of everything that defines the build (not the timestamp): use for custom versions."""
    doc = _inputs_doc(inputs)
    doc.pop("source_date_epoch", None)
    return sha256_json(doc)


def build_manifest(inputs: ManifestInputs, artifact: Path, *, kind: str | None = None,
                   details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest for ``artifact`` (a file or folder). ``details``: extra data, e.g. ELF reports."""
    if not artifact.exists():
        raise PackageError(f"artifact {artifact} not found")
    kind = kind or artifact_kind(artifact)
    files = sorted(_files(artifact, kind), key=lambda f: f["path"])
    doc = _inputs_doc(inputs)
    doc.update({
        "format": MANIFEST_FORMAT,
        "artifact": {"name": artifact.name, "kind": kind,
                     "sha256": None if artifact.is_dir() else sha256_file(artifact),
                     "size": sum(f["size"] for f in files) if artifact.is_dir() else artifact.stat().st_size},
        "files": files,
        "details": _plain(details or {}),
    })
    return doc


def manifest_json(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def manifest_path(artifact: Path) -> Path:
    """Where an artifact's manifest lives: ``<artifact>.manifest.json`` beside it."""
    return artifact.with_name(artifact.name + ".manifest.json")


def write_manifest(manifest: Mapping[str, Any], dest: Path) -> Path:
    return atomic.write_text(dest, manifest_json(manifest))


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PackageError(f"manifest {path} not found") from exc
    except OSError as exc:
        raise PackageError(f"cannot read manifest {path}: {exc.strerror}",
                           hint="pass an artifact's <artifact>.manifest.json file") from exc
    except ValueError as exc:
        raise PackageError(f"manifest {path} is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or "files" not in doc:
        raise PackageError(f"{path} is not a builder manifest (format {MANIFEST_FORMAT})")
    return doc


def artifact_kind(artifact: Path) -> str:
    name = artifact.name
    if artifact.is_dir():
        return "dir"
    for suffix, kind in ((".aar", "aar"), (".jar", "zip"), (".zip", "zip"), (".tar.gz", "tar.gz"),
                         (".tgz", "tar.gz")):
        if name.endswith(suffix):
            return kind
    return "file"


def file_group(path: str) -> str:
    """Which ABI / slice / SDK folder a file belongs to, for size reports."""
    match = re.match(r"(?:.*/)?jni/([^/]+)/", path) or re.match(r"(?:.*/)?[^/]+\.xcframework/([^/]+)/", path)
    if match:
        return match.group(1)
    parts = path.split("/")
    for part in parts[:2]:
        if part in _SDK_DIRS and part != parts[-1]:
            return part
    return "common"


def size_report(manifest: Mapping[str, Any]) -> tuple[SizeRow, ...]:
    """Uncompressed bytes per group (ABI, slice, SDK folder), sorted by group."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for f in manifest.get("files", []):
        groups.setdefault(f.get("group") or file_group(f["path"]), []).append(f)
    rows = []
    for group in sorted(groups):
        files = groups[group]
        biggest = max(files, key=lambda f: (f["size"], f["path"]))
        rows.append(SizeRow(group, len(files), sum(f["size"] for f in files),
                            biggest["path"], biggest["size"]))
    return tuple(rows)


def compare(old: Mapping[str, Any], new: Mapping[str, Any], *,
            only_grown: bool = True) -> tuple[SizeDelta, ...]:
    """What grew from ``old`` to ``new``: group totals first, then files; biggest growth first."""
    def sizes(doc: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
        return {f["path"]: (f.get("group") or file_group(f["path"]), f["size"]) for f in doc.get("files", [])}

    before, after = sizes(old), sizes(new)
    files = [SizeDelta(after.get(p, before.get(p))[0], p,  # type: ignore[index]
                       before.get(p, ("", 0))[1], after.get(p, ("", 0))[1])
             for p in sorted(set(before) | set(after))]
    totals: dict[str, list[int]] = {}
    for row in files:
        acc = totals.setdefault(row.group, [0, 0])
        acc[0] += row.old
        acc[1] += row.new
    groups = [SizeDelta(g, "", o, n) for g, (o, n) in sorted(totals.items())]
    def keep(r: SizeDelta) -> bool:
        return r.delta > 0 if only_grown else r.delta != 0

    def order(r: SizeDelta) -> tuple[int, str, str]:
        return (-r.delta, r.group, r.path)
    return tuple(sorted(filter(keep, groups), key=order) + sorted(filter(keep, files), key=order))


# --- internals --------------------------------------------------------------------------------

def _inputs_doc(inputs: ManifestInputs) -> dict[str, Any]:
    ops = None
    if inputs.ops is not None:
        text = ops_text(inputs.ops)
        ops = {"count": len(set(inputs.ops)), "list": sorted(set(inputs.ops)),
               "sha256": inputs.op_list_sha256 or sha256_bytes(text.encode())}
    toolchain = dict(inputs.toolchain)
    toolchain.update({"cmake": inputs.cmake_version, "ninja": inputs.ninja_version})
    return {
        "tag": inputs.tag, "commit": inputs.commit, "target": inputs.target,
        "submodules": dict(sorted(inputs.submodules.items())),
        "patches": [{"name": p.name, "sha256": p.sha256} for p in inputs.patches],
        "toolchain": toolchain, "defines": dict(inputs.defines),
        "ops": ops, "selective": inputs.ops is not None,
        "builder_version": inputs.builder_version, "source_date_epoch": inputs.source_date_epoch,
    }


def _files(artifact: Path, kind: str) -> Iterator[dict[str, Any]]:
    if kind == "dir":
        for path in sorted(p for p in artifact.rglob("*") if p.is_file() or p.is_symlink()):
            rel = path.relative_to(artifact).as_posix()
            key = f"{artifact.name}/{rel}"  # so "X.xcframework/<library>/..." groups by library
            if path.is_symlink():
                yield _row(rel, None, 0, link=str(path.readlink()), key=key)
            else:
                yield _row(rel, sha256_file(path), path.stat().st_size, key=key)
    elif kind in ("aar", "zip"):
        with zipfile.ZipFile(artifact) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    with zf.open(info) as handle:
                        yield _row(info.filename, sha256_stream(handle), info.file_size)
    elif kind == "tar.gz":
        with tarfile.open(artifact, "r:gz") as tar:
            for member in tar:
                if member.issym() or member.islnk():
                    yield _row(member.name, None, 0, link=member.linkname)
                elif member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    yield _row(member.name, sha256_stream(extracted), member.size)
    else:
        yield _row(artifact.name, sha256_file(artifact), artifact.stat().st_size)


def _row(path: str, sha: str | None, size: int, *, link: str | None = None,
         key: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"path": path, "sha256": sha, "size": size,
                           "group": file_group(key or path)}
    if link is not None:
        row["link"] = link
    return row


def _plain(value: Any) -> Any:
    """Make ``details`` JSON-ready: dataclasses -> dicts, tuples -> lists, Paths -> str."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    return value
