"""Read what packaging needs to know about an Android shared library (pyelftools, no processes)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile

from builder.errors import PackageError

# Android ABI folder name -> the ELF e_machine its libraries must have.
ABI_MACHINE: dict[str, str] = {
    "arm64-v8a": "EM_AARCH64",
    "armeabi-v7a": "EM_ARM",
    "x86": "EM_386",
    "x86_64": "EM_X86_64",
}
PAGE_16K = 16384


@dataclass(frozen=True)
class ElfInfo:
    machine: str  # e.g. "EM_AARCH64"
    elf_class: int  # 32 or 64
    soname: str | None
    needed: tuple[str, ...]
    load_align: int  # smallest p_align over PT_LOAD segments (0: no PT_LOAD)

    @property
    def aligned_16k(self) -> bool:
        return self.load_align >= PAGE_16K


def read_elf(data: bytes, *, what: str) -> ElfInfo:
    """Parse an ELF image; ``what`` names it in the PackageError raised if it is not one."""
    try:
        elf = ELFFile(io.BytesIO(data))
        aligns = [seg["p_align"] for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
        soname, needed = _dynamic(elf)
        return ElfInfo(machine=str(elf.header["e_machine"]), elf_class=elf.elfclass,
                       soname=soname, needed=needed, load_align=min(aligns) if aligns else 0)
    except (ELFError, ValueError, KeyError, OSError) as exc:
        raise PackageError(f"{what} is not a readable ELF shared library ({exc})") from exc


def read_elf_file(path: Path, *, what: str | None = None) -> ElfInfo:
    return read_elf(path.read_bytes(), what=what or str(path))


def machine_problem(abi: str, name: str, info: ElfInfo) -> str | None:
    """A one-line problem if ``info``'s machine does not belong in the ``abi`` folder."""
    want = ABI_MACHINE.get(abi)
    if want is None:
        return f"{abi}: unknown Android ABI (expected one of {', '.join(ABI_MACHINE)})"
    if info.machine != want:
        return f"{abi}: {name} is {info.machine}, expected {want}"
    return None


def _dynamic(elf: ELFFile) -> tuple[str | None, tuple[str, ...]]:
    section = elf.get_section_by_name(".dynamic")
    dynamic = section if isinstance(section, DynamicSection) else \
        next((s for s in elf.iter_segments() if isinstance(s, DynamicSegment)), None)
    if dynamic is None:
        return None, ()
    soname: str | None = None
    needed: list[str] = []
    for tag in dynamic.iter_tags():
        if tag.entry.d_tag == "DT_NEEDED":
            needed.append(str(tag.needed))  # type: ignore[attr-defined]  # pyelftools sets it for DT_NEEDED
        elif tag.entry.d_tag == "DT_SONAME":
            soname = str(tag.soname)  # type: ignore[attr-defined]  # and this for DT_SONAME
    return soname, tuple(needed)
