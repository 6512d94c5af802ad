"""The C++ verify runner, compiled against any build's install: what `builder verify`, `builder size` and a build's
verify step share.

The runner (``runner/runner.cpp``, package data) is compiled and linked in one compiler call through ``proc.run``
(no CMake/Ninja: one source file, and the link line is the part that matters), with the build's own compiler
(``platform.toolchain_for``: an Android build's cross compiler):

* static install (``lib/libtorch_cpu.a``, what a mobile build installs), link mode ``whole-archive`` (the
  default): ``-Wl,--whole-archive libtorch_cpu.a libtorch.a -Wl,--no-whole-archive`` (operator registrations are
  static initialisers nobody references) and every other ``lib/*.a`` in ``-Wl,--start-group ... -Wl,--end-group``,
  then the system copies of XNNPACK/pthreadpool/cpuinfo/clog the install lacks (``--system-lib`` builds;
  ``--as-needed``), then ``-lpthread -ldl -lm``;
* static install, link mode ``registrations`` (the force_load_registrations size lever): only the members of
  libtorch_cpu.a/libtorch.a whose static initialisers (``.init_array``/``.ctors``) reach something outside the
  object other than <iostream>'s ios_base::Init (``registers``; read with builder.ar, no ``ar`` process) are
  extracted into ``work_dir`` and linked as objects (through a response file); the archives themselves go into the
  group, so the linker takes only what those objects and the runner reference. ``initializers`` force-loads every
  member with a non-empty ``.init_array``/``.ctors`` instead;
* shared install (``lib/libtorch_cpu.so``, e.g. a libtorch zip or the torch wheel's folder):
  ``-ltorch -ltorch_cpu -lc10`` with an rpath.

Compiled runners are cached in ``work_dir`` under a hash of the source, the command and the libraries.
"""
from __future__ import annotations

import io
import json
import logging
import mmap
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from builder import atomic, proc
from builder.ar import ArMember, extract_members, member_bytes, read_archive
from builder.errors import BuildFailed, ToolchainError, UsageError
from builder.hashing import sha256_of
from builder.models.platform import HOST, Launch, Toolchain, launch_for

log = logging.getLogger("builder")

RUNNER_SOURCE = Path(__file__).parent / "runner" / "runner.cpp"
INSTALL_ENV = "BUILDER_REAL_INSTALL"   # the CLI's default install (`builder verify` without --build; tests)
_WHOLE_ARCHIVE = ("libtorch_cpu.a", "libtorch.a")
# Libraries a static install links against that a --system-lib build leaves out of lib/ (Debian ships them
# as shared libraries). Order: users before what they use.
_SYSTEM_DEPS = ("XNNPACK", "pthreadpool", "cpuinfo", "clog")
# registrations: force-load the members whose static initialisers register something (``registers``);
# initializers: every member with a static initialiser at all (measured: barely smaller than whole-archive,
# since GCC < 13 gives every file including <iostream> one).
LINK_MODES = ("whole-archive", "registrations", "initializers")
_RULES = {"registrations": "registers", "initializers": "initializers"}
INIT_SECTIONS = (".init_array", ".ctors")


@dataclass(frozen=True)
class Install:
    """A PyTorch install tree (include/ + lib/)."""

    root: Path
    include_dirs: tuple[Path, ...]
    lib_dir: Path
    linkage: Literal["static", "shared"]
    cxx_flags: tuple[str, ...]


@dataclass(frozen=True)
class Runner:
    path: Path
    install: Install
    command: tuple[str, ...]
    cached: bool
    link_mode: str = "whole-archive"
    map_path: Path | None = None                     # the linker map (compile_runner(map_file=True))
    aliases: Mapping[str, str] = field(default_factory=dict)   # extracted object -> "libtorch_cpu.a(member)"
    launch: Launch = field(default_factory=Launch)             # how it starts here (native, qemu-user, adb)


def find_install(root: Path | None) -> Install:
    """The PyTorch install at ``root``; UsageError when there is none or it is not one."""
    if root is None:
        raise UsageError(f"no PyTorch install to verify against: pass --build DIR or set {INSTALL_ENV}")
    include = root / "include"
    if not (include / "torch/csrc/jit/mobile/import.h").is_file():
        raise UsageError(f"{root} is not a PyTorch install with the lite interpreter: "
                         f"{include}/torch/csrc/jit/mobile/import.h is missing")
    lib_dir = next((d for d in (root / "lib", root / "lib64") if d.is_dir()), root / "lib")
    if (lib_dir / "libtorch_cpu.a").is_file():
        linkage: Literal["static", "shared"] = "static"
    elif (lib_dir / "libtorch_cpu.so").is_file():
        linkage = "shared"
    else:
        raise UsageError(f"{root}: no libtorch_cpu.a or libtorch_cpu.so in {lib_dir}")
    includes = [include] + [p for p in (include / "torch/csrc/api/include",) if p.is_dir()]
    return Install(root, tuple(includes), lib_dir, linkage, _torch_cxx_flags(root))


