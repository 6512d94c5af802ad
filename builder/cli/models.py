"""CLI: ops, export, verify, size (the commands that import torch, lazily)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .app import Tag, _console, app, guarded, machine, settings

if TYPE_CHECKING:
    from ..models.ops import OpList, OpListFormat
    from ..recipes import Recipe
    from ..size import Comparison, Row, SizeReport

# ------------------------------------------------------------------ models

def _checkout_for(tag: str | None, source: Path | None) -> Path | None:
    """A release tree to check operators against: --source, else the cached work tree of --tag."""
    from ..source import SourceSpec

    if source is not None:
        return source
    if tag is None:
        return None
    tree = SourceSpec(cache_dir=_cache() / "git").worktree_dir(tag)
    return tree if tree.is_dir() else None


@app.command()
@guarded
def ops(models: Annotated[list[Path], typer.Argument(help="TorchScript (.pt) or lite (.ptl) models.")],
        output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the op list here.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="plain (SELECTED_OP_LIST) or tracing.")] = "plain",
        custom_op: Annotated[Optional[list[str]], typer.Option(help="Operator registered by your own code.")] = None,
        op: Annotated[Optional[list[str]], typer.Option("--op", help="Add this release operator as a root (what your own C++ calls; `builder bench` names the ones its benchmark program needs).")] = None,
        tag: Tag = None,
        source: Annotated[Optional[Path], typer.Option(help="Release checkout to validate against.")] = None,
        trace: Annotated[Optional[Path], typer.Option("--trace", help="A full host build of the release (install or build folder; not one made with --ops/--model): run the models on it and add every operator they call (tracing format).")] = None,
        inputs: Annotated[Optional[Path], typer.Option(help="With --trace: inputs (.pt tensor/list, or builder tensor file).")] = None,
        shapes: Annotated[str, typer.Option(help="With --trace: random inputs of these shapes.")] = "1x3x224x224") -> None:
    """Root operators of models, merged, validated against the release, in its SELECTED_OP_LIST format."""
    from ..errors import UsageError
    from ..models.ops import (
        check_names,
        collect_ops,
        format_op_list,
        load_known_ops,
        tracing_supported,
        validate_ops,
        write_op_list,
    )
    from ..recipes import load_recipe

    if trace is not None and fmt == "plain":
        fmt = "tracing"
    if fmt not in ("plain", "tracing"):
        raise UsageError(f"unknown --format '{fmt}'", hint="use plain or tracing")
    added = check_names(tuple(op or ()), "--op")
    recipe = load_recipe(tag, settings().recipes_dir) if tag else None
    checkout = _checkout_for(tag, source)
    if fmt == "tracing" and not ((recipe and recipe.has("tracing_based")) or (checkout and tracing_supported(checkout))):
        raise UsageError(f"{tag or 'this release'} has no tracing-based selective build", hint="use --format plain")
    if trace is not None and recipe is None:
        raise UsageError("--trace needs --tag (the release the build is of)", hint="see `builder recipes list`")
    oplist = collect_ops(models)
    if trace is not None and recipe is not None:
        oplist = _add_traced(oplist, models, recipe, trace, inputs, shapes)
    oplist = oplist.with_roots(added)
    err = _console(stderr=True)
    if checkout is not None:
        for warning in validate_ops(oplist.names, load_known_ops(checkout), tuple(custom_op or ())):
            err.print(f"[yellow]warning:[/] {warning}")
    else:
        err.print("[yellow]note:[/] no release checkout to validate against (pass --tag with a cached checkout, or --source)")
    for use in oplist.ops:
        kind = "" if use.root else " (called)"
        err.print(f"  {use.name + kind:<48} {', '.join(Path(m).name for m in use.models)}", markup=False)
    called = f" ({len(oplist.traced)} called by the others)" if oplist.traced else ""
    err.print(f"{len(oplist.ops)} operators{called} from {len(models)} model(s)")
    chosen: OpListFormat = "tracing" if fmt == "tracing" else "plain"
    if output is None:
        sys.stdout.write(format_op_list(oplist, chosen))
    else:
        write_op_list(oplist, output, chosen)
        err.print(f"wrote {output}")


def _add_traced(oplist: OpList, models: list[Path], recipe: Recipe, build: Path, inputs: Path | None,
                shapes: str) -> OpList:
    """Root operators plus what a run of each model on a full build of the release calls (and the operators the
    release's tracer always adds): the tracing-based list a TRACING_BASED build needs."""
    from ..models.ops import OpList, merge_op_lists
    from ..models.runner import compile_runner, find_install
    from ..models.verify import check_traceable, model_inputs, trace_ops

    install = find_install(_install_dir(build))
    check_traceable(install.root, recipe.tag)
    work = _verify_work()
    runner = compile_runner(install, work, environ=machine().environ)
    values = model_inputs(inputs, shapes)
    lists = [oplist]
    for model in models:
        lists.append(OpList.from_names(trace_ops(runner, model, values, work), str(model), root=False))
    always = tuple(op for lv in recipe.size_levers.values() for op in lv.always_included_ops)
    if always:
        lists.append(OpList.from_names(always, f"{recipe.tag} tracer", root=False))
    return merge_op_lists(lists)


@app.command()
@guarded
def export(model: Annotated[Path, typer.Argument(help="TorchScript model (.pt).")],
           output: Annotated[Path, typer.Option("-o", "--output", help="Lite-interpreter file to write.")],
           tag: Tag = None,
           backend: Annotated[str, typer.Option(help="cpu, vulkan or metal (where the release has it).")] = "cpu",
           optimize: Annotated[Optional[bool], typer.Option("--optimize/--no-optimize", help="Run optimize_for_mobile (default: where this torch can; a CPU export from a torch without XNNPACK is written unoptimized, and says so).")] = None) -> None:
    """Export a model for a release's lite interpreter (bytecode the release reads; backported if needed)."""
    from ..models.export import ExportTarget, export_model
    from ..recipes import load_release

    recipe = load_release(tag, settings().recipes_dir)
    backends = frozenset({"cpu"} | {b for b in ("vulkan", "metal") if recipe.has(b)})
    target = ExportTarget.for_release(recipe, backends)
    res = export_model(model, output, target, optimize=optimize, backend=backend)
    note = f" (backported from v{res.torch_bytecode_version})" if res.backported else ""
    _console().print(f"wrote {res.output}: bytecode v{res.bytecode_version}{note} for {recipe.tag}, "
                     f"{len(res.ops)} operators, torch {res.torch_version}"
                     + (f"; not optimized: {res.not_optimized}" if res.not_optimized else ""))


@app.command()
@guarded
def verify(model: Annotated[Path, typer.Option("--model", help="Lite-interpreter model (.ptl).")],
           build: Annotated[Optional[Path], typer.Option("--build", help="A build's install folder (or its build folder): host, or an Android ABI (run under qemu-user, or on a device with adb).")] = None,
           aar: Annotated[Optional[Path], typer.Option("--aar", help="Instead of --build: an AAR; the model runs through its Java API (LiteModuleLoader / Module) on this machine's JVM with the AAR's own classes.jar and jni/<abi>/ libraries.")] = None,
           tag: Annotated[Optional[str], typer.Option("--tag", help="With --aar: the release it is of (default: read from the manifest beside it).")] = None,
           maven_repo: Annotated[Optional[Path], typer.Option("--maven-repo", help="With --aar: a Maven folder holding the release's runtime jars (nativeloader); default ~/.m2 and the Gradle cache.")] = None,
           android_sdk: Annotated[Optional[Path], typer.Option("--android-sdk", help="With --aar: an SDK holding android.jar of the release's compileSdk (default ANDROID_HOME, ANDROID_SDK_ROOT, ~/Android/Sdk, ~/Library/Android/sdk).")] = None,
           inputs: Annotated[Optional[Path], typer.Option(help="Inputs (.pt tensor/list, or builder tensor file).")] = None,
           shapes: Annotated[str, typer.Option(help="Random inputs of these shapes, e.g. 1x3x224x224.")] = "1x3x224x224",
           seed: Annotated[int, typer.Option(help="Seed for random inputs.")] = 0,
           rtol: Annotated[float, typer.Option(help="Relative tolerance.")] = 1e-4,
           atol: Annotated[float, typer.Option(help="Absolute tolerance.")] = 1e-5,
           link: Annotated[str, typer.Option(help="How the runner links libtorch_cpu: whole-archive, registrations (objects that register operators) or initializers (every object with a static initialiser).")] = "whole-archive",
           gc_sections: Annotated[bool, typer.Option("--gc-sections/--no-gc-sections", help="Link with -Wl,--gc-sections.")] = False) -> None:
    """Compile a runner against a build (with the build's own compiler), run the model on it and compare with
    torch eager. Android builds run under qemu-user (stand-in NDK) or on a device over adb (Google's NDK)."""
    from ..errors import UsageError
    from ..models.platform import toolchain_for
    from ..models.runner import compile_runner, find_install
    from ..models.verify import Tolerance, model_inputs, verify_model

    if aar is not None:
        if build is not None:
            raise UsageError("--aar and --build name two different things to verify", hint="pass one of them")
        _verify_aar(aar, model, model_inputs(inputs, shapes, seed), Tolerance(rtol=rtol, atol=atol), tag, maven_repo,
                    android_sdk)
        return
    chosen = settings()
    install = find_install(_install_dir(build) if build is not None else chosen.real_install)
    work = _verify_work()
    runner = compile_runner(install, work, link_mode=link, extra_link_args=_gc_flags(gc_sections),
                            toolchain=toolchain_for(install.root), environ=machine().environ)
    values = model_inputs(inputs, shapes, seed)
    res = verify_model(model, runner, values, work, Tolerance(rtol=rtol, atol=atol))
    forward = f"{res.forward_ms:.1f} ms" if res.forward_ms is not None else "n/a"
    _console().print(f"ok: {model.name} on {install.root} (link {link}; ran on {runner.launch.where}): "
                     f"{len(res.outputs)} output(s) match torch {res.torch_version} (max abs {res.max_abs_error:.2e}, "
                     f"max rel {res.max_rel_error:.2e}); forward {forward}")


def _verify_aar(aar: Path, model: Path, values: Any, tolerance: Any, tag: str | None,
                maven_repo: Path | None, android_sdk: Path | None) -> None:
    import platform

    from ..models.java_check import choose_slice, java_tools, verify_aar
    from ..source import SourceSpec

    chosen, env = settings(maven_repo=maven_repo, android_sdk=android_sdk), machine()
    tools = java_tools(aar, tag, chosen.recipes_dir, chosen.maven_repo, chosen.android_sdk, env.environ, env.home,
                       lambda release: SourceSpec(cache_dir=_cache() / "git").worktree_dir(release))
    part = choose_slice(aar, platform.machine())
    res = verify_aar(tools, part, model, values, _verify_work() / "java", tolerance)
    forward = f"{res.forward_ms:.1f} ms" if res.forward_ms is not None else "n/a"
    loader = "LiteModuleLoader" if part.kind == "lite" else "Module"
    _console().print(f"ok: {model.name} through {aar.name}'s Java API ({loader}.load, forward; jni/{part.abi}/ on "
                     f"this machine's JVM, {tools.java}): {len(res.outputs)} output(s) match torch "
                     f"{res.torch_version} (max abs {res.max_abs_error:.2e}, max rel {res.max_rel_error:.2e}); "
                     f"forward {forward}")


def _cache() -> Path:
    cache = settings().cache_dir
    assert cache is not None, "layered settings always name the cache"
    return cache


def _verify_work() -> Path:
    """Where runners are compiled and models run: one cache folder, so a runner is reused across commands."""
    return _cache() / "verify"


def _gc_flags(on: bool) -> tuple[str, ...]:
    return ("-Wl,--gc-sections",) if on else ()


def _install_dir(path: Path) -> Path:
    return path / "install" if (path / "install").is_dir() else path


@app.command()
@guarded
def size(build: Annotated[Path, typer.Option("--build", help="A build's install folder (or its build folder): host or an Android ABI.")],
         baseline: Annotated[Optional[Path], typer.Option(help="A build to compare with (default: --build again, when --baseline-link is given).")] = None,
         link: Annotated[str, typer.Option(help="How the runner links libtorch_cpu: whole-archive, registrations (objects that register operators) or initializers (every object with a static initialiser).")] = "whole-archive",
         baseline_link: Annotated[Optional[str], typer.Option(help="Link mode for the baseline (default whole-archive).")] = None,
         gc_sections: Annotated[bool, typer.Option("--gc-sections/--no-gc-sections", help="Link both with -Wl,--gc-sections.")] = True,
         model: Annotated[Optional[Path], typer.Option("--model", help="Also run this .ptl on each linked runner and compare with torch.")] = None,
         inputs: Annotated[Optional[Path], typer.Option(help="Inputs for --model (.pt or builder tensor file).")] = None,
         shapes: Annotated[str, typer.Option(help="Random inputs for --model of these shapes.")] = "1x3x224x224",
         top: Annotated[int, typer.Option(help="How many of the largest contributors to show.")] = 15,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Link the verify runner against a build, strip it, and show its size by section and its largest
    contributors (archive members, from the linker map), beside a baseline."""
    import dataclasses

    from ..size import compare, measure_install

    work = _verify_work()
    values = tol = None
    if model is not None:
        from ..models.verify import Tolerance, model_inputs

        values = model_inputs(inputs, shapes)
        tol = Tolerance(rtol=1e-3, atol=1e-4)
    flags = _gc_flags(gc_sections)
    environ = machine().environ
    report = measure_install(_install_dir(build), work, link_mode=link, link_flags=flags, environ=environ,
                             label_=f"{link}", model=model, inputs=values, tolerance=tol)
    base = None
    if baseline is not None or baseline_link is not None:
        base_mode = baseline_link or "whole-archive"
        base = measure_install(_install_dir(baseline or build), work, link_mode=base_mode, link_flags=flags,
                               environ=environ,
                               label_=f"baseline {base_mode}", model=model, inputs=values, tolerance=tol)
    cmp = compare(report, base, top)
    if as_json:
        def plain(obj: object) -> object:
            return str(obj) if isinstance(obj, Path) else obj

        def shown(r: SizeReport | None) -> dict[str, Any] | None:
            if r is None:
                return None
            data = dataclasses.asdict(r)
            data["contributors"] = data["contributors"][:top]
            return data

        out = {"report": shown(report), "baseline": shown(base), "ratio": cmp.total.ratio}
        sys.stdout.write(json.dumps(out, indent=2, default=plain) + "\n")
        return
    _print_size(cmp)


def _print_size(cmp: Comparison) -> None:
    from rich.table import Table

    from ..size import human

    console = _console()
    reports = [r for r in (cmp.report, cmp.baseline) if r is not None]
    for r in reports:
        console.print(f"[bold]{r.label}[/]: {r.install} — {human(r.binary_size)} linked, "
                      f"[bold]{human(r.stripped_size)}[/] stripped ({r.stripped}; debug file {r.debug_file})"
                      + (f"; {r.forced_objects} objects force-loaded" if r.forced_objects else ""))
        if r.verified is not None:
            from rich.markup import escape

            console.print(("  [green]" if r.verify_ok else "  [red]") + escape(r.verified) + "[/]")
    with_base = cmp.baseline is not None

    def ratio(row: Row) -> str:
        return f"{row.ratio:.2f}" if row.ratio is not None else "-"

    for title, rows in (("sections (stripped)", (cmp.total, *cmp.sections)),
                        ("largest contributors (from the linker map)", cmp.contributors)):
        table = Table(title)
        table.columns[0].overflow = "fold"
        labels = [cmp.report.label] + ([cmp.baseline.label, "ratio"] if cmp.baseline is not None else [])
        for col in labels:
            table.add_column(col, justify="right", no_wrap=True)
        for row in rows:
            cells = [row.name, human(row.size)] + ([human(row.baseline), ratio(row)] if with_base else [])
            table.add_row(*cells)
        console.print(table)


