"""builder.size, builder.ar and the registration analysis of builder.models.runner on data made here: ar archives
and ELF objects built in memory, linker maps as text."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from builder.ar import ArchiveError, extract_members, read_archive
from builder.models.runner import (
    INERT_REFERENCES,
    has_static_initializers,
    initializer_references,
    registers,
    registration_members,
)
from builder.size import (
    LINKER,
    PROGRAM,
    Contributor,
    SectionSize,
    SizeReport,
    compare,
    contributors,
    elf_sections,
    label,
    parse_map,
)

SHT_PROGBITS, SHT_STRTAB, SHT_NOBITS, SHT_INIT_ARRAY = 1, 3, 8, 14
SHF_WRITE, SHF_ALLOC, SHF_EXEC = 1, 2, 4


def make_elf(sections: list[tuple[str, int, int, int]], e_type: int = 1) -> bytes:
    """A little-endian ELF64 x86-64 file with ``sections`` = [(name, type, flags, size)] (+ .shstrtab)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n, *_ in sections) + b".shstrtab\0"
    body, headers = bytearray(), [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    name_off = 1
    for name, kind, flags, size in sections:
        offset = 64 + len(body)
        if kind != SHT_NOBITS:
            body += b"\xab" * size
        headers.append(struct.pack("<IIQQQQIIQQ", name_off, kind, flags, 0, offset, size, 0, 0, 1, 0))
        name_off += len(name) + 1
    headers.append(struct.pack("<IIQQQQIIQQ", name_off, SHT_STRTAB, 0, 0, 64 + len(body), len(names), 0, 0, 1, 0))
    body += names
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, e_type, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                         len(headers), len(headers) - 1)
    return header + bytes(body) + b"".join(headers)


SHT_SYMTAB, SHT_RELA = 2, 4
STB_LOCAL, STB_GLOBAL, STT_NOTYPE, STT_FUNC, STT_SECTION = 0, 1, 0, 2, 3


def make_object(startup_refs: list[str], text_refs: list[str] = (), startup_calls_text: bool = False) -> bytes:
    """A relocatable ELF64 like GCC's: .init_array -> _GLOBAL__sub_I (in .text.startup), whose relocations
    reference ``startup_refs`` (undefined symbols) and, with ``startup_calls_text``, a local function in .text
    whose relocations reference ``text_refs``."""
    # section indexes: 1 .text, 2 .text.startup, 3 .init_array, 4 .rela.init_array, 5 .rela.text.startup,
    # 6 .rela.text, 7 .symtab, 8 .strtab, 9 .shstrtab
    strtab = bytearray(b"\0")

    def name(text: str) -> int:
        strtab.extend(text.encode() + b"\0")
        return len(strtab) - len(text) - 1

    syms = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0),
            struct.pack("<IBBHQQ", name("_GLOBAL__sub_I_x"), (STB_LOCAL << 4) | STT_FUNC, 0, 2, 0, 16),
            struct.pack("<IBBHQQ", 0, (STB_LOCAL << 4) | STT_SECTION, 0, 1, 0, 0)]
    first_global = len(syms)
    index = {}
    for ref in dict.fromkeys([*startup_refs, *text_refs]):
        index[ref] = len(syms)
        syms.append(struct.pack("<IBBHQQ", name(ref), (STB_GLOBAL << 4) | STT_NOTYPE, 0, 0, 0, 0))

    def rela(targets: list[int]) -> bytes:
        return b"".join(struct.pack("<QQq", 8 * i, (t << 32) | 1, 0) for i, t in enumerate(targets))

    startup = [index[r] for r in startup_refs] + ([2] if startup_calls_text else [])
    sections = [  # name, type, flags, data, link, info, entsize
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, b"\x90" * 32, 0, 0, 0),
        (".text.startup", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, b"\x90" * 16, 0, 0, 0),
        (".init_array", SHT_INIT_ARRAY, SHF_ALLOC | SHF_WRITE, b"\0" * 8, 0, 0, 8),
        (".rela.init_array", SHT_RELA, 0, rela([1]), 7, 3, 24),
        (".rela.text.startup", SHT_RELA, 0, rela(startup), 7, 2, 24),
        (".rela.text", SHT_RELA, 0, rela([index[r] for r in text_refs]), 7, 1, 24),
        (".symtab", SHT_SYMTAB, 0, b"".join(syms), 8, first_global, 24),
        (".strtab", SHT_STRTAB, 0, bytes(strtab), 0, 0, 0),
    ]
    shstr = bytearray(b"\0")
    body, headers = bytearray(), [b"\0" * 64]
    for sec_name, kind, flags, data, link, info, entsize in sections:
        headers.append(struct.pack("<IIQQQQIIQQ", len(shstr), kind, flags, 0, 64 + len(body), len(data), link, info,
                                   8, entsize))
        shstr.extend(sec_name.encode() + b"\0")
        body += data
    headers.append(struct.pack("<IIQQQQIIQQ", len(shstr), SHT_STRTAB, 0, 0, 64 + len(body), len(shstr) + 10, 0, 0,
                               1, 0))
    shstr.extend(b".shstrtab\0")
    body += shstr
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 1, 62, 1, 0, 0, 64 + len(body), 0, 64, 0, 0, 64,
                         len(headers), len(headers) - 1)
    return header + bytes(body) + b"".join(headers)


