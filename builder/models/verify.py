"""Prove a build runs a model: compile our C++ runner against the build's install, run it, compare.

The runner (``runner/runner.cpp``, package data) is compiled and linked in one compiler call through
``proc.run`` (no CMake/Ninja: one source file, and the link line is the part that matters):

* static install (``lib/libtorch_cpu.a``, what a mobile host build installs), link mode ``whole-archive``
  (the default): ``-Wl,--whole-archive libtorch_cpu.a libtorch.a -Wl,--no-whole-archive`` (operator
  registrations are static initialisers nobody references) and every other ``lib/*.a`` in
  ``-Wl,--start-group ... -Wl,--end-group``, then the system copies of XNNPACK/pthreadpool/cpuinfo/clog the
  install lacks (``--system-lib`` builds; ``--as-needed``), then ``-lpthread -ldl -lm``;
* static install, link mode ``registrations`` (the force_load_registrations size lever): only the members of
  libtorch_cpu.a/libtorch.a whose static initialisers (``.init_array``/``.ctors``) reach something outside
  the object other than <iostream>'s ios_base::Init (builder.size.registers; no ``ar`` process) are extracted
  into ``work_dir`` and linked as objects (through a response file); the archives themselves go into the
  group, so the linker takes only what those objects and the runner reference. ``initializers`` force-loads
  every member with a non-empty ``.init_array``/``.ctors`` instead;
* shared install (``lib/libtorch_cpu.so``, e.g. a libtorch zip or the torch wheel's folder):
  ``-ltorch -ltorch_cpu -lc10`` with an rpath.

Compiled runners are cached in ``work_dir`` under a hash of the source, the command and the libraries.
Tensors travel in "builder tensor files" (text header + raw little-endian data; see runner.cpp).
The reference is the installed torch running the same .ptl through ``_load_for_lite_interpreter``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from builder import atomic, proc
from builder.errors import BuildFailed, ToolchainError, UsageError, VerifyFailed
from builder.models import _torch
from builder.models.platform import HOST, Launch, Toolchain, launch_for

log = logging.getLogger("builder")

INSTALL_ENV = "BUILDER_REAL_INSTALL"
RUNNER_SOURCE = Path(__file__).parent / "runner" / "runner.cpp"
MAGIC = b"BUILDER-TENSORS 1"
_DTYPES = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64",
           "u8": "uint8", "i8": "int8", "bool": "bool"}
_WHOLE_ARCHIVE = ("libtorch_cpu.a", "libtorch.a")
# Libraries a static install links against that a --system-lib build leaves out of lib/ (Debian ships them
# as shared libraries). Order: users before what they use.
_SYSTEM_DEPS = ("XNNPACK", "pthreadpool", "cpuinfo", "clog")
# registrations: force-load the members whose static initialisers register something (builder.size.registers);
# initializers: every member with a static initialiser at all (measured: barely smaller than whole-archive,
# since GCC < 13 gives every file including <iostream> one).
LINK_MODES = ("whole-archive", "registrations", "initializers")
_RULES = {"registrations": "registers", "initializers": "initializers"}
_MISSING_OP_PATTERNS = (
    re.compile(r"Following ops cannot be found: \[([^\]]*)\]"),
    re.compile(r"Could not find any similar ops to ([\w:.]+)"),
    re.compile(r"Unknown builtin op: ([\w:.]+)"),
    re.compile(r"Could not run '([\w:.]+)' with arguments from the '\w+' backend"),
    re.compile(r"Could not find schema for ([\w:.]+)"),
)


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-4
    atol: float = 1e-5


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


@dataclass(frozen=True)
class VerifyResult:
    model: Path
    runner: Path
    outputs: tuple[tuple[int, ...], ...]   # output shapes
    max_abs_error: float
    max_rel_error: float
    forward_ms: float | None
    torch_version: str


# --- the install and the runner ---------------------------------------------------------------


def find_install(explicit: Path | None = None) -> Install:
    """The install given, else $BUILDER_REAL_INSTALL; UsageError when neither is usable."""
    root = explicit if explicit is not None else (Path(os.environ[INSTALL_ENV])
                                                   if os.environ.get(INSTALL_ENV) else None)
    if root is None:
        raise UsageError(f"no PyTorch install to verify against: pass --install DIR or set {INSTALL_ENV}")
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
              objects: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
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


def _system_library(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """lib<name>.so / .a in the library search path the compiler driver uses by default (Linux)."""
    import sysconfig

    env = os.environ if environ is None else environ
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
    builder.size.registration_members) into ``work_dir``;
    returns a response file listing them (for ``@file`` on the link line) and {object path: archive(member)}.
    Cached under a key of the archives' paths, sizes and times."""
    import json

    from builder.size import extract_members, registration_members

    archives = [install.lib_dir / n for n in _WHOLE_ARCHIVE if (install.lib_dir / n).is_file()]
    digest = hashlib.sha256(rule.encode())
    for a in archives:
        st = a.stat()
        digest.update(f"{a.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    folder = work_dir / f"registrations-{digest.hexdigest()[:16]}"
    rsp, index = folder / "objects.rsp", folder / "objects.json"
    if rsp.is_file() and index.is_file():
        aliases = json.loads(index.read_text(encoding="utf-8"))
        if all(Path(p).is_file() for p in aliases):
            return rsp, aliases
    aliases = {}
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
                   map_file: bool = False, dry_run: bool = False, toolchain: Toolchain = HOST) -> Runner:
    """Compile (or reuse) the runner for ``install``. ``link_mode``: ``whole-archive`` (default) or
    ``registrations`` (see the module docstring); ``map_file``: also write a linker map (``Runner.map_path``);
    ``toolchain``: the build's own compiler (an Android build: see builder.models.platform)."""
    compiler = cxx or toolchain.cxx or os.environ.get("CXX") or proc.which("c++") or proc.which("g++") \
        or proc.which("clang++")
    if compiler is None:
        raise ToolchainError("no C++ compiler found to build the verify runner", hint="install g++ or set CXX")
    flags = ["-std=c++17", "-O2", *toolchain.flags, *install.cxx_flags, *(f"-I{d}" for d in install.include_dirs)]
    objects: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    if link_mode in _RULES and install.linkage == "static":
        rsp, aliases = registration_objects(install, work_dir, _RULES[link_mode])
        objects = (f"@{rsp}",)
    link = link_args(install, extra_link_args, mode=link_mode, objects=objects)
    key = _runner_key(compiler, flags, [*link, *(["map"] if map_file else [])], install)
    exe = work_dir / f"runner-{key}"
    map_path = exe.with_name(exe.name + ".map") if map_file else None
    map_args = (f"-Wl,-Map={map_path}",) if map_path else ()
    argv = (compiler, *flags, str(RUNNER_SOURCE), "-o", str(exe), *link, *map_args)
    if exe.is_file() and (map_path is None or map_path.is_file()):
        log.info("reusing verify runner %s", exe)
        return Runner(exe, install, argv, True, link_mode, map_path, aliases, runner_launch(exe))
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = atomic.sibling_temp(exe)
    build_argv = (compiler, *flags, str(RUNNER_SOURCE), "-o", str(tmp), *link, *map_args)
    log.info("compiling verify runner against %s (%s)", install.root, install.linkage)
    result = proc.run(build_argv, dry_run=dry_run, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        errors = tuple(line for line in result.stderr.splitlines() if "error" in line)[:5]
        raise BuildFailed(f"compiling the verify runner against {install.root} failed",
                          step="compile verify runner", command=proc.quote(build_argv),
                          first_errors=errors or tuple(result.stderr.splitlines()[-5:]))
    if dry_run:
        return Runner(exe, install, argv, False, link_mode, map_path, aliases)
    atomic.commit(tmp, exe)
    return Runner(exe, install, argv, False, link_mode, map_path, aliases, runner_launch(exe))


def runner_launch(exe: Path) -> Launch:
    """How this machine starts ``exe``: natively, under qemu-user, or on a device over adb."""
    import platform

    tools = ("qemu-aarch64-static", "qemu-arm-static", "qemu-i386-static", "qemu-x86_64-static", "adb")
    sysroots = {f"/usr/{t}": Path(f"/usr/{t}").is_dir()
                for t in ("aarch64-linux-gnu", "arm-linux-gnueabihf", "i686-linux-gnu", "x86_64-linux-gnu")}
    return launch_for(exe, host_machine=platform.machine(), which={t: proc.which(t) for t in tools},
                      sysroot_exists=sysroots)


def _runner_key(compiler: str, flags: Sequence[str], link: Sequence[str], install: Install) -> str:
    digest = hashlib.sha256(RUNNER_SOURCE.read_bytes())
    digest.update("\0".join([compiler, *flags, *link]).encode())
    for lib in sorted(install.lib_dir.glob("libtorch*")) + sorted(install.lib_dir.glob("libc10*")):
        stat = lib.stat()
        digest.update(f"{lib.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# --- tensors ----------------------------------------------------------------------------------


def parse_shapes(text: str) -> tuple[tuple[int, ...], ...]:
    """'1x3x224x224,1x10' -> ((1, 3, 224, 224), (1, 10))."""
    shapes = []
    for part in text.split(","):
        try:
            dims = tuple(int(d) for d in part.strip().lower().split("x"))
        except ValueError:
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10") from None
        if not dims or any(d < 0 for d in dims):
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10")
        shapes.append(dims)
    return tuple(shapes)


def make_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> tuple[Any, ...]:
    """Float32 standard-normal inputs of the given shapes, reproducible from ``seed``."""
    t = _torch.torch()
    generator = t.Generator().manual_seed(seed)
    return tuple(t.randn(*shape, generator=generator) for shape in shapes)


def model_inputs(path: Path | None, shapes: str, seed: int = 0) -> tuple[Any, ...]:
    """The inputs the CLI's --inputs names, else random ones of --shapes (reproducible from ``seed``)."""
    return load_inputs(path) if path is not None else make_inputs(parse_shapes(shapes), seed)


def load_inputs(path: Path) -> tuple[Any, ...]:
    """Inputs from a builder tensor file or a torch.save'd tensor / list / tuple of tensors."""
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) == MAGIC:
            return read_tensors(path)
    t = _torch.torch()
    try:
        data = t.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"cannot read inputs from {path}: {_torch.first_line(exc)}") from None
    items = (data,) if isinstance(data, t.Tensor) else data
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, t.Tensor) for x in items):
        raise UsageError(f"{path} must hold a tensor or a list/tuple of tensors")
    return tuple(items)


