"""Build commands (android, ios, host) and the recipes they read: argv -> BuildRequest -> resolve -> plan ->
(print | execute)."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from .app import STATE, Abi, Define, Tag, _console, app, guarded, machine, recipes_app, settings

if TYPE_CHECKING:
    from rich.console import Console

    from ..config import BuildRequest
    from ..execute import RunResult
    from ..plan import Plan


def _parse_defines(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    from ..errors import UsageError

    out = []
    for item in items or ():
        if "=" not in item:
            raise UsageError(f"-D {item}: expected KEY=VALUE", hint="e.g. -D USE_XNNPACK=OFF")
        key, value = item.split("=", 1)
        out.append((key.strip(), value))
    return tuple(out)


def _build_command(target: str) -> Callable[..., None]:
    def command(
        tag: Tag = None,
        abi: Abi = None,
        api_level: Annotated[Optional[int], typer.Option(help="Android API level.")] = None,
        ndk: Annotated[Optional[str], typer.Option(help="NDK version (20.0.5594570, r21e) or path.")] = None,
        force_ndk: Annotated[bool, typer.Option(help="Use an NDK outside the release's supported range.")] = False,
        install_ndk: Annotated[bool, typer.Option(help="Install the release's NDK first when it is missing.")] = False,
        ops: Annotated[Optional[Path], typer.Option("--ops", help="Operator list (YAML) for a selective build.")] = None,
        model: Annotated[Optional[list[Path]], typer.Option("--model", help="Build for these models (.pt/.ptl, repeatable): their operators become the op list; host builds then verify each model against torch.")] = None,
        op: Annotated[Optional[list[str]], typer.Option("--op", help="With --model or --ops: add this release operator as a root (repeatable; what your own C++ calls, e.g. the operators `builder bench`'s program needs).")] = None,
        verify: Annotated[bool, typer.Option("--verify/--no-verify", help="With --model on host: run each model on the build and compare with torch.")] = True,
        shapes: Annotated[str, typer.Option(help="With --model on host: random inputs of these shapes for the check.")] = "1x3x224x224",
        lite: Annotated[Optional[bool], typer.Option("--lite/--full-jit", help="Lite interpreter or full JIT.")] = None,
        aar: Annotated[bool, typer.Option("--aar/--no-aar", help="android: also build the release's JNI library per ABI, classes.jar, the AAR and a Maven folder (needs a JDK, android.jar and the Maven jars the release pins).")] = True,
        android_sdk: Annotated[Optional[Path], typer.Option(help="android: an Android SDK with android.jar of the release's compileSdk (default ANDROID_HOME, ANDROID_SDK_ROOT, ~/Android/Sdk, ~/Library/Android/sdk).")] = None,
        maven_repo: Annotated[Optional[Path], typer.Option(help="android: a Maven repository folder holding the release's Java dependencies (default ~/.m2/repository, then the Gradle cache).")] = None,
        maven_url: Annotated[Optional[str], typer.Option(help="android, with --install-ndk: the Maven repository missing Java dependencies are downloaded from (default Maven Central).")] = None,
        vulkan: Annotated[Optional[bool], typer.Option("--vulkan/--no-vulkan", help="Vulkan backend (android, host); default: the release's (its recipe; on for Android where its CMakeLists.txt says so, as PyTorch ships it). --no-vulkan is also a size lever.")] = None,
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
        mirror: Annotated[Optional[str], typer.Option(help="URL prefix replacing https://github.com/ for the repo and every submodule (https://gitlab.com/ becomes PREFIXgitlab.com/).")] = None,
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
        verbose: Annotated[bool, typer.Option("-v", "--verbose", help="More log lines (also before the command).")] = False,
    ) -> None:
        import logging

        from ..config import BuildRequest
        from ..errors import UsageError

        if verbose and not STATE["debug"]:
            logging.getLogger("builder").setLevel(logging.INFO)
        if model and ops:
            raise UsageError("--model and --ops both give the operator list", hint="pass one of them")
        if op and not (model or ops):
            raise UsageError("--op adds operators to an op list: pass --model or --ops too",
                             hint="or write a list of your own: builder ops MODEL --op NAME -o ops.yaml")
        if model or op:
            ops = _ops_for(target, model or [], ops, tuple(op or ()))
        features = [f for f, on in (("vulkan", vulkan), ("metal", metal), ("coreml", coreml)) if on]
        without = ("vulkan",) if vulkan is False else ()
        request = BuildRequest(
            target=target, tag=tag, abis=tuple(abi or ()), api_level=api_level, ops_file=ops, lite=lite,
            features=tuple(features + list(feature or ())), without=without, platforms=tuple(platform or ()),
            arches=tuple(arch or ()), deployment_target=deployment_target, defines=_parse_defines(define),
            install_ndk=install_ndk, system_libs=tuple(system_lib or ()), skip_submodules=tuple(skip_submodule or ()), out=out, ndk=ndk, force_ndk=force_ndk, repo=repo,
            mirror=mirror, source_dir=source, allow_unpinned=allow_unpinned, cache=cache, jobs=jobs,
            page_size_16k=page_size_16k, config_file=config, size_levers=size_levers, levers=tuple(lever or ()),
            models=tuple(model or ()), verify_models=verify, shapes=shapes, aar=aar, android_sdk=android_sdk,
            maven_repo=maven_repo, maven_url=maven_url)
        run_build(request, dry_run=dry_run or as_json, as_json=as_json)

    command.__name__ = target
    command.__doc__ = {"android": "Build libtorch for Android ABIs with the NDK, then the AAR (JNI library, classes.jar, Maven folder).",
                       "ios": "Build libtorch for iOS slices (macOS only; the plan works anywhere).",
                       "host": "Build the release's mobile configuration with the host compiler."}[target]
    return guarded(command)


# Per-target --help: an option of another target is hidden there (still accepted, then refused with the reason).
OPTION_TARGETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("abi", "api_level", "ndk", "force_ndk", "install_ndk", "aar", "android_sdk", "maven_repo", "maven_url",
                     "page_size_16k"), ("android",)),
    **dict.fromkeys(("metal", "coreml", "platform", "arch", "deployment_target"), ("ios",)),
    "vulkan": ("android", "host"),
}


def _command_class(target: str) -> type[TyperCommand]:
    class TargetCommand(TyperCommand):
        def get_params(self, ctx: Any) -> Any:   # Typer vendors click: its own Context/Parameter types
            params: list[Any] = super().get_params(ctx)
            for param in params:
                if param.param_type_name == "option" and target not in OPTION_TARGETS.get(param.name or "", (target,)):
                    param.hidden = True
            return params

    return TargetCommand


for _target in ("android", "ios", "host"):
    app.command(_target, cls=_command_class(_target))(_build_command(_target))


def _ops_for(target: str, models: list[Path], ops: Path | None, extra: tuple[str, ...]) -> Path:
    """The op list a build reads: the models' operators (or the --ops file's) plus --op's, in builder's cache."""
    from ..errors import UsageError
    from ..models.ops import check_names, ops_file_for, ops_file_with

    added = check_names(extra, "--op")
    for m in models:
        if not m.is_file():
            raise UsageError(f"model not found: {m}", hint="pass a TorchScript (.pt) or lite-interpreter (.ptl) file")
    cache = settings(target=target).cache_dir
    assert cache is not None
    path = ops_file_with(ops, added, cache) if ops is not None else ops_file_for(models, cache, added)
    source = f"{ops}" if ops is not None else f"{len(models)} model(s)"
    _console(stderr=True).print(f"op list from {source}" + (f" + {len(added)} --op" if added else "") + f": {path}")
    return path


def run_build(request: BuildRequest, *, dry_run: bool, as_json: bool) -> Plan:
    from ..config import resolve
    from ..plan import plan

    config = resolve(request, machine())
    the_plan = plan(config)
    if dry_run:
        if as_json:
            sys.stdout.write(json.dumps(the_plan.to_json(), indent=2) + "\n")
        else:
            sys.stdout.write(the_plan.to_text())
        return the_plan
    for warning in config.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    _execute_with_progress(the_plan)
    return the_plan


def _execute_with_progress(the_plan: Plan) -> None:
    from ..execute import hit_rate

    console = _console(stderr=True)
    result = _run_with_bar(the_plan, console) if console.is_terminal else _run_with_lines(the_plan)
    for s in result.slices:
        console.print(f"{s.name}: {'up to date' if s.skipped else 'built'} -> {s.install_dir} ({s.seconds:.1f} s)")
    for artifact in result.artifacts:
        console.print(f"artifact: {artifact} (manifest: {artifact}.manifest.json)")
    for line in result.verified:
        console.print(line)
    if the_plan.config.launcher is not None:
        console.print(f"compiler cache ({the_plan.config.launcher.name}): hit rate {hit_rate(result.cache_stats)}")
    console.print(f"done in {result.seconds:.1f} s")


def _run_with_lines(the_plan: Plan) -> RunResult:
    """Not a terminal (a CI log, a redirected stderr): plain progress lines at a steady interval, flushed."""
    from ..execute import execute
    from .progress import PlainProgress, interval_from

    with PlainProgress(sys.stderr, interval_from(machine().environ)) as lines:
        return execute(the_plan, lines.on_event)


def _run_with_bar(the_plan: Plan, console: Console) -> RunResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..execute import Event, execute

    bars: dict[str, TaskID] = {}
    # Refreshing costs builder CPU (rich's refresh thread: 0.7% of a core for a whole real-tree build at 10 Hz, 47 s
    # in 6,300 s); 4 Hz is enough for a build.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False, refresh_per_second=4) as progress:
        def on_event(ev: Event) -> None:
            key = ev.slice or "source"
            if key not in bars:
                bars[key] = progress.add_task(key, total=None)
            if ev.kind == "progress":
                progress.update(bars[key], completed=ev.done, total=ev.total, description=f"{key}: {ev.title}")
            elif ev.kind in ("step", "skip", "done"):
                progress.update(bars[key], description=ev.title)
        return execute(the_plan, on_event)


# ------------------------------------------------------------------ recipes

@recipes_app.command("list")
@guarded
def recipes_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The supported releases."""
    from ..recipes import load_all

    rows: list[dict[str, Any]] = [
        {"tag": r.tag, "default": r.default, "commit": r.commit, "verified": r.commit_verified,
         "facts": r.provenance.facts, "targets": list(r.targets),
         "features": sorted(r.features), "ndk_tested": str(r.ndk_tested)} for r in load_all(settings().recipes_dir)]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("tag", "commit", "facts", "targets", "features", "NDK tested")
    for row in rows:
        commit = (row["commit"] or "?")[:12] + ("" if row["verified"] else " (unverified)")
        facts = "real tree" if row["facts"] == "real_tree" else "RECONSTRUCTED"
        table.add_row(row["tag"] + (" (default)" if row["default"] else ""), commit, facts, ", ".join(row["targets"]),
                      ", ".join(row["features"]), row["ndk_tested"])
    _console().print(table)


