"""Run a Plan: source steps, then configure/build/install per slice, with stamps, logs and progress.

Decides nothing about *what* to build (plan.py does); it decides only what is already done:
- a slice whose stamp matches its key (and whose install exists) is skipped: the no-op re-run;
- configure is skipped when the folder was configured with the same argv;
- install goes to a staging folder that is renamed into place, so an interrupted build never leaves a
  half-installed tree, and the next run resumes (Ninja rebuilds only what is missing).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import intree, proc, source
from .errors import BuildFailed
from .plan import STAMP, Plan, SlicePlan, Step

log = logging.getLogger("builder")
PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]")
ERROR_RE = re.compile(r"(error:|error [A-Z]+\d+:|CMake Error|undefined reference|fatal error|No such file)")
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
    slices: list[SliceResult] = field(default_factory=list)
    checkout: source.CheckoutResult | None = None
    cache_stats: dict[str, int] | None = None
    seconds: float = 0.0
    artifacts: tuple[Path, ...] = ()


Listener = Callable[[Event], None]


def _quiet(_: Event) -> None:
    return None


def execute(plan: Plan, on_event: Listener = _quiet) -> RunResult:
    start = time.monotonic()
    result = RunResult()
    for step in (s for s in plan.steps if s.kind == "ndk"):
        on_event(Event("step", None, step.title))
        _install_ndk(plan, step)
    source_actions = tuple(s.data for s in plan.steps if s.kind == "source")
    if source_actions:
        on_event(Event("step", None, "source: checkout, submodules, patches"))
        t0 = time.monotonic()
        result.checkout = source.execute_checkout(source_actions)
        log.info("source ready at %s (%.1f s)", result.checkout.worktree, time.monotonic() - t0)
    before = cache_stats(plan.config.launcher)
    for sp in plan.slices:
        steps = [s for s in plan.steps if s.slice == sp.slice.name]
        result.slices.append(_run_slice(sp, steps, on_event, plan.config, plan.tree_key))
    if any(s.kind == "package" for s in plan.steps):
        from .package.outputs import package

        on_event(Event("step", None, "package"))
        result.artifacts = package(plan, result)
    after = cache_stats(plan.config.launcher)
    if before is not None and after is not None:
        result.cache_stats = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    result.seconds = time.monotonic() - start
    return result


def _install_ndk(plan: Plan, step: Step) -> None:
    import platform

    from .toolchains.ndk_install import host_os, install_ndk

    ndk = plan.config.ndk
    assert ndk is not None
    cache = plan.config.source.cache_dir.parent
    install_ndk(step.data, sdk_root=ndk.path.parent.parent, download_dir=cache / "downloads",
                host=host_os(platform.system()))


def stamp_valid(sp: SlicePlan) -> bool:
    stamp = sp.build_dir / STAMP
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data.get("key") == sp.key and sp.install_dir.is_dir()


def _write_meta(sp: SlicePlan, config) -> None:
    """What this folder is (for `builder clean` and people): tag, target, slice, key, defines."""
    from .clean import META
    from .plan import render_value

    meta = {"tag": config.recipe.tag, "target": config.target, "slice": sp.slice.name, "key": sp.key,
            "defines": {k: render_value(v) for k, v in sp.defines.items()}, "env": dict(sp.env)}
    (sp.build_dir / META).write_text(json.dumps(meta, indent=1, sort_keys=True))


def _run_slice(sp: SlicePlan, steps: list[Step], on_event: Listener, plan_config, tree_key: str) -> SliceResult:
    name = sp.slice.name
    log_path = sp.build_dir / "builder.log"
    t0 = time.monotonic()
    if stamp_valid(sp):
        on_event(Event("skip", name, f"{name}: up to date ({sp.install_dir})"))
        log.info("%s: up to date, nothing to do", name)
        return SliceResult(name, sp.install_dir, True, time.monotonic() - t0, log_path)
    sp.build_dir.mkdir(parents=True, exist_ok=True)
    _write_meta(sp, plan_config)
    with intree.building_in(plan_config.source_path) as git_dir:
        if stamp_valid(sp):  # built by the builder we waited for
            log.info("%s: up to date, nothing to do", name)
            return SliceResult(name, sp.install_dir, True, time.monotonic() - t0, log_path)
        cleaned = intree.prepare_tree(plan_config.source_path, git_dir, tree_key, sp.build_dir,
                                      owned=plan_config.source.source_dir is None)
        for step in steps:
            # Files configure wrote into the tree (ATen/Config.h) may have been deleted: then configure again.
            if step.kind == "configure" and not cleaned and _configured_with(sp, step):
                log.info("%s: already configured with the same arguments", name)
                continue
            on_event(Event("step", name, step.title))
            log.info("%s: %s", name, step.title)
            _run_step(step, sp, log_path, on_event)
            if step.kind == "configure":
                (sp.build_dir / CONFIGURED).write_text(json.dumps(list(step.argv)))
            if step.kind == "install":
                _finish_install(sp)
    seconds = time.monotonic() - t0
    on_event(Event("done", name, f"{name}: installed to {sp.install_dir} in {seconds:.0f} s"))
    return SliceResult(name, sp.install_dir, False, seconds, log_path)


def _configured_with(sp: SlicePlan, step: Step) -> bool:
    marker = sp.build_dir / CONFIGURED
    if not (sp.build_dir / "CMakeCache.txt").is_file() or not (sp.build_dir / "build.ninja").is_file():
        return False
    try:
        return json.loads(marker.read_text()) == list(step.argv)
    except (OSError, ValueError):
        return False


def _run_step(step: Step, sp: SlicePlan, log_path: Path, on_event: Listener) -> None:
    if step.kind == "install":
        shutil.rmtree(sp.build_dir / "install.partial", ignore_errors=True)
    tail: list[str] = []

    def on_line(line: str) -> None:
        m = PROGRESS_RE.match(line)
        if m:
            on_event(Event("progress", step.slice, step.title, int(m.group(1)), int(m.group(2))))
        tail.append(line)
        if len(tail) > 4000:
            del tail[:2000]

    code = proc.stream(step.argv, cwd=step.cwd, env=dict(step.env), on_line=on_line, log_file=log_path)
    if code != 0:
        raise _failure(step, code, tail, log_path)


def _failure(step: Step, code: int, tail: list[str], log_path: Path) -> BuildFailed:
    failed_cmd = ""
    for i, line in enumerate(tail):
        if line.startswith("FAILED:") and i + 1 < len(tail):
            failed_cmd = tail[i + 1].strip()
            break
    errors = tuple(line.strip() for line in tail if ERROR_RE.search(line))[:5]
    return BuildFailed(f"{step.title} failed (exit code {code})", step=step.title,
                       command=failed_cmd or proc.quote(step.argv), first_errors=errors, log=str(log_path))


def _finish_install(sp: SlicePlan) -> None:
    """Move the staged install into place and write the stamp last (atomic from the user's view)."""
    staging = sp.build_dir / "install.partial"
    if sp.install_dir.exists():
        old = sp.build_dir / "install.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(sp.install_dir, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, sp.install_dir)
    stamp = sp.build_dir / (STAMP + ".tmp")
    stamp.write_text(json.dumps({"key": sp.key, "slice": sp.slice.name, "time": time.time()}, indent=1))
    os.replace(stamp, sp.build_dir / STAMP)


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
    except (OSError, ValueError):
        return None


def hit_rate(stats: dict[str, int] | None) -> str:
    if not stats:
        return "n/a"
    total = stats.get("hits", 0) + stats.get("misses", 0)
    return "no compilations" if total == 0 else f"{100 * stats['hits'] / total:.0f}% ({stats['hits']}/{total})"
