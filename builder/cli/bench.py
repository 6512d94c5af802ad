"""CLI: bench (the release's speed_benchmark_torch on builds, interleaved; builder.models.bench)."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .app import Tag, _console, app, guarded, machine, settings

if TYPE_CHECKING:
    from ..models.bench import BenchSettings, Config, Inputs, Row, Subject
    from ..models.bench_report import Result
    from ..models.bench_variants import Variant
    from ..models.export import ExportTarget


@app.command()
@guarded
def bench(build: Annotated[Path, typer.Option("--build", help="A build's folder or install (host, or an Android ABI: on a device over adb; under qemu-user only as a smoke, untimed).")],
          model: Annotated[Path, typer.Option("--model", help="The model: .ptl for a lite build (.pt with --variants).")],
          compare: Annotated[Optional[list[Path]], typer.Option("--compare", help="Another build to measure interleaved with --build (repeatable); ratios are against the first row.")] = None,
          torch_row: Annotated[bool, typer.Option("--torch", help="Add the desktop torch wheel running the same .ptl (its lite interpreter) as a reference row.")] = False,
          variants: Annotated[bool, typer.Option("--variants", help="Measure the recipe's model variants (export, optimize_for_mobile, channels_last, dynamic quantization) made from the .pt.")] = False,
          shapes: Annotated[Optional[str], typer.Option(help="Input shapes, e.g. 1x3x224x224 (default) or 1x3x224x224,1x10.")] = None,
          dtype: Annotated[str, typer.Option(help="Input type: float, uint8_t or int64.")] = "float",
          bundled_input: Annotated[Optional[int], typer.Option("--bundled-input", help="Run on the model's bundled input number N instead.")] = None,
          no_inputs: Annotated[bool, typer.Option("--no-inputs", help="The model takes no input.")] = False,
          caching_allocator: Annotated[bool, typer.Option("--caching-allocator", help="Measure each row with c10::CPUCachingAllocator off and on.")] = False,
          threads: Annotated[Optional[list[int]], typer.Option("--threads", help="Thread count (repeatable: one row each).")] = None,
          warmup: Annotated[int, typer.Option(help="Warm-up iterations per run.")] = 5,
          iters: Annotated[int, typer.Option("--iter", help="Timed iterations per run.")] = 20,
          rounds: Annotated[int, typer.Option(help="Rounds (each runs every row once, one after another).")] = 5,
          cpus: Annotated[Optional[str], typer.Option("--cpus", help="taskset CPU mask, e.g. f0 (the big cores of a phone).")] = None,
          name: Annotated[Optional[list[str]], typer.Option("--name", help="Row names for --build, then each --compare, in order (default: their folder names).")] = None,
          source: Annotated[Optional[Path], typer.Option(help="The release checkout (or .cc) to take speed_benchmark_torch.cc from (default: the build's own).")] = None,
          tag: Tag = None,
          timeout: Annotated[float, typer.Option(help="Seconds one run may take.")] = 1800,
          as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON (schema builder-bench/1).")] = False) -> None:
    """Measure how fast and how lean builds run a model with the release's own binaries/speed_benchmark_torch.cc:
    median/mean/p90/min latency and spread, start-up + load time, peak RSS, several builds interleaved."""
    from ..models import bench as bm
    from ..models import bench_report as report

    inputs = bm.inputs_from(shapes, dtype, bundled_input, no_inputs)
    knobs = bm.BenchSettings(warmup, iters, rounds, timeout, cpus)
    _check_numbers(knobs, threads or [])
    builds = [build, *(compare or ())]
    names = _names(builds, name or [])
    subjects = [bm.subject_for_build(d, n, source) for d, n in zip(builds, names)]
    if torch_row:
        subjects.append(_torch_subject(subjects[0].source))
    models = _models(model, variants, inputs, subjects[0], tag)
    configs = [bm.Config(s, m.model, m.name, alloc, n, m.channels_last)
               for s in subjects for m in models if m.model is not None
               for alloc in ((False, True) if caching_allocator else (False,)) for n in _thread_counts(threads)]
    _check_models(configs)
    rows = _compile(configs, inputs)
    result = report.Result(bm.measure(rows, inputs, knobs, _progress(as_json)), inputs, knobs,
                       tuple(f"{m.name}: not measured: {m.note}" if m.model is None else f"{m.name}: {m.note}"
                             for m in models if m.note))
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(result), indent=2) + "\n")
    else:
        _print(result)


def _thread_counts(threads: list[int] | None) -> list[int | None]:
    return list(threads) if threads else [None]


def _names(builds: list[Path], given: list[str]) -> list[str]:
    from ..errors import UsageError

    if len(given) > len(builds):
        raise UsageError(f"{len(given)} --name for {len(builds)} build(s)", hint="one --name per --build/--compare")
    names = given + [(d.parent.name if d.name == "install" else d.name) for d in builds[len(given):]]
    if len(set(names)) != len(names):
        names = [f"{n} #{i}" for i, n in enumerate(names, 1)]
    return names


def _check_numbers(knobs: BenchSettings, threads: list[int]) -> None:
    from ..errors import UsageError, ValidationErrors

    problems = [UsageError(f"--{name} {value}: must be at least {least}")
                for name, value, least in (("warmup", knobs.warmup, 0), ("iter", knobs.iters, 1),
                                           ("rounds", knobs.rounds, 1), ("threads", min(threads, default=1), 1))
                if value < least]
    if knobs.cpus is not None and not all(c in "0123456789abcdefABCDEF" for c in knobs.cpus.removeprefix("0x")):
        problems.append(UsageError(f"--cpus {knobs.cpus}: a hexadecimal CPU mask, e.g. f0"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ValidationErrors(problems)


def _torch_subject(source: Path) -> Subject:
    from ..models import _torch
    from ..models.bench import subject_for_torch

    t = _torch.torch()
    return subject_for_torch(Path(t.__file__).parent, str(t.__version__).split("+")[0], source)


def _models(model: Path, variants: bool, inputs: Inputs, first: Subject, tag: str | None) -> list[Variant]:
    from ..models.bench_variants import Variant, make_variants

    if not variants:
        return [Variant("as given", model)]
    out = _work() / "variants" / _digest(model)
    return list(make_variants(model, out, _export_target(first, tag), inputs.all_4d))


def _export_target(first: Subject, tag: str | None) -> ExportTarget:
    """What the build's release reads: its checkout's caffe2/serialize/versions.h, else --tag's recipe."""
    from ..models.export import ExportTarget, read_bytecode_limits

    checkout = first.source.parent.parent
    if tag is None and (checkout / "caffe2/serialize/versions.h").is_file():
        limits = read_bytecode_limits(checkout)
        return ExportTarget(bytecode_max=limits.produced, bytecode_min=limits.min_supported)
    from ..recipes import default_tag, load_recipe

    recipes_dir = settings().recipes_dir
    return ExportTarget.for_release(load_recipe(tag or default_tag(recipes_dir), recipes_dir))


