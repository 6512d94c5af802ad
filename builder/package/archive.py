"""Reproducible archive writers and all-or-nothing output helpers.

Same inputs + same SOURCE_DATE_EPOCH -> byte-identical zip / tar.gz: entries sorted by name, one
fixed timestamp, modes normalised to 0644 (0755 for executables and directories), uid/gid 0 with
empty owner names, gzip header mtime 0 and no file name. Every output is written to a temporary
path in its destination folder and moved into place with ``os.replace``, so a failure never leaves
a half-written file (or anything at all) at the output path.
"""
from __future__ import annotations

import gzip
import io
import logging
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.atomic import DIR_MODE, FILE_MODE, atomic_dir, atomic_file, replace_dir, write_bytes, write_text  # noqa: F401 - re-exported
from builder.hashing import sha256_bytes, sha256_file  # noqa: F401 - re-exported

log = logging.getLogger("builder")

EXEC_MODE = 0o755
SYMLINK_MODE = 0o777
ZIP_EPOCH_MIN = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
_CHUNK = 1 << 20

Verify = Callable[[Path], None]


def source_date_epoch(explicit: int | None, tree: Path | None = None, commit: str | None = None) -> int:
    """The one SOURCE_DATE_EPOCH resolver: the value given (the SOURCE_DATE_EPOCH setting, or --epoch), else the
    date of ``commit`` in the git tree ``tree``, else 1980-01-01 (the earliest a zip entry can carry)."""
    if explicit is not None:
        return explicit
    if tree is not None:
        from builder.gitcmd import commit_time

        found = commit_time(tree, commit)
        if found is not None:
            return found
    return ZIP_EPOCH_MIN


@dataclass(frozen=True)
class Entry:
    """One archive member. Exactly one of source / data / link_target is used for files."""

    name: str  # posix path inside the archive, no leading "/", no trailing "/"
    kind: str = "file"  # "file" | "dir" | "symlink"
    source: Path | None = None
    data: bytes | None = None
    link_target: str = ""
    executable: bool = False

    @property
    def mode(self) -> int:
        if self.kind == "dir":
            return DIR_MODE
        if self.kind == "symlink":
            return SYMLINK_MODE
        return EXEC_MODE if self.executable else FILE_MODE

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        return self._source().stat().st_size

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        return open(self._source(), "rb")

    def _source(self) -> Path:
        if self.source is None:
            raise ValueError(f"archive entry {self.name} has no content")
        return self.source


def file_entry(name: str, data: bytes, *, executable: bool = False) -> Entry:
    return Entry(_clean(name), data=data, executable=executable)


def tree_entries(root: Path, prefix: str = "", *,
                 executable: Callable[[Path], bool] | None = None,
                 include_dirs: bool = True) -> tuple[Entry, ...]:
    """Entries for everything under ``root`` (named ``prefix/relative``), sorted.

    ``executable`` decides the 0755 bit for a file; by default any x bit on disk.
    Symlinks are stored as symlinks (never followed).
    """
    is_exec = executable or _has_exec_bit
    entries: list[Entry] = []
    if prefix and include_dirs:
        entries.extend(_prefix_dirs(prefix))
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            arc = _join(prefix, path.relative_to(root).as_posix())
            if path.is_symlink():
                entries.append(Entry(arc, "symlink", link_target=os.readlink(path)))
            elif path.is_dir():
                if include_dirs:
                    entries.append(Entry(arc, "dir"))
            elif path.is_file():
                entries.append(Entry(arc, source=path, executable=is_exec(path)))
    return tuple(sorted(entries, key=lambda e: e.name))


def sorted_unique(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """Sort by name; identical duplicate directories collapse, any other duplicate is an error."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        seen = by_name.get(entry.name)
        if seen is not None and not (seen.kind == entry.kind == "dir"):
            raise ValueError(f"duplicate archive entry: {entry.name}")
        by_name[entry.name] = entry
    return tuple(by_name[name] for name in sorted(by_name))


# zlib's own default. Measured on a real-tree 165 MB libtorch_cpu.a (gzip(1), 2-core EPYC): level 6 takes 5.5 s and
# is 2% larger than level 9, which takes 38.7 s; level 1: 2.6 s, 23% larger. 6 is the middle that costs nothing.
DEFAULT_LEVEL = 6


def write_zip(dest: Path, entries: Iterable[Entry], *, source_date_epoch: int,
              compresslevel: int = DEFAULT_LEVEL, verify: Verify | None = None) -> Path:
    """Write a reproducible zip at ``dest`` (atomically). Returns ``dest``.

    ``verify(tmp_path)`` runs on the finished archive before it is moved to ``dest``; if it
    raises, nothing is written at ``dest``.
    """
    ordered = sorted_unique(entries)
    stamp = time.gmtime(max(int(source_date_epoch), ZIP_EPOCH_MIN))[:6]
    with atomic_file(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
            for entry in ordered:
                _zip_add(zf, entry, stamp, compresslevel)
        if verify is not None:
            verify(tmp)
    return dest


def _zip_add(zf: zipfile.ZipFile, entry: Entry, stamp: tuple[int, ...], level: int) -> None:
    name = entry.name + "/" if entry.kind == "dir" else entry.name
    info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
    info.create_system = 3  # unix, so external_attr carries the mode
    if entry.kind == "dir":
        info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | 0x10
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, b"")
    elif entry.kind == "symlink":
        info.external_attr = (stat.S_IFLNK | SYMLINK_MODE) << 16
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, entry.link_target.encode())
    else:
        info.external_attr = (stat.S_IFREG | entry.mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        # zipfile.open() takes no level: set it on the ZipInfo (public name from Python 3.13 on).
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", level)
        with entry.open() as src, zf.open(info, "w", force_zip64=entry.size() > 0x7FFFFFFF) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)


def write_tar_gz(dest: Path, entries: Iterable[Entry], *, source_date_epoch: int,
                 compresslevel: int = DEFAULT_LEVEL, verify: Verify | None = None) -> Path:
    """Write a reproducible .tar.gz at ``dest`` (atomically). Returns ``dest``."""
    ordered = sorted_unique(entries)
    mtime = max(int(source_date_epoch), 0)
    with atomic_file(dest) as tmp:
        with open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                              compresslevel=compresslevel) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in ordered:
                _tar_add(tar, entry, mtime)
        if verify is not None:
            verify(tmp)
    return dest


def _tar_add(tar: tarfile.TarFile, entry: Entry, mtime: int) -> None:
    info = tarfile.TarInfo(entry.name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = entry.mode
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target
        tar.addfile(info)
    else:
        info.size = entry.size()
        with entry.open() as src:
            tar.addfile(info, src)


# --- all-or-nothing outputs: builder.atomic (re-exported: packaging code writes through ``archive``) ---------

# --- helpers ----------------------------------------------------------------------------------

def _has_exec_bit(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def _clean(name: str) -> str:
    cleaned = name.replace("\\", "/").strip("/")
    if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise ValueError(f"bad archive entry name: {name!r}")
    return cleaned


def _join(prefix: str, rel: str) -> str:
    return _clean(f"{prefix}/{rel}" if prefix else rel)


def _prefix_dirs(prefix: str) -> list[Entry]:
    parts = _clean(prefix).split("/")
    return [Entry("/".join(parts[: i + 1]), "dir") for i in range(len(parts))]