def write_tensors(path: Path, tensors: Sequence[Any]) -> None:
    if sys.byteorder != "little":
        raise UsageError("builder tensor files are little-endian; this host is not")
    tags = {v: k for k, v in _DTYPES.items()}
    with open(path, "wb") as out:
        out.write(MAGIC + b"\n" + f"{len(tensors)}\n".encode())
        for tensor in tensors:
            tag = tags.get(str(tensor.dtype).replace("torch.", ""))
            if tag is None:
                raise UsageError(f"input dtype {tensor.dtype} not supported (use {', '.join(_DTYPES.values())})")
            data = tensor.detach().contiguous().cpu()
            out.write(f"{tag} {data.dim()} {' '.join(str(s) for s in data.shape)}".rstrip().encode() + b"\n")
            out.write(bytes(data.clone().untyped_storage()))  # host order; hosts are little-endian


def read_tensors(path: Path) -> tuple[Any, ...]:
    t = _torch.torch()
    blob = path.read_bytes()
    lines, pos = _header_line(blob, 0)
    if lines != MAGIC.decode():
        raise UsageError(f"{path}: not a builder tensor file")
    count_text, pos = _header_line(blob, pos)
    tensors = []
    for _ in range(int(count_text)):
        header, pos = _header_line(blob, pos)
        tag, _ndim, *sizes = header.split()
        dtype = getattr(t, _DTYPES[tag])
        shape = tuple(int(s) for s in sizes)
        size = t.empty(0, dtype=dtype).element_size() * _numel(shape)
        chunk = bytearray(blob[pos:pos + size])
        if len(chunk) != size:
            raise UsageError(f"{path}: truncated tensor data")
        pos += size
        tensors.append(t.frombuffer(chunk, dtype=dtype).reshape(shape) if size else t.empty(shape, dtype=dtype))
    return tuple(tensors)