IOSTREAM_ONLY = make_object(["_ZNSt8ios_base4InitC1Ev", "_ZNSt8ios_base4InitD1Ev", "__cxa_atexit", "__dso_handle"])
TORCH_LIBRARY_IMPL = make_object(["_ZNSt8ios_base4InitC1Ev", "_ZN5torch6detail16TorchLibraryInitC1Ev"])
VIA_LOCAL_FUNCTION = make_object(["__cxa_atexit"], ["_ZN3c1017RegisterOperatorsC1Ev"], startup_calls_text=True)
UNREACHED_TEXT = make_object(["__cxa_atexit"], ["_ZN3c1017RegisterOperatorsC1Ev"], startup_calls_text=False)

REGISTERS = make_elf([(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, 32),
                      (".init_array", SHT_INIT_ARRAY, SHF_ALLOC | SHF_WRITE, 8)])
OLD_STYLE = make_elf([(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, 16), (".ctors", SHT_PROGBITS, SHF_ALLOC, 8)])
PLAIN = make_elf([(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, 48), (".data", SHT_PROGBITS, SHF_ALLOC, 4)])
EMPTY_INIT = make_elf([(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, 8),
                       (".init_array", SHT_INIT_ARRAY, SHF_ALLOC | SHF_WRITE, 0)])


