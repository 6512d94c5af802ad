"""Run a Plan: each step by its type, with stamps, logs, progress and summaries.

Decides nothing about *what* to build (the target did, in the plan); it decides only what is already done:
- a CMake project whose stamp matches its key (and whose install exists) is skipped: the no-op re-run;
- configure is skipped when the folder was configured with the same argv;
- install goes to a staging folder that is renamed into place, so an interrupted build never leaves a
  half-installed tree, and the next run resumes (Ninja rebuilds only what is missing);
- an artifact whose manifest records the same key is not written again.

Steps run in plan order; the source steps run as one checkout (they share its locks), the steps of one CMake project
(same build folder) as one unit (they share its stamp and, for libtorch, the source tree's build lock).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never, get_args

from . import __version__, install_graph, intree, proc, source
from . import plan as planning
from .clean import META
from .errors import BuildFailed
from .hashing import sha256_file
from .package import manifest as manifest_mod
from .package.archive import source_date_epoch
from .plan import STAMP, Plan
from .recipes import Recipe
from .source import CheckoutResult
from .steps import (
    AarStep,
    BuildFacts,
    CMakeBuildStep,
    CMakeConfigureStep,
    CMakeInstallStep,
    CMakeProject,
    CMakeStep,
    FetchTagStep,
    HostSdkStep,
    JavaCompileStep,
    JniViewStep,
    ManifestStep,
    MavenFetchStep,
    MavenStep,
    NdkInstallStep,
    PatchStep,
    PlatformInstallStep,
    SourceStep,
    Step,
    StripStep,
    SubmodulesStep,
    VerifyCommitStep,
    VerifyStep,
    WorkTreeStep,
)

log = logging.getLogger("builder")
PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]")
ERROR_RE = re.compile(r"(error:|error [A-Z]+\d+:|CMake Error|undefined reference|fatal error|No such file|^Error: )")
CACHE_ENTRY_RE = re.compile(r'^("[^"]*"|[^=]+)=')
CONFIGURED = ".builder-configured.json"


@dataclass(frozen=True)
class Event:
    kind: str                 # step | progress | skip | done
    slice: str | None
    title: str
    done: int = 0
    total: int = 0


@dataclass
class SliceResult:
    name: str
    install_dir: Path
    skipped: bool
    seconds: float
    log: Path


@dataclass
class RunResult:
    slices: list[SliceResult] = field(default_factory=list)     # one per CMake project
    checkout: CheckoutResult | None = None
    cache_stats: dict[str, int] | None = None
    seconds: float = 0.0
    artifacts: tuple[Path, ...] = ()
    verified: tuple[str, ...] = ()                               # one line per model checked
    plan: Plan | None = None      # the plan run: keyed by the NDK installed and the commit actually checked out


Listener = Callable[[Event], None]


def _quiet(_: Event) -> None:
    return None


def execute(plan: Plan, on_event: Listener = _quiet) -> RunResult:
    plan.config.target.preflight(plan.config)
    start = time.monotonic()
    result = RunResult()
    run = _Run(plan, on_event, result)
    before = cache_stats(plan.config.launcher)
    pending, done = list(units(plan.steps)), set[str]()
    while pending:
        group = pending.pop(0)
        run.unit(group)
        done.add(_phase(group[0]))
        again = replanned(run.plan, group[0], result)
        if again is not None:    # the rest runs as the next run will plan it: with its keys
            run.plan = again
            pending = [g for g in units(again.steps) if _phase(g[0]) not in done]
    result.plan = run.plan
    after = cache_stats(plan.config.launcher)
    if before is not None and after is not None:
        result.cache_stats = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    result.seconds = time.monotonic() - start
    return result


def _phase(step: Step) -> str:
    match step:
        case NdkInstallStep() | PlatformInstallStep() | MavenFetchStep():
            return "ndk"
        case FetchTagStep() | VerifyCommitStep() | WorkTreeStep() | SubmodulesStep() | PatchStep():
            return "source"
        case _:
            return "build"


def replanned(plan: Plan, step: Step, result: RunResult) -> Plan | None:
    """The plan made again after ``step``'s unit ran, when that changed what the keys hold; else None."""
    if isinstance(step, NdkInstallStep):
        return planning.for_installed_ndk(plan)
    if _phase(step) == "source" and result.checkout is not None:
        return planning.for_checked_out(plan, result.checkout.commit)
    return None


