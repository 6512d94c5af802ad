"""The command line: argv -> BuildRequest -> resolve -> plan -> (print | execute). The only module that
imports Typer, prints, or exits. Heavy modules (git, torch) are imported inside commands, so `--help` is fast.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import BuilderError, BuildFailed, ValidationErrors

app = typer.Typer(name="builder", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Source builds of mobile PyTorch: pinned releases, Android/iOS/host, packages, manifests.")
recipes_app = typer.Typer(help="The releases builder knows.", no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")
ndk_app = typer.Typer(help="Android NDKs: list, install.", no_args_is_help=True)
app.add_typer(ndk_app, name="ndk")

log = logging.getLogger("builder")
STATE = {"debug": False}


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(exc: BaseException) -> None:
    """Turn a typed error into one or a few lines and the error's exit code."""
    err = _console(stderr=True)
    if isinstance(exc, ValidationErrors):
        err.print(f"[bold red]error:[/] {len(exc.problems)} problems:")
        for p in exc.problems:
            err.print(f"  - {p}", markup=False)
    elif isinstance(exc, BuildFailed):
        err.print(f"[bold red]build failed:[/] {exc.message}")
        err.print(f"  command: {exc.command}", markup=False)
        for line in exc.first_errors:
            err.print(f"  {line}", markup=False)
        err.print(f"  full log: {exc.log}", markup=False)
    else:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), markup=False)
    if STATE["debug"]:
        import traceback

        traceback.print_exception(exc)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def guarded(fn):
    """Run a command body; typed errors become messages + exit codes (tracebacks only with --debug)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BuilderError as exc:
            fail(exc)
        except KeyboardInterrupt:
            _console(stderr=True).print("interrupted: nothing half-installed; run the same command to resume")
            raise typer.Exit(130) from None
    return wrapper


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
         verbose: Annotated[bool, typer.Option("-v", "--verbose", help="More log lines.")] = False) -> None:
    STATE["debug"] = debug
    from rich.logging import RichHandler

    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=_console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s")
    log.setLevel(level)


# ------------------------------------------------------------------ build commands

Tag = Annotated[Optional[str], typer.Option("--tag", help="PyTorch release, e.g. v1.13.1 (see `builder recipes list`).")]
Abi = Annotated[Optional[list[str]], typer.Option("--abi", help="Android ABI (repeatable).")]
Define = Annotated[Optional[list[str]], typer.Option("-D", help="Extra CMake define KEY=VALUE (repeatable, last wins).")]


def _parse_defines(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    from .errors import UsageError

    out = []
    for item in items or ():
        if "=" not in item:
            raise UsageError(f"-D {item}: expected KEY=VALUE", hint="e.g. -D USE_XNNPACK=OFF")
        key, value = item.split("=", 1)
        out.append((key.strip(), value))
    return tuple(out)


def _build_command(target: str):
    def command(
        tag: Tag = None,
        abi: Abi = None,
        api_level: Annotated[Optional[int], typer.Option(help="Android API level.")] = None,
        ndk: Annotated[Optional[str], typer.Option(help="NDK version (20.0.5594570, r21e) or path.")] = None,
        force_ndk: Annotated[bool, typer.Option(help="Use an NDK outside the release's supported range.")] = False,
        install_ndk: Annotated[bool, typer.Option(help="Install the release's NDK first when it is missing.")] = False,
        ops: Annotated[Optional[Path], typer.Option("--ops", help="Operator list (YAML) for a selective build.")] = None,
        lite: Annotated[Optional[bool], typer.Option("--lite/--full-jit", help="Lite interpreter or full JIT.")] = None,
        vulkan: Annotated[bool, typer.Option(help="Vulkan backend (android, host).")] = False,
        metal: Annotated[bool, typer.Option(help="Metal backend (ios).")] = False,
        coreml: Annotated[bool, typer.Option(help="Core ML delegate (ios).")] = False,
        feature: Annotated[Optional[list[str]], typer.Option(help="Other features: vulkan_fp16, tracing_based, lightweight_dispatch, ...")] = None,
        platform: Annotated[Optional[list[str]], typer.Option(help="iOS platform: OS, SIMULATOR.")] = None,
        arch: Annotated[Optional[list[str]], typer.Option(help="iOS arch: arm64, x86_64.")] = None,
        deployment_target: Annotated[Optional[str], typer.Option(help="iOS deployment target.")] = None,
        define: Define = None,
        system_lib: Annotated[Optional[list[str]], typer.Option(help="Use a system copy instead of a submodule (xnnpack, cpuinfo, ...).")] = None,
        skip_submodule: Annotated[Optional[list[str]], typer.Option(help="Build without an optional submodule (see `builder recipes show`).")] = None,
        out: Annotated[Optional[Path], typer.Option(help="Output folder (default ./builder-out).")] = None,
        repo: Annotated[Optional[str], typer.Option(help="PyTorch repository URL.")] = None,
        mirror: Annotated[Optional[str], typer.Option(help="URL prefix replacing https://github.com/ for the repo and every submodule.")] = None,
        source: Annotated[Optional[Path], typer.Option(help="Use an existing checkout.")] = None,
        allow_unpinned: Annotated[bool, typer.Option(help="Accept a tag that does not resolve to the recipe's commit.")] = False,
        cache: Annotated[Optional[str], typer.Option(help="Compiler cache: auto, sccache, ccache, none.")] = None,
        jobs: Annotated[Optional[int], typer.Option("-j", "--jobs", help="Parallel jobs.")] = None,
        page_size_16k: Annotated[bool, typer.Option("--16k-pages", help="Link for 16 KB pages (Google Play).")] = False,
        config: Annotated[Optional[Path], typer.Option(help="Config file (default ./builder.toml).")] = None,
        size_levers: Annotated[bool, typer.Option("--size-levers/--no-size-levers", help="Every size lever the release turns on by default for this target (see `builder recipes show`).")] = False,
        lever: Annotated[Optional[list[str]], typer.Option("--lever", help="A size lever by name (repeatable): selected_ops, gc_sections, min_size_rel, force_load_registrations, strip, lto, lightweight_dispatch.")] = None,
        dry_run: Annotated[bool, typer.Option(help="Print the plan; run nothing.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: the plan as JSON.")] = False,
    ) -> None:
        from .config import BuildRequest

        features = [f for f, on in (("vulkan", vulkan), ("metal", metal), ("coreml", coreml)) if on]
        request = BuildRequest(
            target=target, tag=tag, abis=tuple(abi or ()), api_level=api_level, ops_file=ops, lite=lite,
            features=tuple(features + list(feature or ())), platforms=tuple(platform or ()),
            arches=tuple(arch or ()), deployment_target=deployment_target, defines=_parse_defines(define),
            install_ndk=install_ndk, system_libs=tuple(system_lib or ()), skip_submodules=tuple(skip_submodule or ()), out=out, ndk=ndk, force_ndk=force_ndk, repo=repo,
            mirror=mirror, source_dir=source, allow_unpinned=allow_unpinned, cache=cache, jobs=jobs,
            page_size_16k=page_size_16k, config_file=config, size_levers=size_levers, levers=tuple(lever or ()))
        run_build(request, dry_run=dry_run or as_json, as_json=as_json)

    command.__name__ = target
    command.__doc__ = {"android": "Build libtorch for Android ABIs with the NDK.",
                       "ios": "Build libtorch for iOS slices (macOS only; the plan works anywhere).",
                       "host": "Build the release's mobile configuration with the host compiler."}[target]
    return guarded(command)


for _target in ("android", "ios", "host"):
    app.command(_target)(_build_command(_target))


def run_build(request, *, dry_run: bool, as_json: bool) -> None:
    from .config import resolve
    from .errors import ToolchainError
    from .plan import plan

    config = resolve(request)
    the_plan = plan(config)
    if dry_run:
        if as_json:
            sys.stdout.write(json.dumps(the_plan.to_json(), indent=2) + "\n")
        else:
            sys.stdout.write(the_plan.to_text())
        return
    for warning in config.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    if config.target == "ios" and config.host_os != "Darwin":
        raise ToolchainError("iOS builds need macOS with Xcode; this host is " + config.host_os,
                             hint="run with --dry-run to see the plan, or build on a Mac")
    _execute_with_progress(the_plan)


def _execute_with_progress(the_plan) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from .execute import execute, hit_rate

    console = _console(stderr=True)
    bars: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        def on_event(ev) -> None:
            key = ev.slice or "source"
            if key not in bars:
                bars[key] = progress.add_task(key, total=None)
            if ev.kind == "progress":
                progress.update(bars[key], completed=ev.done, total=ev.total, description=f"{key}: {ev.title}")
            elif ev.kind in ("step", "skip", "done"):
                progress.update(bars[key], description=ev.title)
        result = execute(the_plan, on_event)
    for s in result.slices:
        console.print(f"{s.name}: {'up to date' if s.skipped else 'built'} -> {s.install_dir} ({s.seconds:.1f} s)")
    for artifact in result.artifacts:
        console.print(f"artifact: {artifact} (manifest: {artifact}.manifest.json)")
    if the_plan.config.launcher is not None:
        console.print(f"compiler cache ({the_plan.config.launcher.name}): hit rate {hit_rate(result.cache_stats)}")
    console.print(f"done in {result.seconds:.1f} s")


# ------------------------------------------------------------------ recipes

@recipes_app.command("list")
@guarded
def recipes_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The supported releases."""
    from .recipes import load_all

    rows = [{"tag": r.tag, "commit": r.commit, "verified": r.commit_verified, "targets": list(r.targets),
             "features": sorted(r.features), "ndk_tested": str(r.ndk_tested)} for r in load_all()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("tag", "commit", "targets", "features", "NDK tested")
    for row in rows:
        commit = (row["commit"] or "?")[:12] + ("" if row["verified"] else " (unverified)")
        table.add_row(row["tag"], commit, ", ".join(row["targets"]), ", ".join(row["features"]), row["ndk_tested"])
    _console().print(table)


@recipes_app.command("show")
@guarded
def recipes_show(tag: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Everything builder knows about one release."""
    from .recipes import load_recipe, summary

    data = summary(load_recipe(tag))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    from rich.pretty import Pretty

    _console().print(Pretty(data))


# ------------------------------------------------------------------ doctor, clean

@app.command()
@guarded
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What this machine has: git, CMake/Ninja, compilers, caches, NDKs (and the releases each builds), SDK, JDK, Xcode."""
    import dataclasses
    import os
    import platform as platform_mod

    from .doctor import check

    rows = check(dict(os.environ), Path.home(), platform_mod.system())
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("", "what", "", "details")
    for r in rows:
        table.add_row(r.section, r.name, "[green]ok[/]" if r.found else "[red]--[/]", r.detail)
    _console().print(table)


@app.command()
@guarded
def clean(out: Annotated[Path, typer.Option(help="Output folder whose builds to clean.")] = Path("builder-out"),
          tag: Annotated[Optional[str], typer.Option(help="Only builds of this release.")] = None,
          target: Annotated[Optional[str], typer.Option(help="Only android, ios or host builds.")] = None,
          all_: Annotated[bool, typer.Option("--all", help="Every build folder under --out.")] = False,
          dry_run: Annotated[bool, typer.Option(help="Show what would be freed.")] = False) -> None:
    """Remove build folders and show what it frees (one tag, one target, or --all)."""
    from .clean import find_builds, human, remove, select
    from .errors import UsageError

    if not (all_ or tag or target):
        raise UsageError("say what to clean", hint="use --tag TAG, --target T or --all")
    chosen = select(find_builds(out), tag=tag, target=target)
    console = _console()
    for b in chosen:
        console.print(f"{human(b.size):>9}  {b.path}  ({b.tag} {b.target} {b.slice})")
    total = sum(b.size for b in chosen)
    if dry_run:
        console.print(f"would free {human(total)} in {len(chosen)} folder(s)")
        return
    console.print(f"freed {human(remove(chosen))} in {len(chosen)} folder(s)")


# ------------------------------------------------------------------ ndk, docker

@ndk_app.command("list")
@guarded
def ndk_list(all_hosts: Annotated[bool, typer.Option(help="Archives for every host OS.")] = False) -> None:
    """NDKs builder can install (pinned checksums) and the ones installed."""
    import os
    import platform as platform_mod

    from rich.table import Table

    from .toolchains.ndk import find_ndks
    from .toolchains.ndk_install import host_os, list_rows, load_catalog

    rows = list_rows(load_catalog(), find_ndks(dict(os.environ), Path.home()),
                     None if all_hosts else host_os(platform_mod.system()))
    table = Table(*[f.replace("_", " ") for f in rows[0].__dataclass_fields__] if rows else ["none"])
    for row in rows:
        table.add_row(*[str(getattr(row, f)) for f in row.__dataclass_fields__])
    _console().print(table)


@ndk_app.command("install")
@guarded
def ndk_install(version: str,
                sdk: Annotated[Optional[Path], typer.Option(help="Android SDK folder (NDK goes to <sdk>/ndk/<revision>).")] = None,
                mirror: Annotated[Optional[str], typer.Option(help="Base URL serving the NDK archives.")] = None,
                allow_unverified: Annotated[bool, typer.Option(help="Accept checksums not read from Google.")] = False,
                keep_archive: Annotated[bool, typer.Option(help="Keep the downloaded zip.")] = False) -> None:
    """Download, verify (pinned checksum) and unpack an NDK; resumable."""
    import os
    import platform as platform_mod

    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from .config import Environment, cache_dir
    from .toolchains.ndk import default_sdk_root
    from .toolchains.ndk_install import host_os, install_ndk

    env = Environment.current()
    sdk_root = sdk or default_sdk_root(dict(os.environ), Path.home(), platform_mod.system())
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=_console(stderr=True)) as progress:
        task = progress.add_task(f"NDK {version}", total=None)

        def on_progress(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)
        kwargs = {"base_url": mirror} if mirror else {}
        result = install_ndk(version, sdk_root=sdk_root, download_dir=cache_dir(env) / "downloads",
                             host=host_os(platform_mod.system()), progress=on_progress,
                             allow_unverified=allow_unverified, keep_archive=keep_archive, **kwargs)
    for w in result.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {w}")
    state = "already installed" if result.already_installed else "installed"
    _console().print(f"NDK {result.info.revision} {state} at {result.info.path}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@guarded
def docker(ctx: typer.Context,
           image: Annotated[str, typer.Option(help="Build image.")] = "builder-android:latest",
           cache_dir_: Annotated[Optional[list[str]], typer.Option("--cache-dir", help="NAME=PATH cache mount (builder, sccache).")] = None,
           user: Annotated[Optional[str], typer.Option(help="uid:gid inside the container.")] = None,
           run: Annotated[bool, typer.Option(help="Run it (needs a Docker engine); default: print it.")] = False) -> None:
    """Print (or run) the exact `docker run` for a build: `builder docker -- android --abi arm64-v8a`."""
    import os

    from . import proc
    from .docker import docker_run_argv
    from .errors import UsageError

    caches = {}
    for item in cache_dir_ or ():
        if "=" not in item:
            raise UsageError(f"--cache-dir {item}: expected NAME=PATH", hint="e.g. --cache-dir sccache=~/.cache/sccache")
        name, path = item.split("=", 1)
        caches[name] = Path(path).expanduser().resolve()
    argv = docker_run_argv(image, Path.cwd(), caches, list(ctx.args), user=user or f"{os.getuid()}:{os.getgid()}")
    if run:
        raise typer.Exit(proc.stream(argv, on_line=lambda line: _console().print(line, markup=False)))
    sys.stdout.write(proc.quote(argv) + "\n")


# ------------------------------------------------------------------ models

def _checkout_for(tag: str | None, source: Path | None) -> Path | None:
    """A release tree to check operators against: --source, else the cached work tree of --tag."""
    from .config import Environment, cache_dir
    from .source import SourceSpec

    if source is not None:
        return source
    if tag is None:
        return None
    tree = SourceSpec(cache_dir=cache_dir(Environment.current()) / "git").worktree_dir(tag)
    return tree if tree.is_dir() else None


@app.command()
@guarded
def ops(models: Annotated[list[Path], typer.Argument(help="TorchScript (.pt) or lite (.ptl) models.")],
        output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the op list here.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="plain (SELECTED_OP_LIST) or tracing.")] = "plain",
        custom_op: Annotated[Optional[list[str]], typer.Option(help="Operator registered by your own code.")] = None,
        tag: Tag = None,
        source: Annotated[Optional[Path], typer.Option(help="Release checkout to validate against.")] = None) -> None:
    """Root operators of models, merged, validated against the release, in its SELECTED_OP_LIST format."""
    from .errors import UsageError
    from .models.ops import collect_ops, format_op_list, load_known_ops, tracing_supported, validate_ops, \
        write_op_list
    from .recipes import load_recipe

    if fmt not in ("plain", "tracing"):
        raise UsageError(f"unknown --format '{fmt}'", hint="use plain or tracing")
    recipe = load_recipe(tag) if tag else None
    checkout = _checkout_for(tag, source)
    if fmt == "tracing" and not ((recipe and recipe.has("tracing_based")) or (checkout and tracing_supported(checkout))):
        raise UsageError(f"{tag or 'this release'} has no tracing-based selective build", hint="use --format plain")
    oplist = collect_ops(models)
    err = _console(stderr=True)
    if checkout is not None:
        for warning in validate_ops(oplist.names, load_known_ops(checkout), tuple(custom_op or ())):
            err.print(f"[yellow]warning:[/] {warning}")
    else:
        err.print("[yellow]note:[/] no release checkout to validate against (pass --tag with a cached checkout, or --source)")
    for use in oplist.ops:
        err.print(f"  {use.name:<40} {', '.join(Path(m).name for m in use.models)}", markup=False)
    err.print(f"{len(oplist.ops)} operators from {len(models)} model(s)")
    if output is None:
        sys.stdout.write(format_op_list(oplist, fmt))
    else:
        write_op_list(oplist, output, fmt)
        err.print(f"wrote {output}")


