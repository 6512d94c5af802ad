"""Where the bytes of a linked binary go: pure data, rendered by the CLI (`builder size`).

* ``read_archive(data)``: the members of a GNU/BSD ``ar`` archive, parsed here (``!<arch>\\n``, 60-byte member
  headers, the ``//`` long-name table), so no ``ar`` process is needed;
* ``has_static_initializers(obj)`` / ``registration_members(archive)``: members whose ELF object has a non-empty
  ``.init_array`` or ``.ctors`` section (TORCH_LIBRARY, TORCH_LIBRARY_IMPL and REGISTER_DISPATCH register that
  way), for the ``registrations`` link;
* ``elf_sections(path)``: allocated section sizes of a linked ELF (pyelftools);
* ``parse_map(text)``: input sections of a GNU ld (bfd/gold) or lld ``-Map`` file, attributed to
  ``libtorch_cpu.a(Foo.cpp.o)``;
* ``measure_install(...)``: link the verify runner against an install, strip a copy, and return a ``SizeReport``;
  ``compare(report, baseline)`` puts two side by side.
"""
from __future__ import annotations

import io
import mmap
import re
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic
from .errors import BuilderError, UsageError

AR_MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
INIT_SECTIONS = (".init_array", ".ctors")


class ArchiveError(BuilderError):
    exit_code = 5


# ------------------------------------------------------------------ ar archives

@dataclass(frozen=True)
class ArMember:
    index: int           # position among the archive's object members (0-based)
    name: str
    offset: int          # of the member's data in the archive
    size: int


def read_archive(data: bytes | bytearray | memoryview | mmap.mmap, where: str = "archive") -> tuple[ArMember, ...]:
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
        if raw_name in ("/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"):
            name = None                                          # symbol tables
        elif raw_name == "//":
            long_names, name = bytes(data[start:start + size]), None
        elif raw_name.startswith("#1/"):                         # BSD: name follows the header
            length = int(raw_name[3:])
            name = bytes(data[start:start + length]).rstrip(b"\0").decode("utf-8", "replace")
            data_start, data_size = start + length, size - length
            if name.startswith("__.SYMDEF"):
                name = None
        elif raw_name.startswith("/") and raw_name[1:].isdigit():  # GNU: offset into the // table
            offset = int(raw_name[1:])
            stop = long_names.find(b"\n", offset)
            name = long_names[offset:stop if stop >= 0 else None].decode("utf-8", "replace").rstrip("/")
        else:
            name = raw_name[:-1] if raw_name.endswith("/") else raw_name
        if name is not None:
            members.append(ArMember(len(members), name, data_start, data_size))
        pos = start + size + (size & 1)
    return tuple(members)


def member_bytes(data: bytes | bytearray | memoryview | mmap.mmap, member: ArMember) -> bytes:
    return bytes(data[member.offset:member.offset + member.size])


def has_static_initializers(obj: bytes) -> bool:
    """True when the ELF object has a non-empty .init_array or .ctors section (static constructors)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if obj[:4] != b"\x7fELF":
        return False
    try:
        elf = ELFFile(io.BytesIO(obj))
        for section in elf.iter_sections():
            name = section.name
            if (name in INIT_SECTIONS or any(name.startswith(s + ".") for s in INIT_SECTIONS)) \
                    and section["sh_size"] > 0:
                return True
    except ELFError:
        return False
    return False


# What a static initialiser may reference without doing anything another object could observe: the per-file
# std::ios_base::Init of <iostream> (GCC < 13 puts one in every file that includes it), the atexit machinery
# and exception plumbing. Anything else (a global or undefined symbol) may register something.
INERT_REFERENCES = frozenset({
    "_ZNSt8ios_base4InitC1Ev", "_ZNSt8ios_base4InitD1Ev", "__cxa_atexit", "atexit", "__dso_handle",
    "_GLOBAL_OFFSET_TABLE_", "__stack_chk_fail", "_Unwind_Resume", "__gxx_personality_v0",
})


def initializer_references(obj: bytes) -> frozenset[str] | None:
    """Global and undefined symbols the static initialisers of an ELF object reach: from the relocations of
    ``.init_array``/``.ctors``, following local functions and data within the object (transitively, section by
    section). ``None`` when the object has no static initialisers."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    if obj[:4] != b"\x7fELF":
        return None
    try:
        elf = ELFFile(io.BytesIO(obj))
        sections = list(elf.iter_sections())
        start = [i for i, sec in enumerate(sections)
                 if (sec.name in INIT_SECTIONS or sec.name.startswith(tuple(n + "." for n in INIT_SECTIONS)))
                 and sec["sh_size"] > 0]
        if not start:
            return None
        symtab = elf.get_section_by_name(".symtab")
        relocs = {sec["sh_info"]: sec for sec in sections if isinstance(sec, RelocationSection)}
        if symtab is None:
            return frozenset({"<no symbol table>"})
        seen, work, found = set(start), list(start), set()
        while work:
            rel_section = relocs.get(work.pop())
            if rel_section is None:
                continue
            for rel in rel_section.iter_relocations():
                sym = symtab.get_symbol(rel["r_info_sym"])
                where = sym["st_shndx"]
                if sym["st_info"]["bind"] != "STB_LOCAL" or where == "SHN_UNDEF":
                    found.add(sym.name)
                elif isinstance(where, int) and where not in seen:
                    seen.add(where)
                    work.append(where)
        return frozenset(found)
    except ELFError:
        return frozenset({"<unreadable>"})