@recipes_app.command("show")
@guarded
def recipes_show(tag: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Everything builder knows about one release."""
    from ..recipes import load_recipe, summary

    data = summary(load_recipe(tag, settings().recipes_dir))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _console().print("\n".join(recipe_text(data)), markup=False, highlight=False)


def recipe_text(d: dict[str, Any]) -> list[str]:
    """`builder recipes show` for people: what the release is, needs, builds and offers (--json has everything)."""
    ndk, prov = d["ndk"], d["provenance"]
    lines = [f"{d['tag']}: commit {d['commit']} ({'verified' if d['commit_verified'] else 'NOT verified'}: "
             f"{d['commit_source']})",
             f"facts: {prov['label'].upper() if prov['facts'] == 'reconstructed' else prov['label']}"
             + (f" ({prov['tree']})" if prov["tree"] else "")
             + (f"; also from commits {', '.join(c[:12] for c in prov['from_commits'])}" if prov["from_commits"] else ""),
             *(f"  {line}" for line in prov["summary"].splitlines()),
             f"needs: Python {d['python']}, CMake {d['cmake']}; NDK {ndk['supported']}, tested "
             f"{', '.join(str(t).lstrip('=') for t in ndk['tested'])}, default {ndk['default']}; "
             f"reads lite-interpreter bytecode {d['bytecode']['min']}..{d['bytecode']['max']}", "", "targets:"]
    for name, t in d["targets"].items():
        what = [t["script"], t["build_type"]]
        if t.get("abis"):
            what.append(f"ABIs {' '.join(t['abis'])} (default {' '.join(t['default_abis'])}), API {t['api_level']}, "
                        f"STL {t['stl']}")
        lines.append(f"  {name}: {', '.join(str(w) for w in what)}; packages {t['artifact_lite']} / {t['artifact_full']}")
        lines.append(f"    submodules ({len(t['submodules'])}): {' '.join(t['submodules'])}")
    lines += ["", "features (on by default where listed):"]
    for name, f in d["features"].items():
        default = f" [default: {', '.join(f['default'])}]" if f["default"] else ""
        lines.append(f"  {name} ({', '.join(f['targets'])}){default}")
    lines += ["", "size levers (--size-levers turns on the default ones; --lever NAME):"]
    for name, lv in d["size_levers"].items():
        lines.append(f"  {name}{' [default]' if lv['default'] else ''}: {lv['description']}")
    lines += ["", "optional submodules (--skip-submodule):"]
    lines += [f"  {path}: {lost}" for path, lost in d["optional_submodules"].items()] or ["  none"]
    lines += ["", "system libraries (--system-lib): " + (", ".join(d["system_libs"]) or "none"),
              "", f"read from {len(d['sources'])} files of the release: {', '.join(d['sources'])}"]
    if d.get("notes"):
        lines += ["", "notes:", *(f"  {line}" for line in str(d["notes"]).strip().splitlines())]
    return lines