def _header_line(blob: bytes, pos: int) -> tuple[str, int]:
    end = blob.find(b"\n", pos)
    if end < 0:
        raise UsageError("truncated builder tensor file")
    return blob[pos:end].decode("ascii"), end + 1


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- running and comparing --------------------------------------------------------------------


def missing_ops(text: str) -> tuple[str, ...]:
    """Operator names libtorch reports missing in a runner's error text."""
    found: list[str] = []
    for pattern in _MISSING_OP_PATTERNS:
        for match in pattern.finditer(text):
            for name in match.group(1).split(","):
                name = name.strip().rstrip(".")
                if name and name not in found:
                    found.append(name)
    return tuple(found)


def run_runner(runner: Runner, model: Path, inputs: Sequence[Any], work_dir: Path,
               timeout: float = 600, trace: Path | None = None) -> tuple[tuple[Any, ...], float | None]:
    """Run the compiled runner; return its outputs and forward time (ms). With ``trace``, the runner also
    writes there the dispatcher operators the model called (load and forward)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    in_path, out_path = work_dir / f"{model.stem}.inputs.bt", work_dir / f"{model.stem}.outputs.bt"
    write_tensors(in_path, inputs)
    out_path.unlink(missing_ok=True)
    if runner.launch.needs_device:
        return _run_on_device(runner, model, in_path, out_path, timeout, trace)
    argv = [*runner.launch.prefix, runner.path, model, in_path, out_path, *([trace] if trace is not None else [])]
    try:
        result = proc.run(argv, check=False, timeout=timeout)
    except Exception as exc:  # proc.run lets the timeout exception through
        if "Timeout" in type(exc).__name__:
            raise VerifyFailed(f"the runner did not finish {model.name} within {timeout:g} s") from None
        raise
    if result.returncode != 0:
        raise _runner_failure(model, result.stderr or result.stdout, result.returncode)
    match = re.search(r"forward_ms=([0-9.eE+-]+)", result.stdout)
    return read_tensors(out_path), (float(match.group(1)) if match else None)


def _run_on_device(runner: Runner, model: Path, in_path: Path, out_path: Path, timeout: float,
                   trace: Path | None) -> tuple[tuple[Any, ...], float | None]:
    """adb push the runner, model and inputs; run; pull the outputs (and the trace)."""
    from builder.models.platform import DEVICE_DIR

    adb = runner.launch.prefix[0]
    remote = [f"{DEVICE_DIR}/{p.name}" for p in (runner.path, model, in_path, out_path)]
    if trace is not None:
        remote.append(f"{DEVICE_DIR}/{trace.name}")
    proc.run([adb, "shell", "mkdir", "-p", DEVICE_DIR], check=True)
    for local in (runner.path, model, in_path):
        proc.run([adb, "push", local, f"{DEVICE_DIR}/"], check=True, timeout=timeout)
    result = proc.run([adb, "shell", f"chmod 755 {remote[0]} && cd {DEVICE_DIR} && {' '.join(remote)}"],
                      check=False, timeout=timeout)
    if result.returncode != 0 or "error" in result.stdout.lower() and "forward_ms" not in result.stdout:
        raise _runner_failure(model, result.stderr or result.stdout, result.returncode or 1)
    proc.run([adb, "pull", remote[3], out_path], check=True, timeout=timeout)
    if trace is not None:
        proc.run([adb, "pull", remote[4], trace], check=True, timeout=timeout)
    match = re.search(r"forward_ms=([0-9.eE+-]+)", result.stdout)
    return read_tensors(out_path), (float(match.group(1)) if match else None)


def trace_ops(runner: Runner, model: Path, inputs: Sequence[Any], work_dir: Path,
              timeout: float = 600) -> frozenset[str]:
    """The operators ``model`` calls on this build (a full one: a selective build cannot call what it lacks),
    recorded by the runner's RecordFunction callback while loading and running forward."""
    if _torch.model_kind(model) != "lite":
        raise UsageError(f"{model} is not a lite-interpreter file; export it first: builder export {model}")
    trace = work_dir / f"{model.stem}.traced-ops.txt"
    trace.unlink(missing_ok=True)
    run_runner(runner, model, inputs, work_dir, timeout, trace=trace)
    names = frozenset(line.strip() for line in trace.read_text(encoding="utf-8").splitlines() if line.strip())
    log.info("%s: %d operator(s) called while loading and running it", model, len(names))
    return names


