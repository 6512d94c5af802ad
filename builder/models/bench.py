"""How fast and how lean a build runs a model, measured with the release's own benchmark program.

PyTorch's ``binaries/speed_benchmark_torch.cc`` (in the 1.x releases: built by ``BUILD_BINARY=ON`` through
``caffe2_binary_target``, binaries/CMakeLists.txt:1-2 for mobile builds, linked to ``torch_library``) is compiled
from the build's own checkout (``CMAKE_HOME_DIRECTORY`` of its CMakeCache.txt) against the build's install, the
way ``builder verify`` compiles its runner (``runner.compile_runner``: the build's compiler, ``--whole-archive``
for a static install). It needs no gflags: ``C10_DEFINE_*`` and ``c10::ParseCommandLineFlags`` are c10's own
flags when c10 is built without gflags (``USE_GFLAGS=OFF``, every mobile build; c10/util/flags_use_no_gflags.cpp),
and its two caffe2 headers (core/timer.h, utils/string_utils.h) are installed and header-only for what it uses.
No shim: the program is the release's, unchanged.

Compile flags are those PyTorch's CMake gives the program: the build's compiler flags (``toolchain_for``) plus the
``-D`` defines the build compiles every library with (``build_defines``: shared by the compile commands of
``torch_cpu`` and ``c10`` in compile_commands.json, i.e. CMAKE_CXX_FLAGS and directory definitions such as
``-DBUILD_LITE_INTERPRETER`` and ``-DC10_MOBILE``, not a target's private ones), so the program loads a ``.ptl``
through ``_load_for_mobile`` on a lite build and ``torch::jit::load`` on a full-JIT one, as the release's would.

Each measured row (a build, a model variant, the caching allocator on or off, a thread count) runs as its own
process per round; rounds run every row back to back (A B C A B C ...), so drift of the machine between rounds
cancels in the ratios. Per run: ``--warmup`` then ``--iter`` timed iterations (``--report_pep=true``), start-up +
load time (the "Starting benchmark." line's arrival), peak RSS (the process's VmHWM, ``proc.run_timed``). A program
that runs under qemu-user is a correctness smoke only: its figures are kept out of every table (``Row.timed`` False).
"""
from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from builder import proc
from builder.errors import UsageError, VerifyFailed
from builder.models import bench_stats as stats
from builder.models.platform import DEVICE_DIR, DeviceNeeded, Launch, Toolchain, read_cmake_cache, toolchain_for
from builder.models.runner import Install, Runner, compile_runner, find_install, runner_launch

log = logging.getLogger("builder")

BENCH_SOURCE = Path("binaries/speed_benchmark_torch.cc")
INPUT_TYPES = ("float", "uint8_t", "int64")        # what speed_benchmark_torch.cc's create_inputs() accepts
# The operators the benchmark program calls itself, outside the model: create_inputs() makes every input with
# torch::ones (binaries/speed_benchmark_torch.cc), which ATen's TensorFactories.cpp implements as full(): empty() then
# fill_(). A selective build of only the model's operators lacks them; `--op` (build commands, `builder ops`) adds them.
PROGRAM_OPS = ("aten::ones", "aten::fill_.Scalar", "aten::empty.memory_format")


# ------------------------------------------------------------------ what is measured


@dataclass(frozen=True)
class Inputs:
    """The benchmark's inputs: ``dims`` in its syntax ("1,3,224,224;1,10"), ``types`` ("float;float"), or the
    model's bundled input number ``bundled``, or none at all."""

    dims: str = ""
    types: str = ""
    bundled: int | None = None
    none: bool = False

    @property
    def all_4d(self) -> bool:
        return bool(self.dims) and all(len(d.split(",")) == 4 for d in self.dims.split(";"))

    def args(self, channels_last: bool = False) -> tuple[str, ...]:
        if self.none:
            return ("--no_inputs=true",)
        if self.bundled is not None:
            return (f"--use_bundled_input={self.bundled}",)
        count = len(self.dims.split(";"))
        fmt = ";".join(["channels_last" if channels_last else "contiguous_format"] * count)
        return (f"--input_dims={self.dims}", f"--input_type={self.types}", f"--input_memory_format={fmt}")