def units(steps: Sequence[Step]) -> Iterator[tuple[Step, ...]]:
    """Consecutive steps that run as one: all source steps (one checkout), the steps of one CMake project (one build
    folder); every other step alone."""
    group: list[Step] = []
    for step in steps:
        if group and _unit_key(group[-1]) is not None and _unit_key(group[-1]) == _unit_key(step):
            group.append(step)
            continue
        if group:
            yield tuple(group)
        group = [step]
    if group:
        yield tuple(group)


def _unit_key(step: Step) -> object:
    match step:
        case FetchTagStep() | VerifyCommitStep() | WorkTreeStep() | SubmodulesStep() | PatchStep():
            return "source"
        case CMakeConfigureStep() | CMakeBuildStep() | CMakeInstallStep():
            return step.project.build_dir
        case _:
            return None


class _Run:
    """One execution: the plan, the listener, and what has run so far."""

    def __init__(self, plan: Plan, on_event: Listener, result: RunResult) -> None:
        self.plan, self.on_event, self.result = plan, on_event, result

    def unit(self, steps: tuple[Step, ...]) -> None:
        """Run one unit (see ``units``), dispatching on the type of its steps."""
        first = steps[0]
        match first:
            case NdkInstallStep():
                self.on_event(Event("step", None, first.title))
                _install_ndk(first)
            case PlatformInstallStep():
                from .toolchains.platform_install import install_platform

                self.on_event(Event("step", None, first.title))
                install_platform(first.api, sdk_root=first.sdk_root, download_dir=first.download_dir)
            case MavenFetchStep():
                from .toolchains.maven_fetch import fetch_jar

                self.on_event(Event("step", None, first.title))
                for coordinate in first.coordinates:
                    fetch_jar(coordinate, first.m2_repo, first.base_url)
            case FetchTagStep() | VerifyCommitStep() | WorkTreeStep() | SubmodulesStep() | PatchStep():
                self.on_event(Event("step", None, "source: checkout, submodules, patches"))
                t0 = time.monotonic()
                checkout = source.execute_checkout(_of_type(steps, SourceStep))
                log.info("source ready at %s (%.1f s)", checkout.worktree, time.monotonic() - t0)
                self.result.checkout = checkout
            case CMakeConfigureStep() | CMakeBuildStep() | CMakeInstallStep():
                self.result.slices.append(_run_project(first.project, _of_type(steps, CMakeStep), self.on_event,
                                                       owned_tree=self.plan.config.source.source_dir is None))
            case ManifestStep():
                self.on_event(Event("step", None, "package"))
                self.result.artifacts += tuple(self.manifests(first))
            case HostSdkStep():
                self.on_event(Event("step", None, "package"))
                self.result.artifacts += (self.host_sdk(first),)
            case JniViewStep() | StripStep() | JavaCompileStep() | AarStep() | MavenStep():
                self.on_event(Event("step", first.slice, first.title))
                log.info("%s", first.title)
                self.result.artifacts += self.android_output(first)
            case VerifyStep():
                self.on_event(Event("step", first.slice, first.title))
                self.result.verified += run_verify(first, self.plan.config.recipe)
            case _:
                assert_never(first)

    # -------------------------------------------------------------- package

    def inputs(self, facts: BuildFacts) -> manifest_mod.ManifestInputs:
        """What a manifest says went in: the plan's facts and what the checkout found."""
        c = self.plan.config
        ops: tuple[str, ...] | None = None
        ops_sha = None
        if c.ops_file is not None:
            from .hashing import sha256_file
            from .models.ops import read_op_list

            ops = tuple(read_op_list(c.ops_file).names)
            ops_sha = sha256_file(c.ops_file)
        checkout = self.result.checkout
        commit = checkout.commit if checkout else (c.recipe.commit or "")
        return manifest_mod.ManifestInputs(
            tag=c.recipe.tag, commit=commit,
            submodules=dict(checkout.submodules) if checkout else {},
            patches=tuple(manifest_mod.Patch(n, s) for n, s in checkout.patches) if checkout else (),
            toolchain=dict(facts.toolchain), cmake_version=str(c.cmake.version), ninja_version=str(c.ninja.version),
            defines=dict(facts.defines), ops=ops, op_list_sha256=ops_sha, target=facts.target,
            builder_version=__version__,
            source_date_epoch=source_date_epoch(c.source_date_epoch, c.source_path, checkout.commit if checkout
                                                else None))

    def manifests(self, step: ManifestStep) -> list[Path]:
        out = []
        for item in step.artifacts:
            if not _up_to_date(item.path, item.facts.key):
                details = {"key": item.facts.key, "slice": item.facts.slice, "env": dict(item.facts.env)}
                manifest = manifest_mod.build_manifest(self.inputs(item.facts), item.path,
                                                       kind="dir" if item.path.is_dir() else None, details=details)
                manifest_mod.write_manifest(manifest, manifest_mod.manifest_path(item.path))
            out.append(item.path)
        return out

    def epoch(self) -> int:
        c, checkout = self.plan.config, self.result.checkout
        return source_date_epoch(c.source_date_epoch, c.source_path, checkout.commit if checkout else None)

    def android_output(self, step: JniViewStep | StripStep | JavaCompileStep | AarStep | MavenStep
                       ) -> tuple[Path, ...]:
        """The AAR's parts (builder.targets.android_aar plans them; builder.package writes them)."""
        from . import jni
        from .package import android_outputs as out

        match step:
            case JniViewStep():
                if not jni.view_current(step.tree, step.spec, step.abi, step.libtorch_install, step.view):
                    jni.stage_view(step.tree, step.spec, step.abi, step.libtorch_install, step.view)
                    (step.view.parent / "build" / CONFIGURED).unlink(missing_ok=True)   # configure writes into it
                return ()
            case StripStep():
                out.strip_libraries(step.libs, step.extra_libs, step.include, step.strip_from, step.out)
                return ()
            case JavaCompileStep():
                (javac,) = step.commands()     # run exactly as the plan prints it
                out.compile_java(javac, step.source_root, step.exclude, step.classes_dir, step.argfile,
                                 step.classes_jar, step.sources_jar, source_date_epoch=self.epoch())
                return ()
            case AarStep():
                if not _up_to_date(step.dest, step.key):
                    written = out.write_aar(step.abi_roots, step.spec, step.classes_jar, step.resources, step.dest,
                                            source_date_epoch=self.epoch())
                    for warning in written.warnings:
                        log.warning("%s", warning)
                return ()      # the ManifestStep lists it, with its manifest
            case MavenStep():
                from .package.maven import Coordinates, Dependency, publish_aar

                published = publish_aar(step.aar, step.repo, Coordinates(step.artifact, step.version, step.group),
                                        [Dependency(*d) for d in step.dependencies], source_date_epoch=self.epoch(),
                                        sources_jar=step.sources_jar)
                return (published.version_dir,)
            case _:
                assert_never(step)

    def host_sdk(self, step: HostSdkStep) -> Path:
        from .package.host_sdk import package_host_sdk

        facts = step.facts
        if not _up_to_date(step.dest, facts.key):
            inputs = self.inputs(facts)
            log.info("packaging host SDK %s", step.dest)
            res = package_host_sdk(step.install_dir, step.dest, source_date_epoch=inputs.source_date_epoch)
            details: dict[str, Any] = {"key": facts.key, "slice": facts.slice, "env": dict(facts.env),
                                       "non_relocatable": list(res.non_relocatable)}
            manifest_mod.write_manifest(manifest_mod.build_manifest(inputs, step.dest, details=details),
                                        manifest_mod.manifest_path(step.dest))
        return step.dest