def _runner_failure(model: Path, text: str, code: int) -> VerifyFailed:
    missing = missing_ops(text)
    if missing:
        return VerifyFailed(f"{model.name} needs operator(s) missing from the build: {', '.join(missing)}",
                            hint=f"fix: builder ops {model} -o ops.yaml, then rebuild with --ops ops.yaml")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    detail = lines[0] if lines else f"exit code {code}"
    return VerifyFailed(f"the runner failed on {model.name}: {detail[:400]}")


def reference_outputs(model: Path, inputs: Sequence[Any]) -> tuple[Any, ...]:
    """The installed torch's lite interpreter running the same file."""
    t = _torch.torch()
    try:
        with _torch.quiet():
            module = t.jit.mobile._load_for_lite_interpreter(str(model), map_location="cpu")
            result = module(*[x.clone() for x in inputs])
    except Exception as exc:
        raise VerifyFailed(f"torch {t.__version__} (the reference) cannot run {model.name} on these inputs: "
                           f"{_torch.first_line(exc)}") from None
    return flatten_tensors(result)


def flatten_tensors(value: Any) -> tuple[Any, ...]:
    t = _torch.torch()
    if isinstance(value, t.Tensor):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(x for item in value for x in flatten_tensors(item))
    raise VerifyFailed(f"model output holds a {type(value).__name__}, not tensors")