def _hdr(name: str, size: int) -> bytes:
    h = f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}".encode() + b"`\n"
    assert len(h) == 60
    return h


def gnu_archive(members: list[tuple[str, bytes]]) -> bytes:
    """GNU ar: a symbol table, the // long-name table, short names as 'name/', long ones as '/offset'."""
    table, names = b"", []
    for name, _ in members:
        if len(name) >= 16:
            names.append(f"/{len(table)}")
            table += name.encode() + b"/\n"
        else:
            names.append(name + "/")
    out = b"!<arch>\n"
    symtab = struct.pack(">I", 0)
    out += _hdr("/", len(symtab)) + symtab
    if table:
        out += _hdr("//", len(table)) + table + (b"\n" if len(table) % 2 else b"")
    for header_name, (_, data) in zip(names, members):
        out += _hdr(header_name, len(data)) + data + (b"\n" if len(data) % 2 else b"")
    return out


def test_gnu_archive_members_long_names_and_padding():
    odd = b"x" * 7
    data = gnu_archive([("Foo.cpp.o", REGISTERS), ("RegisterCPU_a_very_long_name.cpp.o", PLAIN),
                        ("odd.o", odd), ("Foo.cpp.o", OLD_STYLE)])
    members = read_archive(data)
    assert [m.name for m in members] == ["Foo.cpp.o", "RegisterCPU_a_very_long_name.cpp.o", "odd.o", "Foo.cpp.o"]
    assert [m.index for m in members] == [0, 1, 2, 3]
    assert data[members[2].offset:members[2].offset + members[2].size] == odd
    assert data[members[0].offset:members[0].offset + members[0].size] == REGISTERS
    assert data[members[3].offset:members[3].offset + members[3].size] == OLD_STYLE


def test_bsd_archive_names_follow_the_header():
    name = b"a_long_bsd_member_name.o"
    payload = name + PLAIN
    data = b"!<arch>\n" + _hdr(f"#1/{len(name)}", len(payload)) + payload
    (m,) = read_archive(data)
    assert m.name == name.decode() and data[m.offset:m.offset + m.size] == PLAIN


@pytest.mark.parametrize("blob, fragment", [(b"!<thin>\n", "thin archive"), (b"\x7fELF....", "not an ar archive"),
                                            (b"!<arch>\n" + b"x" * 60, "bad member header")])
def test_archive_errors(blob, fragment):
    with pytest.raises(ArchiveError, match=fragment):
        read_archive(blob)


def test_static_initializers_are_init_array_or_ctors_with_bytes():
    assert has_static_initializers(REGISTERS)
    assert has_static_initializers(OLD_STYLE)
    assert not has_static_initializers(PLAIN)
    assert not has_static_initializers(EMPTY_INIT)
    assert not has_static_initializers(b"not an object")


def test_only_initialisers_that_reach_outside_register():
    assert initializer_references(PLAIN) is None and not registers(PLAIN)
    assert initializer_references(IOSTREAM_ONLY) <= INERT_REFERENCES
    assert has_static_initializers(IOSTREAM_ONLY) and not registers(IOSTREAM_ONLY)   # <iostream> alone
    assert registers(TORCH_LIBRARY_IMPL)
    assert "_ZN3c1017RegisterOperatorsC1Ev" in initializer_references(VIA_LOCAL_FUNCTION)  # followed into .text
    assert registers(VIA_LOCAL_FUNCTION)
    assert not registers(UNREACHED_TEXT)        # .text's references are not reached from the initialiser
    assert registers(REGISTERS)                 # an initialiser without a symbol table: assume it registers


def test_registration_rules_on_an_archive(tmp_path):
    archive = tmp_path / "libtorch_cpu.a"
    archive.write_bytes(gnu_archive([("Operators_0.cpp.o", IOSTREAM_ONLY), ("RegisterCPU.cpp.o", TORCH_LIBRARY_IMPL),
                                     ("Plain.cpp.o", PLAIN)]))
    assert [m.name for m in registration_members(archive)] == ["RegisterCPU.cpp.o"]
    assert [m.name for m in registration_members(archive, "initializers")] == ["Operators_0.cpp.o",
                                                                               "RegisterCPU.cpp.o"]


def test_registration_members_and_extraction(tmp_path):
    archive = tmp_path / "libtorch_cpu.a"
    archive.write_bytes(gnu_archive([("Reg.cpp.o", REGISTERS), ("Unused.cpp.o", PLAIN), ("Reg.cpp.o", OLD_STYLE)]))
    members = registration_members(archive, "initializers")
    assert [(m.index, m.name) for m in members] == [(0, "Reg.cpp.o"), (2, "Reg.cpp.o")]
    written = extract_members(archive, members, tmp_path / "out")
    assert sorted(p.name for p in written) == ["00000_Reg.cpp.o", "00002_Reg.cpp.o"]
    assert set(written.values()) == {"libtorch_cpu.a(Reg.cpp.o)"}
    assert (tmp_path / "out/00002_Reg.cpp.o").read_bytes() == OLD_STYLE


def test_elf_sections_are_allocated_ones_largest_first(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(make_elf([(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, 300),
                               (".rodata", SHT_PROGBITS, SHF_ALLOC, 100),
                               (".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 1000),
                               (".comment", SHT_PROGBITS, 0, 50)], e_type=2))
    assert elf_sections(path) == (SectionSize(".bss", 1000, False), SectionSize(".text", 300),
                                  SectionSize(".rodata", 100))


# A GNU ld (bfd) map, trimmed from a real one (gcc 12, binutils 2.40): discarded sections first, long input
# section names wrapping onto the next line, *fill*, symbols, "size before relaxing", linker-made sections.
BFD_MAP = """\
Archive member included to satisfy reference by file (symbol)

libtorch_cpu.a(core.o)        /tmp/ccoaYXcu.o (call_kernel)

Discarded input sections

 .text          0x0000000000000000        0x0 libtorch_cpu.a(unused.o)
 .text.unused_function
                0x0000000000000000        0xb libtorch_cpu.a(unused.o)

Memory Configuration

Name             Origin             Length             Attributes
*default*        0x0000000000000000 0xffffffffffffffff

Linker script and memory map

LOAD /usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o
LOAD /tmp/ccoaYXcu.o
LOAD libtorch_cpu.a
                [!provide]                        PROVIDE (__executable_start = SEGMENT_START ("text-segment", 0x0))
                0x0000000000000318                . = (SEGMENT_START ("text-segment", 0x0) + SIZEOF_HEADERS)

.interp         0x0000000000000318       0x1c
 *(.interp)
 .interp        0x0000000000000318       0x1c /usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o

.dynsym         0x00000000000003c8       0xf0
 *(.dynsym)
 .dynsym        0x00000000000003c8       0xf0 /usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o

.text           0x0000000000001040      0x268
 *(.text.startup .text.startup.*)
 .text.startup.register_relu
                0x0000000000001070       0x13 /work/reg/libtorch_cpu_a/00001_reg.o
 *(.text .stub .text.* .gnu.linkonce.t.*)
 .text          0x0000000000001090       0x22 /usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o
                0x0000000000001090                _start
 .text.register_kernel
                0x00000000000011d0       0x29 /x/lib/libtorch_cpu.a(core.o)
                0x00000000000011d0                register_kernel
 *fill*         0x00000000000011f9        0x7 
 .text.call_kernel
                0x0000000000001200       0x9c /x/lib/libtorch_cpu.a(core.o)
                0x0000000000001200                call_kernel

.rodata         0x0000000000002000       0x3c
 .rodata        0x0000000000002000       0x1d /tmp/ccoaYXcu.o
 .rodata.call_kernel.str1.1
                0x000000000000201d       0x1a /x/lib/libtorch_cpu.a(core.o)

.eh_frame       0x0000000000002110       0xcc
 .eh_frame      0x0000000000002138       0x78 /x/lib/libtorch_cpu.a(core.o)
                                         0x90 (size before relaxing)
 .eh_frame      0x00000000000021d8        0x0 /x/lib/libtorch_cpu.a(unused.o)
                                         0x30 (size before relaxing)

.bss            0x0000000000004028       0x20
 .bss.count     0x000000000000402c        0x4 /x/lib/libtorch_cpu.a(core.o)

/DISCARD/
 *(.note.GNU-stack)

.comment        0x0000000000000000       0x1f
 .comment       0x0000000000000000       0x1f /tmp/ccoaYXcu.o
OUTPUT(wa elf64-x86-64)
"""

LLD_MAP = """\
             VMA              LMA     Size Align Out     In      Symbol
             2a8              2a8       1c     1 .interp
             2a8              2a8       1c     1         <internal>:(.interp)
             650              650       3c     1 .rodata
             650              650       1d     1         /tmp/ccZ4O1ef.o:(.rodata)
             6c8              6c8      124     8 .eh_frame
             738              738       14     1         libtorch_cpu.a(core.o):(.eh_frame+0x18)
            1930             1930       29    16 .text
            1930             1930       29    16         /x/libtorch_cpu.a(core.o):(.text.register_kernel)
            1930             1930        0     1                 register_kernel
            1960             1960       9c    16         libtorch_cpu.a(core.o):(.text.call_kernel)
            1a10             1a10       13    16         /work/reg/libtorch_cpu_a/00001_reg.o:(.text.startup.register_relu)
"""

ALIASES = {"/work/reg/libtorch_cpu_a/00001_reg.o": "libtorch_cpu.a(reg.o)"}


def test_bfd_map_attributes_kept_input_sections():
    sections = parse_map(BFD_MAP, ALIASES)
    by = {(s.output, s.name, s.file): s.size for s in sections}
    assert by[(".text", ".text.register_kernel", "libtorch_cpu.a(core.o)")] == 0x29
    assert by[(".text", ".text.call_kernel", "libtorch_cpu.a(core.o)")] == 0x9c
    assert by[(".text", ".text.startup.register_relu", "libtorch_cpu.a(reg.o)")] == 0x13
    assert by[(".dynsym", ".dynsym", LINKER)] == 0xf0             # made by the linker, listed under Scrt1.o
    assert by[(".eh_frame", ".eh_frame", "libtorch_cpu.a(core.o)")] == 0x78   # after relaxing
    assert not any("unused" in s.file for s in sections)          # discarded, or 0 bytes after relaxing
    assert not any(s.name.startswith("*") for s in sections)
    result = contributors(sections, [".text", ".rodata", ".eh_frame", ".dynsym", ".interp"])
    assert result[0] == Contributor("libtorch_cpu.a(core.o)", 0x29 + 0x9c + 0x1a + 0x78)
    assert {c.name: c.size for c in result}[PROGRAM] == 0x1d      # .comment is not kept


def test_lld_map():
    sections = parse_map(LLD_MAP, ALIASES)
    totals = {c.name: c.size for c in contributors(sections)}
    assert totals == {"libtorch_cpu.a(core.o)": 0x14 + 0x29 + 0x9c, "libtorch_cpu.a(reg.o)": 0x13,
                      PROGRAM: 0x1d, LINKER: 0x1c}
    assert {s.output for s in sections} == {".interp", ".rodata", ".eh_frame", ".text"}


def test_label():
    assert label("/a/b/libtorch_cpu.a(Foo.cpp.o)") == "libtorch_cpu.a(Foo.cpp.o)"
    assert label("/work/ccX.o") == "ccX.o"
    assert label("/tmp/ccAb12Cd.o") == PROGRAM                   # gcc's temporary object of a one-call build
    assert label("/w/00001_reg.o", {"/w/00001_reg.o": "libtorch_cpu.a(reg.o)"}) == "libtorch_cpu.a(reg.o)"


def _report(name: str, stripped: int, sections: dict[str, int], contrib: dict[str, int]) -> SizeReport:
    return SizeReport(name, Path("/i"), "whole-archive", (), Path("/b"), Path("/s"), None, stripped * 2, stripped,
                      tuple(SectionSize(k, v) for k, v in sections.items()),
                      tuple(Contributor(k, v) for k, v in contrib.items()))


def test_compare_side_by_side():
    mine = _report("registrations", 600, {".text": 400, ".rodata": 100}, {"a.o": 300, "b.o": 100})
    base = _report("whole-archive", 1000, {".text": 700, ".rodata": 100, ".data": 5},
                   {"a.o": 300, "big.o": 500, "b.o": 100})
    cmp = compare(mine, base, top=3)
    assert cmp.total.ratio == pytest.approx(0.6)
    rows = {r.name: (r.size, r.baseline) for r in cmp.sections}
    assert rows == {".text": (400, 700), ".rodata": (100, 100), ".data": (None, 5)}
    contrib = {r.name: (r.size, r.baseline) for r in cmp.contributors}
    assert contrib["a.o"] == (300, 300) and contrib["big.o"] == (None, 500)   # what the baseline had in its top
    alone = compare(mine)
    assert alone.baseline is None and alone.total.ratio is None and len(alone.contributors) == 2


# ------------------------------------------------------------------ the runner's link line per mode

def _static_install(tmp_path, *libs: str):
    from builder.models.runner import Install

    lib = tmp_path / "lib"
    lib.mkdir(parents=True)
    for name in libs:
        (lib / name).write_bytes(b"!<arch>\n")
    return Install(tmp_path, (), lib, "static", ())


def test_link_line_per_mode_and_system_copies(tmp_path):
    from builder.models.runner import link_args

    sysdir = tmp_path / "sys"
    sysdir.mkdir()
    (sysdir / "libXNNPACK.so").write_bytes(b"")
    install = _static_install(tmp_path / "i", "libtorch_cpu.a", "libtorch.a", "libc10.a", "libclog.a")
    env = {"LIBRARY_PATH": str(sysdir)}
    whole = link_args(install, ("-Wl,--gc-sections",), environ=env)
    lib = install.lib_dir
    assert whole[:4] == ("-Wl,--whole-archive", f"{lib}/libtorch_cpu.a", f"{lib}/libtorch.a", "-Wl,--no-whole-archive")
    group = whole[whole.index("-Wl,--start-group"):whole.index("-Wl,--end-group")]
    assert f"{lib}/libc10.a" in group and "-Wl,--gc-sections" in group
    # a --system-lib build: XNNPACK is not in lib/, the system's shared copy is linked (as needed)
    system = whole[whole.index("-Wl,--push-state,--as-needed"):whole.index("-Wl,--pop-state")]
    assert "-lXNNPACK" in system and "-lclog" not in system          # clog is in lib/
    regs = link_args(install, (), mode="registrations", objects=("@objs.rsp",), environ=env)
    assert regs[0] == "@objs.rsp" and "-Wl,--whole-archive" not in regs
    group = regs[regs.index("-Wl,--start-group"):regs.index("-Wl,--end-group")]
    assert f"{lib}/libtorch_cpu.a" in group and f"{lib}/libtorch.a" in group
    with pytest.raises(Exception, match="unknown link mode"):
        link_args(install, mode="everything")