def run_verify(step: VerifyStep, recipe: Recipe) -> tuple[str, ...]:
    """Each model (exported to ``recipe``'s lite format first when it is TorchScript) runs on the install, linked
    the way the step says, and must match torch; one line per model."""
    from .models import _torch
    from .models.export import ExportTarget, export_model
    from .models.platform import toolchain_for
    from .models.runner import compile_runner, find_install
    from .models.verify import model_inputs, verify_model

    install = find_install(step.install_dir)
    runner = compile_runner(install, step.work_dir, link_mode=step.link_mode, extra_link_args=step.link_flags,
                            toolchain=toolchain_for(install.root), environ=step.tool_env)
    values = model_inputs(None, step.shapes)
    lines = []
    for model in step.models:
        lite = model
        if _torch.model_kind(model) != "lite":
            lite = export_model(model, step.work_dir / f"{model.stem}.ptl", ExportTarget.for_release(recipe),
                                optimize=False).output
        res = verify_model(lite, runner, values, step.work_dir)
        flags = "".join(f", {f}" for f in step.link_flags)
        lines.append(f"verified {model.name}: {len(res.outputs)} output(s) match torch {res.torch_version} "
                     f"(max abs {res.max_abs_error:.2e}; link {step.link_mode}{flags}; ran on {runner.launch.where})")
    return tuple(lines)


