"""The one ``ar`` archive reader (static libraries): GNU (``//`` long-name table, ``/N`` references) and BSD
(``#1/N`` names stored after the header) variants, symbol tables skipped, thin archives refused. Pure Python, no
``ar`` process: used to pick registration objects (models.runner) and to read Mach-O slices (package.macho)."""
from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .errors import PackageError

AR_MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
SYMBOL_TABLES = frozenset({"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64", "__.SYMDEF_64 SORTED"})
Buffer = bytes | bytearray | memoryview | mmap.mmap


class ArchiveError(PackageError):
    """Not an ar archive, or a damaged one (exit 5, like every packaging refusal)."""


@dataclass(frozen=True)
class ArMember:
    index: int           # position among the archive's members (0-based, symbol tables not counted)
    name: str
    offset: int          # of the member's data in the archive
    size: int


def is_archive(data: Buffer) -> bool:
    return bytes(data[:8]) == AR_MAGIC


def read_archive(data: Buffer, where: str = "archive") -> tuple[ArMember, ...]:
    """The (non-symbol-table) members of an ``ar`` archive held in ``data``, in order."""
    head = bytes(data[:8])
    if head == THIN_MAGIC:
        raise ArchiveError(f"{where} is a thin archive (members are not stored in it)",
                           hint="build with a normal archiver (ar qc, not ar qcT)")
    if head != AR_MAGIC:
        raise ArchiveError(f"{where} is not an ar archive")
    members: list[ArMember] = []
    long_names = b""
    pos, end = 8, len(data)
    while pos + 60 <= end:
        header = bytes(data[pos:pos + 60])
        if header[58:60] != b"`\n":
            raise ArchiveError(f"{where}: bad member header at offset {pos}")
        raw_name = header[:16].decode("ascii", "replace").rstrip(" ")
        try:
            size = int(header[48:58].decode("ascii").strip() or "0")
        except ValueError:
            raise ArchiveError(f"{where}: bad member size at offset {pos}") from None
        start = pos + 60
        if start + size > end:
            raise ArchiveError(f"{where}: member at offset {pos} runs past the end")
        name: str | None
        data_start, data_size = start, size
        if raw_name in SYMBOL_TABLES:
            name = None
        elif raw_name == "//":                                  # GNU: the long-name table
            long_names, name = bytes(data[start:start + size]), None
        elif raw_name.startswith("#1/"):                        # BSD: name follows the header
            length = int(raw_name[3:])
            name = bytes(data[start:start + length]).rstrip(b"\0").decode("utf-8", "replace")
            data_start, data_size = start + length, size - length
        elif raw_name.startswith("/") and raw_name[1:].isdigit():   # GNU: "name/\n" at an offset in the table
            offset = int(raw_name[1:])
            stop = long_names.find(b"\n", offset)
            name = long_names[offset:stop if stop >= 0 else None].decode("utf-8", "replace").rstrip("/")
        else:
            name = raw_name[:-1] if raw_name.endswith("/") else raw_name
        if name is not None and name not in SYMBOL_TABLES:
            members.append(ArMember(len(members), name, data_start, data_size))
        pos = start + size + (size & 1)
    return tuple(members)


def member_bytes(data: Buffer, member: ArMember) -> bytes:
    return bytes(data[member.offset:member.offset + member.size])


def extract_members(archive: Path, members: Sequence[ArMember], out_dir: Path) -> dict[Path, str]:
    """Write ``members`` of ``archive`` into ``out_dir`` as ``NNNNN_<name>`` (archives may repeat a name);
    returns {file: "libfoo.a(name)"} so map files can name them as the linker would have."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[Path, str] = {}
    with open(archive, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for m in members:
            target = out_dir / f"{m.index:05d}_{Path(m.name).name}"
            if not (target.is_file() and target.stat().st_size == m.size):
                atomic.write_bytes(target, member_bytes(data, m))
            written[target] = f"{archive.name}({m.name})"
    return written