def inputs_from(shapes: str | None, dtype: str, bundled: int | None, no_inputs: bool) -> Inputs:
    """``--shapes 1x3x224x224,1x10 --dtype float`` / ``--bundled-input N`` / ``--no-inputs`` -> Inputs."""
    chosen = sum([shapes is not None, bundled is not None, no_inputs])
    if chosen > 1:
        raise UsageError("give one of --shapes, --bundled-input, --no-inputs")
    if no_inputs:
        return Inputs(none=True)
    if bundled is not None:
        if bundled < 0:
            raise UsageError(f"--bundled-input {bundled}: the index of a bundled input is 0 or more")
        return Inputs(bundled=bundled)
    if dtype not in INPUT_TYPES:
        raise UsageError(f"--dtype {dtype}: speed_benchmark_torch makes {', '.join(INPUT_TYPES)} inputs")
    dims = []
    for part in (shapes or "1x3x224x224").split(","):
        try:
            sizes = [int(d) for d in part.strip().lower().split("x")]
        except ValueError:
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10") from None
        if not sizes or any(d <= 0 for d in sizes):
            raise UsageError(f"bad input shape {part.strip()!r}", hint="write e.g. 1x3x224x224,1x10")
        dims.append(",".join(map(str, sizes)))
    return Inputs(";".join(dims), ";".join([dtype] * len(dims)))


@dataclass(frozen=True)
class Subject:
    """One program to measure: a build's install (or the torch wheel's folder) with the benchmark source it is
    compiled from and the flags PyTorch's CMake would compile it with."""

    label: str
    install: Install
    source: Path
    lite: bool
    toolchain: Toolchain
    defines: tuple[str, ...] = ()
    std: str = "c++17"
    kind: Literal["build", "torch"] = "build"


@dataclass(frozen=True)
class Config:
    """One row of the table: a subject running one model file one way."""

    subject: Subject
    model: Path
    variant: str = "as given"
    caching_allocator: bool = False
    threads: int | None = None
    channels_last: bool = False

    @property
    def label(self) -> str:
        parts = [self.subject.label]
        if self.variant != "as given":
            parts.append(self.variant)
        if self.caching_allocator:
            parts.append("caching allocator")
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        return ", ".join(parts)


def _install_root(path: Path) -> Path:
    return path / "install" if (path / "install").is_dir() else path


def subject_for_build(path: Path, label: str | None = None, source: Path | None = None) -> Subject:
    """The build at ``path`` (its build folder or its install): the release's benchmark from the checkout the
    build was configured from (``source`` overrides: a checkout or the .cc file)."""
    install = find_install(_install_root(path))
    build_dir = install.root.parent
    cache_file = build_dir / "CMakeCache.txt"
    cache = read_cmake_cache(cache_file) if cache_file.is_file() else {}
    program = _bench_source(source, cache.get("CMAKE_HOME_DIRECTORY"), install.root)
    lite = cache.get("BUILD_LITE_INTERPRETER", "").upper() in ("ON", "1", "TRUE", "YES", "Y")
    defines = build_defines(build_dir)
    if lite and "-DBUILD_LITE_INTERPRETER" not in defines:
        defines += ("-DBUILD_LITE_INTERPRETER",)   # a lite release's CMakeLists.txt appends it to CMAKE_CXX_FLAGS
    return Subject(label or path.name, install, program, lite, toolchain_for(install.root), defines,
                   _cxx_standard(install.root))


def subject_for_torch(torch_dir: Path, version: str, source: Path) -> Subject:
    """The desktop torch wheel (its include/ and lib/libtorch_cpu.so) running the same .ptl through its lite
    interpreter, with the first build's benchmark source."""
    install = find_install(torch_dir)
    return Subject(f"torch {version} (wheel)", install, source, True, toolchain_for(install.root),
                   ("-DBUILD_LITE_INTERPRETER",), _cxx_standard(install.root), "torch")