def _torch_cxx_flags(root: Path) -> tuple[str, ...]:
    """TORCH_CXX_FLAGS from share/cmake/Torch/TorchConfig.cmake (e.g. the C++11 ABI define)."""
    config = root / "share/cmake/Torch/TorchConfig.cmake"
    if not config.is_file():
        return ()
    match = re.search(r'set\(TORCH_CXX_FLAGS "([^"]*)"\)', config.read_text(encoding="utf-8"))
    return tuple(match.group(1).split()) if match else ()


def link_args(install: Install, extra: Sequence[str] = (), *, mode: str = "whole-archive",
              objects: Sequence[str] = (), environ: Mapping[str, str] = MappingProxyType({})) -> tuple[str, ...]:
    """The link line after the runner's source. ``objects`` (registrations mode): force-loaded objects or
    ``@response-file``s, linked before the archives."""
    if mode not in LINK_MODES:
        raise UsageError(f"unknown link mode '{mode}'", hint=f"choose from {', '.join(LINK_MODES)}")
    lib = install.lib_dir
    if install.linkage == "shared":
        if mode != "whole-archive":
            raise UsageError(f"--link {mode} needs a static install (lib/libtorch_cpu.a); {install.root} is shared")
        names = [n for n in ("torch", "torch_cpu", "c10") if (lib / f"lib{n}.so").is_file()]
        return (f"-L{lib}", f"-Wl,-rpath,{lib}", "-Wl,--no-as-needed",
                *(f"-l{n}" for n in names), "-Wl,--as-needed", *extra, "-lpthread", "-ldl", "-lm")
    whole = [str(lib / n) for n in _WHOLE_ARCHIVE if (lib / n).is_file()]
    rest = [str(p) for p in sorted(lib.glob("*.a")) if p.name not in _WHOLE_ARCHIVE]
    system = [f"-l{n}" for n in _SYSTEM_DEPS
              if not (lib / f"lib{n}.a").is_file() and _system_library(n, environ)]
    tail = (("-Wl,--push-state,--as-needed", *system, "-Wl,--pop-state") if system else ()) + \
        ("-lpthread", "-ldl", "-lm")
    if mode in _RULES:
        return (*objects, "-Wl,--start-group", *whole, *rest, *extra, "-Wl,--end-group", *tail)
    return ("-Wl,--whole-archive", *whole, "-Wl,--no-whole-archive",
            "-Wl,--start-group", *rest, *extra, "-Wl,--end-group", *tail)


def _system_library(name: str, environ: Mapping[str, str]) -> Path | None:
    """lib<name>.so / .a in the library search path the compiler driver uses by default (Linux)."""
    import sysconfig

    env = environ
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [Path(d) for d in env.get("LIBRARY_PATH", "").split(os.pathsep) if d]
    dirs += [Path("/usr/local/lib"), *(Path(p) / multiarch for p in ("/usr/lib", "/lib") if multiarch),
             Path("/usr/lib64"), Path("/usr/lib"), Path("/lib64"), Path("/lib")]
    for d in dirs:
        for suffix in (".so", ".a"):
            if (d / f"lib{name}{suffix}").exists():
                return d / f"lib{name}{suffix}"
    return None


def registration_objects(install: Install, work_dir: Path, rule: str = "registers") -> tuple[Path, dict[str, str]]:
    """Extract the members of libtorch_cpu.a / libtorch.a that register something (``rule``, see
    ``registration_members``) into ``work_dir``;
    returns a response file listing them (for ``@file`` on the link line) and {object path: archive(member)}.
    Cached under a key of the archives' paths, sizes and times."""
    archives = [install.lib_dir / n for n in _WHOLE_ARCHIVE if (install.lib_dir / n).is_file()]
    stats = [(a, a.stat()) for a in archives]
    digest = sha256_of([rule, *(f"{a.resolve()}:{st.st_size}:{st.st_mtime_ns}" for a, st in stats)])
    folder = work_dir / f"registrations-{digest[:16]}"
    rsp, index = folder / "objects.rsp", folder / "objects.json"
    if rsp.is_file() and index.is_file():
        try:
            cached = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):      # a cut or unreadable index: extract again
            cached = None
        if isinstance(cached, dict) and all(Path(p).is_file() for p in cached):
            return rsp, cached
    aliases: dict[str, str] = {}
    for archive in archives:
        members = registration_members(archive, rule)
        log.info("%s: %d member(s) to force-load (%s)", archive.name, len(members), rule)
        written = extract_members(archive, members, folder / archive.name.replace(".", "_"))
        aliases.update({str(p): name for p, name in written.items()})
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(index, json.dumps(aliases, indent=0))
    atomic.write_text(rsp, "".join(f'"{p}"\n' for p in aliases))  # last: its presence means complete
    return rsp, aliases