def _up_to_date(artifact: Path, key: str) -> bool:
    """The artifact and its manifest agree (the artifact's sha256 is the manifest's: a kill between writing one and
    the other leaves them disagreeing) and the manifest records ``key``."""
    try:
        data = manifest_mod.load_manifest(manifest_mod.manifest_path(artifact))
        if not artifact.exists() or data["details"]["key"] != key:
            return False
        sha = data["artifact"]["sha256"]
        if sha is not None and sha != sha256_file(artifact):
            log.warning("%s does not match its manifest: packaging it again", artifact)
            return False
        return True
    except Exception:  # noqa: BLE001 - a missing or foreign manifest means: write it again
        return False


def _install_ndk(step: NdkInstallStep) -> None:
    import platform

    from .toolchains.ndk_install import host_os, install_ndk

    install_ndk(step.version, sdk_root=step.sdk_root, download_dir=step.download_dir,
                host=host_os(platform.system()))


# ------------------------------------------------------------------ CMake projects


def stamp_valid(project: CMakeProject) -> bool:
    try:
        data = json.loads((project.build_dir / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("key") == project.key and project.install_dir.is_dir()


def _of_type(steps: Sequence[Step], kind: Any) -> list[Any]:
    return [s for s in steps if isinstance(s, get_args(kind))]


def _run_project(project: CMakeProject, steps: Sequence[CMakeStep], on_event: Listener, *,
                 owned_tree: bool) -> SliceResult:
    name = project.name
    log_path = project.build_dir / "builder.log"
    t0 = time.monotonic()
    if stamp_valid(project):
        on_event(Event("skip", project.slice, f"{name}: up to date ({project.install_dir})"))
        log.info("%s: up to date, nothing to do", name)
        return SliceResult(name, project.install_dir, True, time.monotonic() - t0, log_path)
    project.build_dir.mkdir(parents=True, exist_ok=True)
    (project.build_dir / META).write_text(json.dumps(dict(project.meta), indent=1, sort_keys=True))
    lock = intree.building_in(project.source_dir) if project.tree_key else contextlib.nullcontext(None)
    with lock as git_dir:
        if stamp_valid(project):  # built by the builder we waited for
            log.info("%s: up to date, nothing to do", name)
            return SliceResult(name, project.install_dir, True, time.monotonic() - t0, log_path)
        _repair_cmake_cache(project.build_dir)
        cleaned = bool(project.tree_key) and intree.prepare_tree(
            project.source_dir, git_dir, project.tree_key or "", project.build_dir, owned=owned_tree)
        for step in steps:
            if isinstance(step, CMakeBuildStep) and project.tree_key:
                intree.record(git_dir, project.tree_key, project.build_dir)   # configured (now or before)
            # Files configure wrote into the tree (ATen/Config.h) may have been deleted: then configure again.
            # A folder that builds for the install needs the file API reply (configured before builder asked: again).
            if isinstance(step, CMakeConfigureStep) and not cleaned and configured_with(project, step.argv()) \
                    and (not project.build_for_install or install_graph.has_reply(project.build_dir)):
                log.info("%s: already configured with the same arguments", name)
                continue
            if isinstance(step, CMakeConfigureStep) and project.build_for_install:
                install_graph.write_query(project.build_dir)
            if isinstance(step, CMakeBuildStep):
                _log_needs(step)
            on_event(Event("step", project.slice, step.title))
            log.info("%s: %s", name, step.title)
            _run_step(step, log_path, on_event)
            if isinstance(step, CMakeConfigureStep):
                (project.build_dir / CONFIGURED).write_text(json.dumps(list(step.argv())))
            if isinstance(step, CMakeInstallStep):
                finish_install(project)
    seconds = time.monotonic() - t0
    on_event(Event("done", project.slice, f"{name}: installed to {project.install_dir} in {seconds:.0f} s"))
    return SliceResult(name, project.install_dir, False, seconds, log_path)


def _log_needs(step: CMakeBuildStep) -> None:
    needs = step.needs()
    if needs is not None:
        log.info("%s: builds %s", step.project.name, needs.describe())
        for name, reason in needs.why.items():
            log.debug("  %s: %s", name, reason)
    elif step.project.build_for_install:
        log.warning("%s: no CMake file API reply in %s: building `all`", step.project.name, step.project.build_dir)


def _repair_cmake_cache(build_dir: Path) -> None:
    """A CMakeCache.txt cut short (a kill or a full disk while CMake wrote it) makes CMake fail on it for ever
    ("could not find CMAKE_GENERATOR in Cache"): delete it, so configure runs again (Ninja keeps the objects)."""
    cache = build_dir / "CMakeCache.txt"
    try:
        text = cache.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    entries = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("#", "//"))]
    if text.endswith("\n") and all(CACHE_ENTRY_RE.match(ln) for ln in entries) \
            and any(ln.startswith("CMAKE_GENERATOR:") for ln in entries):
        return
    log.warning("%s is incomplete (an interrupted configure?): configuring again", cache)
    cache.unlink()