def _bench_source(given: Path | None, checkout: str | None, install: Path) -> Path:
    if given is not None:
        path = given / BENCH_SOURCE if given.is_dir() else given
        if not path.is_file():
            raise UsageError(f"--source {given}: no {BENCH_SOURCE} there")
        return path
    if not checkout:
        raise UsageError(f"{install} is not in a build folder (no CMakeCache.txt beside it) to find the release's "
                         f"{BENCH_SOURCE} from", hint="pass --source CHECKOUT (the release's source tree)")
    path = Path(checkout) / BENCH_SOURCE
    if not path.is_file():
        raise UsageError(f"the build's checkout {checkout} has no {BENCH_SOURCE}",
                         hint="pass --source CHECKOUT (the release's source tree)")
    return path


def _cxx_standard(install_root: Path) -> str:
    """The C++ standard the install's headers need: TorchConfig.cmake's CXX_STANDARD (torch 2.x: 17 or 20), else
    C++17 (the 1.x releases build with C++14, whose headers C++17 compiles)."""
    import re

    config = install_root / "share/cmake/Torch/TorchConfig.cmake"
    text = config.read_text(encoding="utf-8", errors="replace") if config.is_file() else ""
    match = re.search(r"CXX_STANDARD\s+(\d+)", text)
    return f"c++{max(17, int(match.group(1)))}" if match else "c++17"