def compile_runner(install: Install, work_dir: Path, *, cxx: str | None = None,
                   extra_link_args: Sequence[str] = (), link_mode: str = "whole-archive",
                   map_file: bool = False, dry_run: bool = False, toolchain: Toolchain = HOST,
                   environ: Mapping[str, str] = MappingProxyType({}), source: Path = RUNNER_SOURCE,
                   defines: Sequence[str] = (), std: str = "c++17", resolve_launch: bool = True) -> Runner:
    """Compile (or reuse) the runner for ``install``. ``link_mode``: ``whole-archive`` (default) or
    ``registrations`` (see the module docstring); ``map_file``: also write a linker map (``Runner.map_path``);
    ``toolchain``: the build's own compiler (an Android build: see builder.models.platform); ``environ``: the
    machine's CXX (the host compiler) and LIBRARY_PATH (where system copies of libraries are). ``source``,
    ``defines``, ``std``: another one-file program linked the same way (``builder bench`` compiles the release's
    ``binaries/speed_benchmark_torch.cc`` so), its extra ``-D`` flags and C++ standard. ``resolve_launch``
    False: leave ``Runner.launch`` unset (the caller decides how it starts; ``runner_launch`` raises DeviceNeeded
    for an Android program when no adb is here)."""
    compiler = cxx or toolchain.cxx or environ.get("CXX") or proc.which("c++") or proc.which("g++") \
        or proc.which("clang++")
    if compiler is None:
        raise ToolchainError("no C++ compiler found to build the verify runner", hint="install g++ or set CXX")
    flags = [f"-std={std}", "-O2", *toolchain.flags, *install.cxx_flags, *defines,
             *(f"-I{d}" for d in install.include_dirs)]
    what = "verify runner" if source == RUNNER_SOURCE else source.name
    objects: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    if link_mode in _RULES and install.linkage == "static":
        rsp, aliases = registration_objects(install, work_dir, _RULES[link_mode])
        objects = (f"@{rsp}",)
    link = link_args(install, extra_link_args, mode=link_mode, objects=objects, environ=environ)
    key = _runner_key(compiler, [*flags, *map(str, toolchain.sources)], [*link, *(["map"] if map_file else [])],
                      install, source)
    exe = work_dir / f"{'runner' if source == RUNNER_SOURCE else source.stem}-{key}"
    map_path = exe.with_name(exe.name + ".map") if map_file else None
    map_args = (f"-Wl,-Map={map_path}",) if map_path else ()
    sources = (str(source), *map(str, toolchain.sources))
    argv = (compiler, *flags, *sources, "-o", str(exe), *link, *map_args)
    if exe.is_file() and (map_path is None or map_path.is_file()):
        log.info("reusing %s %s", what, exe)
        return Runner(exe, install, argv, True, link_mode, map_path, aliases,
                      runner_launch(exe) if resolve_launch else Launch())
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = atomic.sibling_temp(exe)
    build_argv = (compiler, *flags, *sources, "-o", str(tmp), *link, *map_args)
    log.info("compiling %s against %s (%s)", what, install.root, install.linkage)
    result = proc.run(build_argv, dry_run=dry_run, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        errors = tuple(line for line in result.stderr.splitlines() if "error" in line)[:5]
        raise BuildFailed(f"compiling the {what} against {install.root} failed",
                          step=f"compile {what}", command=proc.quote(build_argv),
                          first_errors=errors or tuple(result.stderr.splitlines()[-5:]))
    if dry_run:
        return Runner(exe, install, argv, False, link_mode, map_path, aliases)
    atomic.commit(tmp, exe)
    return Runner(exe, install, argv, False, link_mode, map_path, aliases,
                  runner_launch(exe) if resolve_launch else Launch())


def runner_launch(exe: Path) -> Launch:
    """How this machine starts ``exe``: natively, under qemu-user, or on a device over adb."""
    import platform

    tools = ("qemu-aarch64-static", "qemu-arm-static", "qemu-i386-static", "qemu-x86_64-static", "adb")
    sysroots = {f"/usr/{t}": Path(f"/usr/{t}").is_dir()
                for t in ("aarch64-linux-gnu", "arm-linux-gnueabihf", "i686-linux-gnu", "x86_64-linux-gnu")}
    return launch_for(exe, host_machine=platform.machine(), which={t: proc.which(t) for t in tools},
                      sysroot_exists=sysroots)


def _runner_key(compiler: str, flags: Sequence[str], link: Sequence[str], install: Install,
                source: Path = RUNNER_SOURCE) -> str:
    libs = sorted(install.lib_dir.glob("libtorch*")) + sorted(install.lib_dir.glob("libc10*"))
    stats = [(lib, lib.stat()) for lib in libs]
    return sha256_of([source.read_bytes(), "\0".join([compiler, *flags, *link]),
                      *(f"{lib.name}:{st.st_size}:{st.st_mtime_ns}" for lib, st in stats)])[:16]


# --- which archive members register operators ---------------------------------------------------


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
    from elftools.elf.sections import SymbolTableSection

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
        if not isinstance(symtab, SymbolTableSection):
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