def registers(obj: bytes) -> bool:
    """True when the object's static initialisers reach something outside it besides INERT_REFERENCES:
    what a registration (TORCH_LIBRARY_IMPL, RegisterOperators, C10_REGISTER_*) does. An object whose only
    initialiser is <iostream>'s (ATen's Operators_*.cpp, the native/cpu kernels: REGISTER_DISPATCH is a
    constant-initialised pointer the op's stub references) need not be force-loaded: the linker takes it when
    something uses it."""
    refs = initializer_references(obj)
    return refs is not None and bool(refs - INERT_REFERENCES)


def registration_members(archive: Path, rule: str = "registers") -> tuple[ArMember, ...]:
    """Members of ``archive`` a ``registrations`` link force-loads: those whose static initialisers register
    something (``rule="registers"``, see ``registers``), or every member with a static initialiser
    (``rule="initializers"``, non-empty ``.init_array``/``.ctors``)."""
    test = {"registers": registers, "initializers": has_static_initializers}[rule]
    with open(archive, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return tuple(m for m in read_archive(data, str(archive)) if test(member_bytes(data, m)))


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


# ------------------------------------------------------------------ ELF sections

@dataclass(frozen=True)
class SectionSize:
    name: str
    size: int
    file_bytes: bool = True      # False for .bss/.tbss (NOBITS: memory only)


def elf_sections(path: Path) -> tuple[SectionSize, ...]:
    """Allocated (SHF_ALLOC) sections of a linked ELF, largest first."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            out = [SectionSize(s.name, s["sh_size"], s["sh_type"] != "SHT_NOBITS")
                   for s in elf.iter_sections() if s["sh_flags"] & 0x2 and s["sh_size"] > 0]
    except (ELFError, OSError) as exc:
        raise UsageError(f"{path}: not a readable ELF file ({exc})") from None
    return tuple(sorted(out, key=lambda s: (-s.size, s.name)))


# ------------------------------------------------------------------ linker maps

@dataclass(frozen=True)
class InputSection:
    output: str          # output section (.text)
    name: str            # input section (.text._ZN2at...)
    file: str            # contributor label: libtorch_cpu.a(Foo.cpp.o), runner.cpp.o, ...
    size: int


_GNU_INPUT = re.compile(r"^ (?P<name>\S+)\s+0x(?P<addr>[0-9a-fA-F]+)\s+0x(?P<size>[0-9a-fA-F]+)\s+(?P<file>\S.*)$")
_GNU_CONT = re.compile(r"^\s+0x(?P<addr>[0-9a-fA-F]+)\s+0x(?P<size>[0-9a-fA-F]+)\s+(?P<file>\S.*)$")
_LLD_LINE = re.compile(r"^\s*[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+(?P<size>[0-9a-fA-F]+)\s+\d+(?P<indent>\s+)(?P<rest>\S.*)$")


PROGRAM = "(the program's own sources)"
_COMPILER_TEMP = re.compile(r"^(cc[A-Za-z0-9]{6}|[\w.+]+-[0-9a-f]{6,})\.o$")   # gcc / clang temporary objects


def label(file: str, aliases: Mapping[str, str] | None = None) -> str:
    """``/x/lib/libtorch_cpu.a(Foo.cpp.o)`` -> ``libtorch_cpu.a(Foo.cpp.o)``; other paths -> their aliases
    (extracted registration objects) or base names."""
    file = file.strip()
    if aliases and file in aliases:
        return aliases[file]
    match = re.match(r"^(?P<archive>.*?\.a)\((?P<member>[^()]*)\)$", file)
    if match:
        return f"{Path(match.group('archive')).name}({match.group('member')})"
    path = Path(file)
    if path.parent == Path(tempfile.gettempdir()) and _COMPILER_TEMP.match(path.name):
        return PROGRAM
    return path.name


def parse_map(text: str, aliases: Mapping[str, str] | None = None) -> tuple[InputSection, ...]:
    """Input sections kept in the output, from a GNU ld (bfd, gold) or lld map file."""
    if text.lstrip().startswith("VMA") or re.search(r"^\s*VMA\s+LMA\s+Size\s+Align", text, re.M):
        return _parse_lld(text, aliases)
    return _parse_gnu(text, aliases)


def _parse_gnu(text: str, aliases: Mapping[str, str] | None) -> tuple[InputSection, ...]:
    lines = text.splitlines()
    # bfd / gold: kept sections follow this header; "Discarded input sections" come before it
    start = next((i for i, line in enumerate(lines)
                  if line.startswith(("Linker script and memory map", "Memory map"))), -1)
    out: list[InputSection] = []
    output = ""
    pending: str | None = None           # an input section name whose numbers wrapped to the next line
    for line in lines[start + 1:]:
        if not line.strip():
            pending = None
            continue
        if line.startswith(("LOAD ", "OUTPUT(", "START GROUP", "END GROUP", "Cross Reference Table")):
            pending = None
            continue
        if not line[0].isspace():        # an output section (or /DISCARD/), maybe with its numbers
            output, pending = line.split()[0], None
            continue
        if pending is not None:
            cont = _GNU_CONT.match(line)
            if cont:
                _add(out, output, pending, cont.group("file"), int(cont.group("size"), 16), aliases)
            pending = None
            continue
        stripped = line.strip()
        if stripped.startswith(("*", "0x", "[", "PROVIDE")):
            continue                     # *fill*, patterns, symbol lines, provided symbols
        match = _GNU_INPUT.match(line)
        if match:
            _add(out, output, match.group("name"), match.group("file"), int(match.group("size"), 16), aliases)
        elif len(stripped.split()) == 1 and "=" not in stripped:
            pending = stripped           # long input section name alone on its line
    return tuple(out)


def _parse_lld(text: str, aliases: Mapping[str, str] | None) -> tuple[InputSection, ...]:
    out: list[InputSection] = []
    output = ""
    for line in text.splitlines():
        match = _LLD_LINE.match(line)
        if not match:
            continue
        indent, rest = len(match.group("indent")), match.group("rest")
        if indent <= 1:
            output = rest.split()[0]
        elif indent <= 9 and ":(" in rest:
            file, _, section = rest.rpartition(":(")
            _add(out, output, section.rstrip(")"), file, int(match.group("size"), 16), aliases)
    return tuple(out)


# Sections the linker makes itself (bfd lists them under the first input file, lld under <internal>).
LINKER = "(linker: dynamic symbols, relocations, GOT/PLT)"
_SYNTHESIZED = frozenset({".interp", ".gnu.hash", ".hash", ".dynsym", ".dynstr", ".gnu.version", ".gnu.version_r",
                          ".gnu.version_d", ".plt", ".plt.got", ".plt.sec", ".iplt", ".got", ".got.plt", ".igot.plt",
                          ".dynamic", ".eh_frame_hdr", ".dynbss", ".note.gnu.build-id", ".relr.dyn"})


def _add(out: list[InputSection], output: str, name: str, file: str, size: int,
         aliases: Mapping[str, str] | None) -> None:
    if size == 0:
        return
    synthesized = name in _SYNTHESIZED or name.startswith((".rela.", ".rel.")) or name in (".rela", ".rel")
    who = LINKER if synthesized or file.startswith(("<", "linker stubs")) else label(file, aliases)
    out.append(InputSection(output, name, who, size))


@dataclass(frozen=True)
class Contributor:
    name: str            # libtorch_cpu.a(Foo.cpp.o)
    size: int            # bytes in the kept output sections


def contributors(sections: Sequence[InputSection], outputs: Sequence[str] | None = None) -> tuple[Contributor, ...]:
    """Bytes per input file (object / archive member), largest first; only output sections in ``outputs``
    (e.g. those left in the stripped binary) when given."""
    keep = set(outputs) if outputs is not None else None
    totals: dict[str, int] = defaultdict(int)
    for s in sections:
        if keep is None or s.output in keep:
            totals[s.file] += s.size
    return tuple(Contributor(n, v) for n, v in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


# ------------------------------------------------------------------ reports

@dataclass(frozen=True)
class SizeReport:
    label: str
    install: Path
    link_mode: str
    link_flags: tuple[str, ...]
    binary: Path                           # linked, unstripped
    stripped: Path
    debug_file: Path | None
    binary_size: int
    stripped_size: int
    sections: tuple[SectionSize, ...]      # of the stripped binary
    contributors: tuple[Contributor, ...]  # all, largest first
    forced_objects: int = 0                # members force-loaded by a registrations link
    verified: str | None = None            # None: no model given; else "ok ..." or the failure
    verify_ok: bool | None = None


@dataclass(frozen=True)
class Row:
    name: str
    size: int | None
    baseline: int | None

    @property
    def ratio(self) -> float | None:
        if self.size is None or not self.baseline:
            return None
        return self.size / self.baseline


@dataclass(frozen=True)
class Comparison:
    report: SizeReport
    baseline: SizeReport | None
    total: Row
    sections: tuple[Row, ...]
    contributors: tuple[Row, ...]


def compare(report: SizeReport, baseline: SizeReport | None = None, top: int = 15) -> Comparison:
    """Stripped size, sections and the ``top`` largest contributors of ``report``, beside ``baseline``'s."""
    base_sections = {s.name: s.size for s in baseline.sections} if baseline else {}
    base_contrib = {c.name: c.size for c in baseline.contributors} if baseline else {}
    names = [s.name for s in report.sections] + [n for n in base_sections if n not in
                                                 {s.name for s in report.sections}]
    mine = {s.name: s.size for s in report.sections}
    sections = tuple(Row(n, mine.get(n), base_sections.get(n) if baseline else None) for n in names)
    contrib_mine = {c.name: c.size for c in report.contributors}
    top_names = [c.name for c in report.contributors[:top]]
    if baseline:
        top_names += [c.name for c in baseline.contributors[:top] if c.name not in top_names][:max(0, top // 3)]
    contrib = tuple(Row(n, contrib_mine.get(n), base_contrib.get(n) if baseline else None) for n in top_names)
    total = Row("stripped", report.stripped_size, baseline.stripped_size if baseline else None)
    return Comparison(report, baseline, total, sections, contrib)


def human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# ------------------------------------------------------------------ measuring an install

def measure_install(install_dir: Path, work_dir: Path, *, link_mode: str = "whole-archive",
                    link_flags: Sequence[str] = (), label_: str | None = None, model: Path | None = None,
                    inputs: Any = None, tolerance: Any = None) -> SizeReport:
    """Link the verify runner against ``install_dir`` (with a map file), strip a copy (keeping a .debug
    file) and measure it; with ``model``, also run the stripped copy on it and compare with torch."""
    import dataclasses

    from .errors import VerifyFailed
    from .levers import strip_keep_debug
    from .models import verify

    from .models.platform import toolchain_for

    install = verify.find_install(install_dir)
    toolchain = toolchain_for(install.root)
    runner = verify.compile_runner(install, work_dir, link_mode=link_mode, extra_link_args=tuple(link_flags),
                                   map_file=True, toolchain=toolchain)
    stripped = strip_keep_debug(runner.path, objcopy=_objcopy_for(toolchain.cxx) if toolchain.cross else None)
    sections = elf_sections(stripped.binary)
    kept = [s.name for s in sections if s.file_bytes]
    text = runner.map_path.read_text(encoding="utf-8", errors="replace") if runner.map_path else ""
    contrib = contributors(parse_map(text, runner.aliases), kept)
    verified = ok = None
    if model is not None:
        try:
            stripped_runner = dataclasses.replace(runner, path=stripped.binary)   # what is measured is what runs
            res = verify.verify_model(model, stripped_runner, inputs, work_dir / "run",
                                      tolerance or verify.Tolerance())
            verified, ok = (f"ok: {len(res.outputs)} output(s) match torch {res.torch_version} "
                            f"(max abs {res.max_abs_error:.2e})"), True
        except VerifyFailed as exc:
            verified, ok = f"FAILED: {exc}", False
    return SizeReport(label_ or f"{install.root} ({link_mode})", install.root, link_mode, tuple(link_flags),
                      runner.path, stripped.binary, stripped.debug, runner.path.stat().st_size,
                      stripped.binary.stat().st_size, sections, contrib, len(runner.aliases), verified, ok)


def _objcopy_for(cxx: str | None) -> str | None:
    """The cross objcopy beside a cross compiler (aarch64-linux-gnu-g++ -> aarch64-linux-gnu-objcopy), else
    llvm-objcopy (every architecture); None lets strip_keep_debug choose."""
    from . import proc

    if cxx:
        name = Path(cxx).name
        m = re.match(r"^(.*-)(?:g\+\+|c\+\+|gcc|clang\+\+)(-[\d.]+)?$", name)
        if m:
            hit = proc.which(m.group(1) + "objcopy")
            if hit:
                return hit
    return proc.which("llvm-objcopy")


__all__ = ["ArMember", "read_archive", "has_static_initializers", "registration_members", "extract_members",
           "SectionSize", "elf_sections", "InputSection", "parse_map", "Contributor", "contributors",
           "SizeReport", "Row", "Comparison", "compare", "measure_install", "human"]