@app.command()
@guarded
def export(model: Annotated[Path, typer.Argument(help="TorchScript model (.pt).")],
           output: Annotated[Path, typer.Option("-o", "--output", help="Lite-interpreter file to write.")],
           tag: Tag = None,
           backend: Annotated[str, typer.Option(help="cpu, vulkan or metal (where the release has it).")] = "cpu",
           optimize: Annotated[bool, typer.Option("--optimize/--no-optimize", help="Run optimize_for_mobile.")] = True) -> None:
    """Export a model for a release's lite interpreter (bytecode the release reads; backported if needed)."""
    from .config import DEFAULT_TAG
    from .models.export import ExportTarget, export_model
    from .recipes import load_recipe

    recipe = load_recipe(tag or DEFAULT_TAG)
    backends = frozenset({"cpu"} | {b for b in ("vulkan", "metal") if recipe.has(b)})
    target = ExportTarget(recipe.bytecode_max or 4, backends, recipe.bytecode_min or 4)
    res = export_model(model, output, target, optimize=optimize, backend=backend)
    note = f" (backported from v{res.torch_bytecode_version})" if res.backported else ""
    _console().print(f"wrote {res.output}: bytecode v{res.bytecode_version}{note} for {recipe.tag}, "
                     f"{len(res.ops)} operators, torch {res.torch_version}")


