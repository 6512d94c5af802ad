"""Just enough Mach-O / fat parsing (archives: builder.ar) to tell which arch and platform a static library is for.

Used to refuse a simulator object in a device slice (and the other way round) before lipo/libtool
run, and by tests. Pure Python, no processes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from builder.ar import is_archive, member_bytes, read_archive
from builder.errors import PackageError

CPU_TYPES = {7: "i386", 0x01000007: "x86_64", 12: "armv7", 0x0100000C: "arm64", 0x0200000C: "arm64_32"}
PLATFORMS = {1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 6: "maccatalyst", 7: "iossimulator",
             8: "tvossimulator", 9: "watchossimulator"}
LC_BUILD_VERSION = 0x32
LC_VERSION_MIN_IPHONEOS = 0x25
_FAT_MAGIC = 0xCAFEBABE
_FAT_MAGIC_64 = 0xCAFEBABF
_MH_MAGIC = 0xFEEDFACE
_MH_MAGIC_64 = 0xFEEDFACF
_BITCODE = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")


@dataclass(frozen=True)
class MachObject:
    member: str  # "lib.a(foo.o)" or the file name
    arch: str  # "arm64", "x86_64", ... or "bitcode"
    platform: str | None  # "ios", "iossimulator", ... None when the object does not say


def describe(data: bytes, name: str) -> tuple[MachObject, ...]:
    """Every object in a thin/fat Mach-O file or static archive, with its arch and platform."""
    if is_archive(data):
        return _archive(data, name)
    if len(data) >= 4 and struct.unpack(">I", data[:4])[0] in (_FAT_MAGIC, _FAT_MAGIC_64):
        out: list[MachObject] = []
        for offset, size in _fat_slices(data, name):
            out += describe(data[offset:offset + size], name)
        return tuple(out)
    return (_object(data, name),)


def archs(data: bytes, name: str) -> tuple[str, ...]:
    """Architectures present, sorted, without duplicates."""
    return tuple(sorted({o.arch for o in describe(data, name)}))


def _fat_slices(data: bytes, name: str) -> list[tuple[int, int]]:
    magic, count = struct.unpack(">II", data[:8])
    wide = magic == _FAT_MAGIC_64
    fmt, step = (">iiQQII", 32) if wide else (">iiIII", 20)
    slices = []
    for i in range(count):
        fields = struct.unpack_from(fmt, data, 8 + i * step)
        offset, size = fields[2], fields[3]
        if offset + size > len(data):
            raise PackageError(f"{name}: truncated fat (universal) file")
        slices.append((offset, size))
    return slices


def _archive(data: bytes, name: str) -> tuple[MachObject, ...]:
    return tuple(_object(member_bytes(data, m), f"{name}({m.name})") for m in read_archive(data, name) if m.size)


def _object(data: bytes, name: str) -> MachObject:
    if data[:4] in _BITCODE:
        return MachObject(name, "bitcode", None)
    if len(data) < 28:
        raise PackageError(f"{name}: not a Mach-O object (too short)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (_MH_MAGIC, _MH_MAGIC_64):
        raise PackageError(f"{name}: not a Mach-O object (magic {data[:4].hex()})")
    cputype, _sub, _ftype, ncmds, _sizeofcmds = struct.unpack_from("<iiIII", data, 4)
    arch = CPU_TYPES.get(cputype & 0xFFFFFFFF, f"cpu{cputype:#x}")
    offset = 32 if magic == _MH_MAGIC_64 else 28
    platform = None
    for _ in range(ncmds):
        if offset + 8 > len(data):
            raise PackageError(f"{name}: truncated Mach-O load commands")
        cmd, size = struct.unpack_from("<II", data, offset)
        if cmd == LC_BUILD_VERSION:
            code = struct.unpack_from("<I", data, offset + 8)[0]
            platform = PLATFORMS.get(code, f"platform{code}")
        elif cmd == LC_VERSION_MIN_IPHONEOS and platform is None:
            # Before LC_BUILD_VERSION the simulator was told apart by its (Intel) CPU only.
            platform = "iossimulator" if arch in ("i386", "x86_64") else "ios"
        if size < 8:
            raise PackageError(f"{name}: malformed Mach-O load command")
        offset += size
    return MachObject(name, arch, platform)