def build_defines(build_dir: Path) -> tuple[str, ...]:
    """The ``-D`` flags every library of the build is compiled with: those the compile commands of ``torch_cpu``
    and ``c10`` (``torch`` where there is no c10 target) share, in compile_commands.json. Empty when the build
    recorded no compile commands."""
    path = build_dir / "compile_commands.json"
    if not path.is_file():
        return ()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    found: dict[str, list[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        args = entry.get("arguments") or shlex.split(entry.get("command", ""))
        text = " ".join(args)
        for target in ("torch_cpu", "c10", "torch"):
            if target not in found and f"/{target}.dir/" in text:
                found[target] = [a for a in args if a.startswith("-D")]
    first = found.get("torch_cpu")
    other = found.get("c10") or found.get("torch")
    if first is None or other is None:
        return ()
    shared = set(other)
    return tuple(dict.fromkeys(d for d in first if d in shared))


# ------------------------------------------------------------------ compiled programs


@dataclass(frozen=True)
class Program:
    """A compiled benchmark: the runner (path, launch) and the c10 flags it accepts (``--help``)."""

    runner: Runner
    flags: frozenset[str]
    stripped_bytes: int | None


def compile_program(subject: Subject, work_dir: Path, environ: Mapping[str, str] = MappingProxyType({})) -> Program:
    """Compile (or reuse) the release's benchmark against the subject's install and ask it for its flags."""
    runner = compile_runner(subject.install, work_dir, toolchain=subject.toolchain, environ=environ,
                            source=subject.source, defines=subject.defines, std=subject.std, resolve_launch=False)
    try:
        launch = runner_launch(runner.path)
    except DeviceNeeded:   # an Android program and no adb here: the CLI prints the commands (device_commands)
        launch = Launch(where="an Android device (no adb here)", needs_device=True)
    runner = replace(runner, launch=launch)
    flags = _flags(runner)
    missing = {"model", "iter", "warmup", "report_pep"} - flags
    if missing:
        raise UsageError(f"{subject.source} built a program without --{', --'.join(sorted(missing))}: "
                         "not PyTorch's speed_benchmark_torch")
    return Program(runner, flags, _allocated_bytes(runner.path, subject.install))


def _flags(runner: Runner) -> frozenset[str]:
    if runner.launch.needs_device:
        return frozenset({"model", "iter", "warmup", "report_pep", "use_caching_allocator", "input_dims",
                          "input_type", "input_memory_format", "use_bundled_input", "no_inputs"})
    result = proc.run([*runner.launch.prefix, runner.path, "--help"], check=False, timeout=120)
    return stats.flags_from_help(result.stdout)


def _allocated_bytes(program: Path, install: Install) -> int | None:
    """What stripping keeps of the program (its allocated ELF sections), plus the install's shared libtorch
    libraries it loads (a shared install); None when it is not ELF."""
    from builder.size import elf_sections

    files = [program]
    if install.linkage == "shared":
        files += [p for n in ("libtorch_cpu.so", "libtorch.so", "libc10.so") if (p := install.lib_dir / n).is_file()]
    try:
        return sum(s.size for f in files for s in elf_sections(f) if s.file_bytes)
    except UsageError:
        return None


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class Run:
    """One process: its iteration times (ms), start-up + load (s), peak RSS (KiB)."""

    times_ms: tuple[float, ...]
    load_s: float | None
    max_rss_kib: int | None


@dataclass(frozen=True)
class Row:
    config: Config
    program: Program
    rounds: tuple[Run, ...] = ()
    note: str = ""

    @property
    def timed(self) -> bool:
        """False under qemu-user: emulated time is no device's time."""
        return not any("qemu" in Path(p).name for p in self.program.runner.launch.prefix)

    @property
    def times_ms(self) -> tuple[float, ...]:
        return tuple(t for r in self.rounds for t in r.times_ms)


def bench_args(config: Config, program: Program, inputs: Inputs, warmup: int, iters: int,
               model_path: str | None = None) -> tuple[str, ...]:
    """The benchmark's command-line arguments for one run of ``config``."""
    args = [f"--model={model_path or config.model}", *inputs.args(config.channels_last),
            f"--warmup={warmup}", f"--iter={iters}", "--report_pep=true"]
    if config.caching_allocator:
        args.append("--use_caching_allocator=true")
    if config.threads is not None and "pthreadpool_size" in program.flags:
        args.append(f"--pthreadpool_size={config.threads}")
    return tuple(args)


def thread_env(config: Config) -> dict[str, str]:
    """ATen's intra-op pool (a full build, the wheel) reads OMP_NUM_THREADS / MKL_NUM_THREADS
    (aten/src/ATen/ParallelCommon.cpp); the mobile pthreadpool takes --pthreadpool_size."""
    if config.threads is None:
        return {}
    return {"OMP_NUM_THREADS": str(config.threads), "MKL_NUM_THREADS": str(config.threads)}


def check_config(config: Config, program: Program, inputs: Inputs) -> list[str]:
    """What this program cannot do of what the row asks (problems, reported all at once)."""
    problems = []
    needed = {"use_caching_allocator": config.caching_allocator, "input_memory_format": config.channels_last,
              "use_bundled_input": inputs.bundled is not None, "no_inputs": inputs.none}
    for flag, wanted in needed.items():
        if wanted and flag not in program.flags:
            problems.append(f"{config.subject.label}: its speed_benchmark_torch has no --{flag}")
    if config.channels_last and not inputs.all_4d:
        problems.append("channels_last needs 4-D inputs given with --shapes")
    return problems


def run_once(row: Row, inputs: Inputs, warmup: int, iters: int, timeout: float, cpus: str | None = None) -> Run:
    """One process of the row's benchmark."""
    launch = row.program.runner.launch
    if launch.needs_device:
        return _run_on_device(row, inputs, warmup, iters, timeout, cpus)
    args = bench_args(row.config, row.program, inputs, warmup, iters)
    taskset = ("taskset", cpus) if cpus else ()
    try:
        timed = proc.run_timed([*taskset, *launch.prefix, row.program.runner.path, *args],
                               env=thread_env(row.config), timeout=timeout)
    except proc.TimedOut:
        raise VerifyFailed(f"{row.config.label}: the benchmark did not finish within {timeout:g} s") from None
    return _parsed(row, timed.result, timed.lines, timed.max_rss_kib, iters)


def _parsed(row: Row, result: proc.Result, lines: Sequence[tuple[float, str]], rss: int | None, iters: int) -> Run:
    times = tuple(t / 1000 for t in stats.iteration_times_us(text for _, text in lines))
    if result.returncode != 0 or len(times) != iters:
        from builder.models.verify import missing_ops

        text = (result.stderr + "\n" + result.stdout).strip()
        missing = missing_ops(text)
        ours = [op for op in missing if op in PROGRAM_OPS]
        if ours:
            raise VerifyFailed(f"{row.config.label}: the benchmark program makes its inputs with "
                               f"{', '.join(ours)}, which this selective build leaves out",
                               hint="rebuild with them beside the model's: --model MODEL "
                               + " ".join(f"--op {op}" for op in PROGRAM_OPS) + " (or --ops FILE with the same --op)")
        if missing:
            raise VerifyFailed(f"{row.config.label}: {row.config.model.name} needs operator(s) missing from the "
                               f"build: {', '.join(missing)}")
        detail = next((ln for ln in text.splitlines() if "rror" in ln or "what()" in ln), text[-300:])
        raise VerifyFailed(f"{row.config.label}: the benchmark failed (exit code {result.returncode}, "
                           f"{len(times)} of {iters} iterations reported): {detail.strip()[:300]}")
    return Run(times, stats.loaded_after(lines), rss)


def device_commands(row: Row, inputs: Inputs, warmup: int, iters: int, cpus: str | None = None) -> list[str]:
    """The adb commands that run the row's benchmark on a device (PyTorch's recipe: push the program and the
    model to /data/local/tmp, run it there; ``taskset MASK`` pins it to cores)."""
    program, model = row.program.runner.path, row.config.model
    args = bench_args(row.config, row.program, inputs, warmup, iters, f"{DEVICE_DIR}/{model.name}")
    env = " ".join(f"{k}={v}" for k, v in thread_env(row.config).items())
    remote = " ".join(filter(None, [env, f"taskset {cpus}" if cpus else "", f"{DEVICE_DIR}/{program.name}",
                                    *map(shlex.quote, args)]))
    return [f"adb shell mkdir -p {DEVICE_DIR}", f"adb push {program} {DEVICE_DIR}/", f"adb push {model} {DEVICE_DIR}/",
            f"adb shell chmod 755 {DEVICE_DIR}/{program.name}", f"adb shell '{remote}'"]


def _run_on_device(row: Row, inputs: Inputs, warmup: int, iters: int, timeout: float, cpus: str | None) -> Run:
    adb = row.program.runner.launch.prefix[0]
    commands = device_commands(row, inputs, warmup, iters, cpus)
    for line in commands[:-1]:
        proc.run([adb, *shlex.split(line)[1:]], check=True, timeout=timeout)
    timed = proc.run_timed([adb, *shlex.split(commands[-1])[1:]], timeout=timeout)
    # the wall clock and RSS here are adb's: only the device's own per-iteration times are kept
    return replace(_parsed(row, timed.result, timed.lines, None, iters), load_s=None)


@dataclass(frozen=True)
class BenchSettings:
    warmup: int = 5
    iters: int = 20
    rounds: int = 5
    timeout: float = 1800
    cpus: str | None = None


def measure(rows: Sequence[Row], inputs: Inputs, settings: BenchSettings,
            progress: Callable[[str], None] = lambda _: None) -> tuple[Row, ...]:
    """Every row once per round, rounds one after another (A B A B ...); rows that run under qemu-user run one
    round (a smoke)."""
    runs: list[list[Run]] = [[] for _ in rows]
    for number in range(1, settings.rounds + 1):
        for i, row in enumerate(rows):
            if not row.timed and number > 1:
                continue
            progress(f"round {number}/{settings.rounds}: {row.config.label}")
            runs[i].append(run_once(row, inputs, settings.warmup, settings.iters, settings.timeout, settings.cpus))
    return tuple(replace(row, rounds=tuple(r)) for row, r in zip(rows, runs))


__all__ = ["BenchSettings", "Config", "Inputs", "Program", "Row", "Run", "Subject", "build_defines", "check_config",
           "compile_program", "device_commands", "inputs_from", "measure", "subject_for_build", "subject_for_torch"]