@app.command()
@guarded
def verify(model: Annotated[Path, typer.Option("--model", help="Lite-interpreter model (.ptl).")],
           build: Annotated[Optional[Path], typer.Option("--build", help="A host build's install folder (or its build folder).")] = None,
           inputs: Annotated[Optional[Path], typer.Option(help="Inputs (.pt tensor/list, or builder tensor file).")] = None,
           shapes: Annotated[str, typer.Option(help="Random inputs of these shapes, e.g. 1x3x224x224.")] = "1x3x224x224",
           seed: Annotated[int, typer.Option(help="Seed for random inputs.")] = 0,
           rtol: Annotated[float, typer.Option(help="Relative tolerance.")] = 1e-4,
           atol: Annotated[float, typer.Option(help="Absolute tolerance.")] = 1e-5,
           link: Annotated[str, typer.Option(help="How the runner links libtorch_cpu: whole-archive, registrations (objects that register operators) or initializers (every object with a static initialiser).")] = "whole-archive",
           gc_sections: Annotated[bool, typer.Option("--gc-sections/--no-gc-sections", help="Link with -Wl,--gc-sections.")] = False) -> None:
    """Compile a runner against a host build, run the model on it and compare with torch eager."""
    from .config import Environment, cache_dir
    from .models.verify import Tolerance, compile_runner, find_install, load_inputs, make_inputs, parse_shapes, \
        verify_model

    if build is not None and (build / "install").is_dir():
        build = build / "install"
    install = find_install(build)
    work = cache_dir(Environment.current()) / "verify"
    runner = compile_runner(install, work, link_mode=link, extra_link_args=_gc_flags(gc_sections))
    values = load_inputs(inputs) if inputs else make_inputs(parse_shapes(shapes), seed)
    res = verify_model(model, runner, values, work, Tolerance(rtol=rtol, atol=atol))
    _console().print(f"ok: {model.name} on {install.root} (link {link}): {len(res.outputs)} output(s) match torch "
                     f"{res.torch_version} (max abs {res.max_abs_error:.2e}, max rel {res.max_rel_error:.2e}); "
                     f"forward {res.forward_ms:.1f} ms")


