"""Where the bytes of a linked binary go: pure data, rendered by the CLI (`builder size`).

* ``elf_sections(path)``: allocated section sizes of a linked ELF (pyelftools);
* ``parse_map(text)``: input sections of a GNU ld (bfd/gold) or lld ``-Map`` file, attributed to
  ``libtorch_cpu.a(Foo.cpp.o)``;
* ``measure_install(...)``: link the verify runner against an install, strip a copy, and return a ``SizeReport``;
  ``compare(report, baseline)`` puts two side by side.
"""
from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import UsageError

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
                    inputs: Any = None, tolerance: Any = None,
                    environ: Mapping[str, str] = MappingProxyType({})) -> SizeReport:
    """Link the verify runner against ``install_dir`` (with a map file), strip a copy (keeping a .debug
    file) and measure it; with ``model``, also run the stripped copy on it and compare with torch."""
    import dataclasses

    from .errors import VerifyFailed
    from .levers import find_objcopy, strip_keep_debug
    from .models import runner as runner_mod
    from .models import verify
    from .models.platform import toolchain_for

    install = runner_mod.find_install(install_dir)
    toolchain = toolchain_for(install.root)
    runner = runner_mod.compile_runner(install, work_dir, link_mode=link_mode, extra_link_args=tuple(link_flags),
                                       map_file=True, toolchain=toolchain, environ=environ)
    objcopy = _objcopy_for(toolchain.cxx) if toolchain.cross else None
    stripped = strip_keep_debug(runner.path, objcopy=objcopy or find_objcopy(environ))
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


__all__ = ["SectionSize", "elf_sections", "InputSection", "parse_map", "Contributor", "contributors",
           "SizeReport", "Row", "Comparison", "compare", "measure_install", "human"]