def configured_with(project: CMakeProject, argv: Sequence[str]) -> bool:
    """True when the build folder was configured (and generated) with exactly ``argv``."""
    if not (project.build_dir / "CMakeCache.txt").is_file() or not (project.build_dir / "build.ninja").is_file():
        return False
    try:
        return bool(json.loads((project.build_dir / CONFIGURED).read_text()) == list(argv))
    except (OSError, ValueError):
        return False


def _run_step(step: CMakeStep, log_path: Path, on_event: Listener) -> None:
    if isinstance(step, CMakeInstallStep):
        shutil.rmtree(step.project.staging_dir, ignore_errors=True)
    tail: list[str] = []

    def on_line(line: str) -> None:
        m = PROGRESS_RE.match(line)
        if m:
            on_event(Event("progress", step.slice, step.title, int(m.group(1)), int(m.group(2))))
        tail.append(line)
        if len(tail) > 4000:
            del tail[:2000]

    command = step.command()
    code = proc.stream(command.argv, cwd=command.cwd, env=dict(command.env), on_line=on_line, log_file=log_path)
    if code != 0:
        raise failure(step.title, command.argv, code, tail, log_path)


def failure(title: str, argv: Sequence[str], code: int, tail: Sequence[str], log_path: Path) -> BuildFailed:
    """What a person needs when a step failed: the failing compiler command (Ninja's FAILED: line), the first
    errors, the log."""
    failed_cmd = ""
    for i, line in enumerate(tail):
        if line.startswith("FAILED:") and i + 1 < len(tail):
            failed_cmd = tail[i + 1].strip()
            break
    errors = tuple(line.strip() for line in tail if ERROR_RE.search(line))[:5]
    return BuildFailed(f"{title} failed (exit code {code})", step=title,
                       command=failed_cmd or proc.quote(argv), first_errors=errors, log=str(log_path))


def finish_install(project: CMakeProject) -> None:
    """Move the staged install into place and write the stamp last (atomic from the user's view)."""
    staging = project.staging_dir
    if project.install_dir.exists():
        old = project.build_dir / "install.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(project.install_dir, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, project.install_dir)
    stamp = project.build_dir / (STAMP + ".tmp")
    stamp.write_text(json.dumps({"key": project.key, "slice": project.slice, "time": time.time()}, indent=1))
    os.replace(stamp, project.build_dir / STAMP)


# ------------------------------------------------------------------ compiler cache statistics


def cache_stats(launcher: Path | None) -> dict[str, int] | None:
    """Hit/miss counters of the compiler cache (ccache or sccache), or None."""
    if launcher is None:
        return None
    try:
        if "sccache" in launcher.name:
            out = proc.run([launcher, "--show-stats", "--stats-format=json"], check=False).stdout
            stats = json.loads(out).get("stats", {})
            hits = stats.get("cache_hits", {}).get("counts", {})
            misses = stats.get("cache_misses", {}).get("counts", {})
            return {"hits": sum(hits.values()), "misses": sum(misses.values())}
        out = proc.run([launcher, "--print-stats"], check=False).stdout
        values = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        hits = int(values.get("direct_cache_hit", 0)) + int(values.get("preprocessed_cache_hit", 0))
        return {"hits": hits, "misses": int(values.get("cache_miss", 0))}
    except (OSError, ValueError, TypeError, AttributeError):    # an answer of another shape: no statistics
        return None


def hit_rate(stats: dict[str, int] | None) -> str:
    if not stats:
        return "n/a"
    total = stats.get("hits", 0) + stats.get("misses", 0)
    return "no compilations" if total == 0 else f"{100 * stats['hits'] / total:.0f}% ({stats['hits']}/{total})"
