"""Size levers for real: tiny static libraries built with gcc, linked whole-archive vs registrations, measured.

libtorch_cpu.a here holds a registry (core), two objects that register a kernel from a static initialiser
(a C constructor and a C++ static object, as TORCH_LIBRARY_IMPL does), one object nobody references and one
whose only static initialiser is <iostream>'s (like ATen's Operators_*.cpp with GCC < 13). The registrations
link must keep both registering objects (the program still finds its kernels) and drop the other two, which
--whole-archive keeps; the initializers link keeps the <iostream> one too.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from builder import levers, proc, size
from builder.errors import UsageError
from builder.models import runner as runner_mod
from builder.models import verify

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(proc.which("g++") is None or proc.which("objcopy") is None,
                                 reason="needs g++ and objcopy")]

ROOT = Path(__file__).resolve().parents[2]

CORE = r"""
#include <stdio.h>
#include <string.h>
typedef int (*kernel_fn)(int);
static struct { const char *name; kernel_fn fn; } table[16];
static int count;
void register_kernel(const char *name, kernel_fn fn) { table[count].name = name; table[count].fn = fn; count++; }
int call_kernel(const char *name, int x) {
  for (int i = 0; i < count; i++) if (!strcmp(table[i].name, name)) return table[i].fn(x);
  fprintf(stderr, "kernel %s not registered\n", name);
  return -1000;
}
"""
REG_C = r"""
void register_kernel(const char *name, int (*fn)(int));
static int relu_kernel(int x) { return x > 0 ? x : 0; }
__attribute__((constructor)) static void register_relu(void) { register_kernel("relu", relu_kernel); }
"""
REG_CXX = r"""
extern "C" void register_kernel(const char *name, int (*fn)(int));
namespace {
int twice_kernel(int x) { return 2 * x; }
struct Registerer { Registerer(const char *n, int (*f)(int)) { register_kernel(n, f); } };
Registerer registerer("twice", twice_kernel);   // a static object, like TORCH_LIBRARY_IMPL's
}
"""
IOSTREAM_ONLY = r"""
#include <iostream>
int io_helper(int x) { std::cout << x << std::endl; return x; }
"""
UNUSED = r"""
int unused_function(int x) { return x * 42 + 7; }
char unused_table[65536] = {1};
"""
MAIN = r"""
#include <stdio.h>
extern "C" int call_kernel(const char *name, int x);
int main() { printf("relu(-3)=%d twice(5)=%d\n", call_kernel("relu", -3), call_kernel("twice", 5)); return 0; }
"""
EXPECTED = "relu(-3)=0 twice(5)=10"


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> runner_mod.Install:
    root = tmp_path_factory.mktemp("install")
    src, lib = root / "src", root / "lib"
    src.mkdir()
    lib.mkdir()
    objects = []
    for name, text, compiler in (("core.c", CORE, "gcc"), ("reg.c", REG_C, "gcc"),
                                 ("reg_cxx_with_a_long_member_name.cpp", REG_CXX, "g++"),
                                 ("unused.c", UNUSED, "gcc"), ("iostream_only.cpp", IOSTREAM_ONLY, "g++")):
        (src / name).write_text(text)
        obj = src / (name + ".o")
        proc.run([compiler, "-c", "-O2", "-fPIC", src / name, "-o", obj])
        objects.append(obj)
    # core first, like CMake's order; libtorch.a empty of registrations
    proc.run(["ar", "qc", lib / "libtorch_cpu.a", *objects])
    (src / "main.cpp").write_text(MAIN)
    return runner_mod.Install(root, (), lib, "static", ())


def _link(install: runner_mod.Install, out: Path, mode: str, extra: tuple[str, ...] = ()) -> Path:
    objects: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    if mode in ("registrations", "initializers"):
        rule = "registers" if mode == "registrations" else "initializers"
        rsp, aliases = runner_mod.registration_objects(install, out.parent / "work", rule)
        objects = (f"@{rsp}",)
    args = runner_mod.link_args(install, extra, mode=mode, objects=objects)
    proc.run(["g++", install.root / "src/main.cpp", "-o", out, *args, f"-Wl,-Map={out}.map"])
    return out


def _symbols(path: Path) -> set[str]:
    with open(path, "rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        return {s.name for s in table.iter_symbols()} if table else set()


def test_registration_members_are_the_initialiser_objects(install):
    archive = install.lib_dir / "libtorch_cpu.a"
    assert [m.name for m in runner_mod.registration_members(archive)] == ["reg.c.o", "reg_cxx_with_a_long_member_name.cpp.o"]
    assert [m.name for m in runner_mod.registration_members(archive, "initializers")] == [
        "reg.c.o", "reg_cxx_with_a_long_member_name.cpp.o", "iostream_only.cpp.o"]


def test_registrations_link_keeps_registrations_and_drops_the_rest(install, tmp_path):
    whole = _link(install, tmp_path / "whole", "whole-archive")
    regs = _link(install, tmp_path / "regs", "registrations")
    inits = _link(install, tmp_path / "inits", "initializers")
    for exe in (whole, regs, inits):
        assert proc.run([exe]).stdout.strip() == EXPECTED
    assert {"unused_function", "unused_table", "_Z9io_helperi"} <= _symbols(whole)
    assert not {"unused_function", "unused_table", "_Z9io_helperi"} & _symbols(regs)
    assert "_Z9io_helperi" in _symbols(inits) and "unused_function" not in _symbols(inits)
    assert {"register_kernel", "call_kernel"} <= _symbols(regs)
    assert regs.stat().st_size < whole.stat().st_size - 60000          # the 64 KB table is gone
    # a plain link (no force-loading) loses the registrations: the kernels are not found
    plain = tmp_path / "plain"
    proc.run(["g++", install.root / "src/main.cpp", "-o", plain, str(install.lib_dir / "libtorch_cpu.a")])
    assert "-1000" in proc.run([plain]).stdout


def test_map_attributes_sizes_to_archive_members(install, tmp_path):
    regs = _link(install, tmp_path / "regs", "registrations", ("-Wl,--gc-sections",))
    _, aliases = runner_mod.registration_objects(install, tmp_path / "work")
    kept = [s.name for s in size.elf_sections(regs) if s.file_bytes]
    names = {c.name for c in size.contributors(size.parse_map(Path(f"{regs}.map").read_text(), aliases), kept)}
    assert {"libtorch_cpu.a(core.c.o)", "libtorch_cpu.a(reg.c.o)",
            "libtorch_cpu.a(reg_cxx_with_a_long_member_name.cpp.o)"} <= names
    assert not any("unused" in n for n in names)
    whole = _link(install, tmp_path / "whole", "whole-archive")
    kept = [s.name for s in size.elf_sections(whole) if s.file_bytes]
    totals = {c.name: c.size for c in size.contributors(size.parse_map(Path(f"{whole}.map").read_text()), kept)}
    assert totals["libtorch_cpu.a(unused.c.o)"] >= 65536


def test_registration_objects_are_cached(install, tmp_path):
    rsp, aliases = runner_mod.registration_objects(install, tmp_path)
    stamp = rsp.stat().st_mtime_ns
    again, same = runner_mod.registration_objects(install, tmp_path)
    assert again == rsp and same == aliases and rsp.stat().st_mtime_ns == stamp
    assert all(Path(p).is_file() for p in aliases)


def test_strip_keeps_a_debug_file(install, tmp_path):
    exe = _link(install, tmp_path / "regs", "registrations")
    stripped = levers.strip_keep_debug(exe)
    assert stripped.binary.stat().st_size < exe.stat().st_size
    assert proc.run([stripped.binary]).stdout.strip() == EXPECTED
    with open(stripped.binary, "rb") as handle:
        elf = ELFFile(handle)
        assert elf.get_section_by_name(".symtab") is None
        assert elf.get_section_by_name(".gnu_debuglink") is not None
    assert "register_kernel" in _symbols(stripped.debug)


def test_measure_the_torch_wheel_runner(tmp_path):
    """measure_install end to end on the only install always here: the torch wheel (shared libraries)."""
    torch = pytest.importorskip("torch")
    folder = Path(torch.__file__).parent
    report = size.measure_install(folder, tmp_path, label_="wheel")
    assert report.stripped_size < report.binary_size and report.debug_file.is_file()
    assert any(s.name == ".text" for s in report.sections)
    assert report.contributors[0].name == size.PROGRAM   # runner.cpp, compiled and linked in one call
    with pytest.raises(UsageError, match="needs a static install"):
        size.measure_install(folder, tmp_path, link_mode="registrations")


@pytest.mark.real_pytorch
def test_real_install_registrations_vs_whole_archive(tmp_path):
    """On $BUILDER_REAL_INSTALL (a v1.13.1 host build): both links run the MobileNetV2-style model."""
    if not os.environ.get(runner_mod.INSTALL_ENV):
        pytest.skip(f"no real PyTorch host install: set {runner_mod.INSTALL_ENV}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import mobilenet_model
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    summary = mobilenet_model.write_all(tmp_path / "mnv2", size=96, width=0.5, num_classes=10)
    inputs = verify.load_inputs(Path(str(summary["inputs"])))
    install = Path(os.environ[runner_mod.INSTALL_ENV])
    work = tmp_path / "work"
    tol = verify.Tolerance(rtol=1e-3, atol=1e-4)
    whole = size.measure_install(install, work, link_flags=("-Wl,--gc-sections",),
                                 model=Path(str(summary["ptl"])), inputs=inputs, tolerance=tol)
    regs = size.measure_install(install, work, link_mode="registrations", link_flags=("-Wl,--gc-sections",),
                                model=Path(str(summary["ptl"])), inputs=inputs, tolerance=tol)
    assert whole.verify_ok and regs.verify_ok, (whole.verified, regs.verified)
    assert regs.stripped_size <= whole.stripped_size
    assert regs.forced_objects > 0