def _digest(model: Path) -> str:
    from ..hashing import sha256_of

    return sha256_of([model.read_bytes()])[:16]


def _check_models(configs: list[Config]) -> None:
    from ..errors import UsageError
    from ..models import _torch

    for config in configs:
        if config.subject.lite and _torch.model_kind(config.model) != "lite":
            raise UsageError(f"{config.subject.label} is a lite-interpreter build and {config.model} is not a "
                             f"lite-interpreter file", hint=f"export it first: builder export {config.model} -o "
                             f"{config.model.with_suffix('.ptl').name}, or pass --variants to export variants")


def _compile(configs: list[Config], inputs: Inputs) -> tuple[Row, ...]:
    """Compile each subject's program once, then check every row against what its program can do."""
    from ..errors import UsageError, ValidationErrors
    from ..models.bench import Program, Row, compile_program

    programs: dict[int, Program] = {}
    rows = []
    for config in configs:
        key = id(config.subject)
        if key not in programs:
            programs[key] = compile_program(config.subject, _work(), machine().environ)
        rows.append(Row(config, programs[key]))
    problems = [UsageError(p) for row in rows for p in _row_problems(row, inputs)]
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationErrors(problems)
    _no_device(rows, inputs)
    return tuple(rows)


def _row_problems(row: Row, inputs: Inputs) -> list[str]:
    from ..models.bench import check_config

    return check_config(row.config, row.program, inputs)


def _no_device(rows: tuple[Row, ...] | list[Row], inputs: Inputs) -> None:
    """Android programs and no adb here: print the commands that run them on a device, then stop (exit 2)."""
    from ..models.bench import device_commands
    from ..models.platform import DeviceNeeded

    waiting = [r for r in rows if r.program.runner.launch.needs_device and not r.program.runner.launch.prefix]
    if not waiting:
        return
    console = _console()
    for row in waiting:
        console.print(f"# {row.config.label}", markup=False)
        for line in device_commands(row, inputs, 5, 20):
            console.print(line, markup=False)
    raise DeviceNeeded(f"{len(waiting)} row(s) are Android programs and no adb is on PATH to run them",
                       hint="connect a device, install adb (platform-tools) and run again, or run the commands above")


def _progress(quiet: bool) -> Callable[[str], None]:
    err = _console(stderr=True)

    def show(line: str) -> None:
        if not quiet:
            err.print(f"[dim]bench:[/] {line}", highlight=False)
    return show


def _work() -> Path:
    cache = settings().cache_dir
    assert cache is not None, "layered settings always name the cache"
    return cache / "bench"


def _print(result: Result) -> None:
    """A plain aligned table (readable in a CI log as on a terminal), then the verdicts and the notes."""
    from ..models import bench_report as bm

    cells = bm.table_cells(result)
    console = _console()
    s = result.settings
    console.print(f"speed_benchmark_torch: {s.rounds} round(s) x {s.iters} iterations ({s.warmup} warm-up) per "
                  "row, rows interleaved", markup=False)
    for line in text_table(bm.HEADERS, cells):
        console.print(line, markup=False)
    for line in [*bm.verdicts(result), *(f"note: {n}" for n in result.notes)]:
        console.print(line, markup=False)


def text_table(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths[:-1])) + "  {}"
    return [fmt.format(*headers), *(fmt.format(*r) for r in rows)]