def _gc_flags(on: bool) -> tuple[str, ...]:
    return ("-Wl,--gc-sections",) if on else ()


def _install_dir(path: Path) -> Path:
    return path / "install" if (path / "install").is_dir() else path


@app.command()
@guarded
def size(build: Annotated[Path, typer.Option("--build", help="A host build's install folder (or its build folder).")],
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

    from .config import Environment, cache_dir
    from .size import compare, measure_install

    work = cache_dir(Environment.current()) / "verify"
    values = tol = None
    if model is not None:
        from .models.verify import Tolerance, load_inputs, make_inputs, parse_shapes

        values = load_inputs(inputs) if inputs else make_inputs(parse_shapes(shapes), 0)
        tol = Tolerance(rtol=1e-3, atol=1e-4)
    flags = _gc_flags(gc_sections)
    report = measure_install(_install_dir(build), work, link_mode=link, link_flags=flags,
                             label_=f"{link}", model=model, inputs=values, tolerance=tol)
    base = None
    if baseline is not None or baseline_link is not None:
        base_mode = baseline_link or "whole-archive"
        base = measure_install(_install_dir(baseline or build), work, link_mode=base_mode, link_flags=flags,
                               label_=f"baseline {base_mode}", model=model, inputs=values, tolerance=tol)
    cmp = compare(report, base, top)
    if as_json:
        def plain(obj):
            return str(obj) if isinstance(obj, Path) else obj
        data = {"report": dataclasses.asdict(report), "baseline": dataclasses.asdict(base) if base else None,
                "ratio": cmp.total.ratio}
        for key in ("report", "baseline"):
            if data[key]:
                data[key]["contributors"] = data[key]["contributors"][:top]
        sys.stdout.write(json.dumps(data, indent=2, default=plain) + "\n")
        return
    _print_size(cmp)


def _print_size(cmp) -> None:
    from rich.table import Table

    from .size import human

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

    def ratio(row) -> str:
        return f"{row.ratio:.2f}" if row.ratio is not None else "-"

    for title, rows in (("sections (stripped)", (cmp.total, *cmp.sections)),
                        ("largest contributors (from the linker map)", cmp.contributors)):
        cols = [title, cmp.report.label] + ([cmp.baseline.label, "ratio"] if with_base else [])
        table = Table(*cols)
        for row in rows:
            cells = [row.name, human(row.size)] + ([human(row.baseline), ratio(row)] if with_base else [])
            table.add_row(*cells)
        console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