def compare(actual: Sequence[Any], expected: Sequence[Any], tol: Tolerance) -> tuple[float, float]:
    """(max abs error, max rel error); VerifyFailed when they differ beyond ``tol``."""
    t = _torch.torch()
    if len(actual) != len(expected):
        raise VerifyFailed(f"the build returned {len(actual)} output tensor(s), torch {len(expected)}")
    max_abs = max_rel = 0.0
    ok = True
    for i, (a, e) in enumerate(zip(actual, expected)):
        if tuple(a.shape) != tuple(e.shape) or a.dtype != e.dtype:
            raise VerifyFailed(f"output {i}: the build gave {a.dtype} {tuple(a.shape)}, "
                               f"torch {e.dtype} {tuple(e.shape)}")
        a64, e64 = a.detach().to(t.float64), e.detach().to(t.float64)
        diff = (a64 - e64).abs()
        if diff.numel():
            max_abs = max(max_abs, float(diff.max()))
            nonzero = e64.abs() > 0
            if bool(nonzero.any()):
                max_rel = max(max_rel, float((diff[nonzero] / e64.abs()[nonzero]).max()))
        ok = ok and bool(t.allclose(a64, e64, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
    if not ok:
        raise VerifyFailed(f"outputs differ from torch: max abs error {max_abs:.3g}, max rel error "
                           f"{max_rel:.3g} (rtol {tol.rtol:g}, atol {tol.atol:g})")
    return max_abs, max_rel


def verify_model(model: Path, runner: Runner, inputs: Sequence[Any], work_dir: Path,
                 tolerance: Tolerance = Tolerance(), timeout: float = 600) -> VerifyResult:
    """Run ``model`` on the build (runner) and in torch; VerifyFailed unless they agree."""
    if _torch.model_kind(model) != "lite":
        raise UsageError(f"{model} is not a lite-interpreter file; export it first: builder export {model}")
    actual, forward_ms = run_runner(runner, model, inputs, work_dir, timeout)
    expected = reference_outputs(model, inputs)
    max_abs, max_rel = compare(actual, expected, tolerance)
    shapes = tuple(tuple(int(d) for d in a.shape) for a in actual)
    log.info("%s: %d output(s) match torch (max abs %.3g, max rel %.3g)", model, len(shapes), max_abs, max_rel)
    return VerifyResult(model, runner.path, shapes, max_abs, max_rel, forward_ms,
                        str(_torch.torch().__version__))
