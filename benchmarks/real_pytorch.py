#!/usr/bin/env python3
"""Benchmark: builder on the real PyTorch v1.13.1 tree, end to end, resumable (issue 4).

    python benchmarks/real_pytorch.py [--root DIR] [--fresh] [--phases a,b,...] [-j N] [--from DIR]
    python benchmarks/real_pytorch.py --report        # only render docs/benchmarks.md from ROOT/results.json
    python benchmarks/real_pytorch.py --dry-run       # print what each phase would run; changes nothing

Phases, in order (each result is written to ROOT/results.json as soon as the phase ends; a re-run skips
phases already "ok" unless --fresh; every subprocess's output goes to ROOT/logs/<phase>.log):

  mirror        the upstream-shaped local mirror (benchmarks/realtorch_mirror.py, cached) and the Debian
                packages libxnnpack-dev libcpuinfo-dev libpthreadpool-dev ccache (apt-get install if missing)
  model         benchmarks/mobilenet_model.py -> ROOT/model: MobileNetV2-style .pt, .ptl, op list (torch==2.13.0)
  builder_full  builder host --tag v1.13.1 --mirror file://ROOT/mirror/ --allow-unpinned --system-lib ... --cache
                ccache --out ROOT/out-full, with an empty CCACHE_DIR and BUILDER_CACHE_DIR: the cold time
  noop          the same command again (target <= 3 s)
  build_mobile  PyTorch's scripts/build_mobile.sh on a copy of builder's patched tree, same defines, empty
                ccache: the solo time and the CMakeCache comparison (ratio shown; paired decides the target)
  trace         builder ops MODEL --trace out-full: the model's root operators plus every operator they call on
                the full build (the release's own runtime) -> ROOT/model/traced.yaml (tracing-based format)
  builder_ops   the same as builder_full plus --ops traced.yaml --size-levers (TRACING_BASED, MinSizeRel, gc
                sections...), --out ROOT/out-ops; ccache warm from builder_full, but the flags differ
                (-DTRACING_BASED -DNO_EXPORT -Os on every file), so this is a cold build in practice
  builder_ops_warm  out-ops wiped, the same command: a rebuild from scratch with a warm cache (target <= 15% of
                builder_full's cold time)
  removed_op    the traced list minus one root operator (aten::adaptive_avg_pool2d), warm cache, --out
                ROOT/out-removed; then builder verify must fail and name that operator
  sizes         installed lib/ include/ (full vs ops); builder verify with a runner linked against each;
                the runner's size stripped; `builder size` when that command exists
  submodules    fetched (manifest of builder_full) vs listed in the mirror's .gitmodules
  paired        builder_full's and build_mobile.sh's cold builds again, started at the same moment (own folders,
                own empty ccache), with each process tree's CPU time (wait4): the ratio target (within 5%) on a
                machine whose speed drifts by more than that between two runs an hour apart
  builder_plain optional (--phases builder_plain or all): PyTorch's plain selective build, root operators only

ROOT defaults to ~/.cache/builder-bench (where realtorch_mirror.py puts the mirror). --fresh forgets the results
and wipes ROOT's benchmark folders, never ROOT/mirror or ROOT/downloads; with --phases it forgets only those
phases. Each phase also wipes its own folders before it starts, so an interrupted phase is redone from scratch.
The environment passed on loses SELECTED_OP_LIST, MAX_JOBS, BUILDER_MIRROR, CCACHE_BASEDIR (builder's own
behaviour is measured, not the caller's settings). The default phases take about 6 hours on this 2-core VM
(paired alone ~2 h 40 min; docs/benchmarks.md shows each phase's time); never in CI.

The code, all in benchmarks/: this file has main() and the builder phases (mirror to removed_op, submodules);
bench_spec.py the phases' order and needs, settings and targets; bench_run.py Bench (results, logs, timed
subprocesses) and the measurement helpers; bench_mobile.py build_mobile and paired; bench_sizes.py sizes;
bench_report.py docs/benchmarks.md (--report).
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_mobile import phase_build_mobile, phase_paired
from bench_report import write_report
from bench_run import (
    Bench,
    PhaseError,
    base_env,
    builder_argv,
    builder_cmd,
    builder_env,
    builder_env_shown,
    ccache_stats,
    ccache_summary,
    dpkg_version,
    full_argv,
    hit_rate,
    install_sizes,
    json_plan,
    load_results,
    machine_info,
    mirror_prefix,
    model_input,
    model_ops_path,
    now,
    ops_argv,
    run_builder,
    stats_delta,
    traced_ops_path,
)
from bench_sizes import phase_sizes
from bench_spec import (
    BENCH_DIRS,
    DEFAULT_DOC,
    DEFAULT_ROOT,
    FORMAT,
    HERE,
    INPUT_SIZE,
    NEEDS,
    NOOP_TARGET_S,
    OPTIONAL_PHASES,
    PACKAGES,
    PHASES,
    REMOVED_OP,
    SKIP_SUBMODULES,
    TAG,
    TORCH_VERSION,
    WARM_TARGET,
    builder_build_seconds,
    fmt_s,
    mib,
    pct,
)


def dependents(phase: str) -> list[str]:
    """Phases whose results are measured on this phase's output (transitively); they are stale once it reruns.
    The mirror is content-addressed (same tarballs, same commits), so re-checking it invalidates nothing."""
    if phase == "mirror":
        return []
    out: list[str] = []
    for name in PHASES:
        if any(n == phase or n in out for n in NEEDS[name]):
            out.append(name)
    return out


# ============================================================================ phases
def phase_mirror(b: Bench) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / "realtorch_mirror.py"), "--root", str(b.root)]
    for seed in b.seeds:
        argv += ["--from", str(seed)]
    code, seconds, _ = b.run(argv, env=base_env())
    if code != 0:
        raise PhaseError(f"realtorch_mirror.py exit {code}")
    res: dict[str, Any] = {"seconds": round(seconds, 2), "seeds": [str(s) for s in b.seeds]}
    if not b.dry:
        manifest = json.loads(b.p("mirror", "MANIFEST.json").read_text())
        res.update(prefix=manifest["prefix"], pytorch_commit=manifest["pytorch"]["commit"],
                   upstream_commit=manifest["pytorch"].get("upstream_commit"),
                   mirrored=sorted(p for p, s in manifest["submodules"].items() if s.get("mirrored", True)))
        log_text = b.p("logs", "mirror.log").read_text(errors="replace")
        res["cached"] = "made " not in log_text
    # Debian packages
    missing = [p for p in PACKAGES if dpkg_version(p) is None]
    installed: list[str] = []
    t_pkg = 0.0
    if missing:
        print(f"  installing Debian packages: {' '.join(missing)}", flush=True)
        sudo = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        code, t_pkg, _ = b.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", *missing], env=apt_env)
        if code != 0:
            code, t_upd, _ = b.run([*sudo, "apt-get", "update"], env=apt_env)
            code, t2, _ = b.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", *missing],
                                env=apt_env)
            t_pkg += t_upd + t2
        installed = missing
    versions = {p: dpkg_version(p) for p in PACKAGES}
    res.update(packages=versions, installed=installed, packages_seconds=round(t_pkg, 2))
    still = [p for p, v in versions.items() if v is None]
    if still and not b.dry:
        raise PhaseError(f"packages still missing: {' '.join(still)}")
    for tool in ("git", "ccache", "strip"):
        if shutil.which(tool) is None and not b.dry:
            raise PhaseError(f"{tool} is required")
    state = "cached" if res.get("cached") else "made"
    res["summary"] = (f"mirror {state} in {seconds:.1f} s (pytorch {str(res.get('pytorch_commit', '?'))[:12]}); "
                      f"packages ok" + (f", installed {' '.join(installed)}" if installed else ""))
    return res


def phase_model(b: Bench) -> dict[str, Any]:
    code, _s, out = b.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture=True,
                          light=True)
    version = out.strip().split("+")[0] if code == 0 else None
    if version != TORCH_VERSION:
        print(f"  installing torch=={TORCH_VERSION} (found {version or 'none'})", flush=True)
        code, _s, _ = b.run([sys.executable, "-m", "pip", "install", f"torch=={TORCH_VERSION}"])
        if code != 0:
            raise PhaseError(f"pip install torch=={TORCH_VERSION} failed")
    code, _s, out = b.run(builder_cmd("recipes", "show", TAG, "--json"), env=base_env(), capture=True, light=True)
    if code != 0:
        raise PhaseError("builder recipes show failed")
    bytecode_max = json.loads(out)["bytecode"]["max"]
    b.wipe("model")
    argv = [sys.executable, str(HERE / "mobilenet_model.py"), str(b.p("model")), "--bytecode-max",
            str(bytecode_max), "--size", str(INPUT_SIZE)]
    code, seconds, out = b.run(argv, env=base_env(), capture=True)
    if b.dry:
        return {}
    if code != 0:
        raise PhaseError(f"mobilenet_model.py exit {code}")
    summary = json.loads(out[out.index("{"):])
    shape = f"1x3x{INPUT_SIZE}x{INPUT_SIZE}"
    return {"seconds": round(seconds, 2), "pt": summary["pt"], "ptl": summary["ptl"], "ops": summary["ops"],
            "inputs": summary["inputs"], "bytecode_version": summary["bytecode_version"],
            "bytecode_max": bytecode_max, "torch": summary["torch"], "operators": summary["operators"],
            "parameters": summary["parameters"], "input_shape": shape,
            "summary": (f"{len(summary['operators'])} root operators, {summary['parameters']:,} parameters, "
                        f"bytecode v{summary['bytecode_version']} (max v{bytecode_max}), input {shape}, "
                        f"{seconds:.1f} s")}


def _builder_build(b: Bench, name: str, argv: list[str], out_dir: str, fresh_dirs: tuple[str, ...]
                   ) -> dict[str, Any]:
    """Plan (--json), wipe, run timed; ccache delta; install sizes."""
    b.wipe(*fresh_dirs, out_dir)
    plan = json_plan(b, argv, name)
    b.wipe(*fresh_dirs)  # the plan run may have cached tool versions: the timed run starts empty
    env = builder_env(b)
    before = ccache_stats(env) if not b.dry else {}
    code, seconds = run_builder(b, argv)
    cpu = b.last_cpu
    after = ccache_stats(env) if not b.dry else {}
    sl = plan["slices"][0]
    install = Path(sl["install_dir"])
    res: dict[str, Any] = {
        "argv": argv, "env": builder_env_shown(b), "exit": code, "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 1),
        "install_dir": str(install), "build_dir": sl["build_dir"], "source": plan["source"],
        "defines": sl["defines"], "cmake": plan.get("cmake"), "ninja": plan.get("ninja"),
        "launcher": plan.get("launcher"), "submodules_planned": plan.get("submodules"),
        "patches": plan.get("patches"), "jobs": int(argv[argv.index("-j") + 1]),
        "ccache": ccache_summary(stats_delta(before, after)), "ccache_stats": stats_delta(before, after),
    }
    if b.dry:
        return res
    if code != 0:
        res["status"] = "failed"
        res["summary"] = f"builder exit {code} after {fmt_s(seconds)} (see {b.p('logs', name + '.log')})"
        return res
    if not install.is_dir():
        raise PhaseError(f"builder exit 0 but no install at {install}")
    res["install"] = install_sizes(install)
    return res

def phase_builder_full(b: Bench) -> dict[str, Any]:
    argv = builder_argv(mirror_prefix(b), b.jobs, b.p("out-full"))
    res = _builder_build(b, "builder_full", argv, "out-full", ("ccache-builder", "builder-cache"))
    if not b.dry:
        res["build_seconds"] = builder_build_seconds(b.p("logs", "builder_full.log"))
    if res.get("install"):
        c = res["ccache"]
        res["summary"] = (f"cold {fmt_s(res['seconds'])}, exit 0, ccache {c['hits']} hits / {c['misses']} misses, "
                          f"lib/ {mib(res['install']['lib_bytes'])}, include/ {mib(res['install']['include_bytes'])}")
    return res


def phase_noop(b: Bench) -> dict[str, Any]:
    argv = full_argv(b)
    env = builder_env(b)
    before = ccache_stats(env) if not b.dry else {}
    code, seconds = run_builder(b, argv)
    if b.dry:
        return {}
    delta = ccache_summary(stats_delta(before, ccache_stats(env)))
    res = {"argv": argv, "exit": code, "seconds": round(seconds, 2), "target_s": NOOP_TARGET_S,
           "target_met": code == 0 and seconds <= NOOP_TARGET_S, "ccache": delta}
    log_text = b.p("logs", "noop.log").read_text(errors="replace")
    res["up_to_date"] = "up to date" in log_text
    if code != 0:
        res["status"] = "failed"
    res["summary"] = (f"{seconds:.2f} s (target <= {NOOP_TARGET_S:g} s: {'pass' if res['target_met'] else 'FAIL'})"
                      f", exit {code}, {'up to date' if res['up_to_date'] else 'REBUILT something'}, "
                      f"{delta['hits'] + delta['misses']} compilations")
    return res


def phase_trace(b: Bench) -> dict[str, Any]:
    ptl, shape = model_input(b)
    out = b.p("model", "traced.yaml")
    install = b.get("builder_full").get("install_dir", "<out-full install>")
    argv = builder_cmd("ops", ptl, "--tag", TAG, "--trace", install, "--shapes", shape, "-o", str(out))
    code, seconds, text = b.run(argv, env=builder_env(b), cwd=b.root, capture=True, env_shown=builder_env_shown(b))
    if b.dry:
        return {}
    if code != 0:
        raise PhaseError(f"builder ops --trace exit {code} (see {b.p('logs', 'trace.log')})")
    import yaml
    ops = yaml.safe_load(out.read_text())["operators"]
    roots = sorted(n for n, i in ops.items() if i["is_root_operator"])
    called = sorted(n for n, i in ops.items() if not i["is_root_operator"])
    return {"argv": argv, "seconds": round(seconds, 2), "ops": str(out), "root": roots, "called": called,
            "summary": f"{len(roots)} root + {len(called)} called operators = {len(ops)}, traced in {seconds:.1f} s"}


def phase_builder_ops(b: Bench) -> dict[str, Any]:
    ops = traced_ops_path(b)
    if not ops.is_file() and not b.dry:
        raise PhaseError(f"op list {ops} is missing (rerun --phases trace)")
    res = _builder_build(b, "builder_ops", ops_argv(b), "out-ops", ())
    if res.get("install"):
        res["summary"] = (f"{fmt_s(res['seconds'])} (flags differ from builder_full's: cache hit rate "
                          f"{hit_rate(res['ccache'])}), lib/ {mib(res['install']['lib_bytes'])}")
    return res


def phase_builder_plain(b: Bench) -> dict[str, Any]:
    ops = model_ops_path(b)
    res = _builder_build(b, "builder_plain", ops_argv(b, "out-plain", ops, levers=False), "out-plain", ())
    if res.get("install"):
        res["summary"] = f"{fmt_s(res['seconds'])}, lib/ {mib(res['install']['lib_bytes'])}"
    return res


def phase_removed_op(b: Bench) -> dict[str, Any]:
    import yaml
    src = traced_ops_path(b)
    dst = b.p("model", "traced-minus-one.yaml")
    if not b.dry:
        data = yaml.safe_load(src.read_text())
        if data["operators"].pop(REMOVED_OP, None) is None:
            raise PhaseError(f"{REMOVED_OP} is not in {src}")
        dst.write_text(yaml.safe_dump(data, sort_keys=True))
    res = _builder_build(b, "removed_op", ops_argv(b, "out-removed", dst), "out-removed", ())
    ptl, shape = model_input(b)
    argv = builder_cmd("verify", "--build", res.get("install_dir", "<out-removed install>"), "--model", ptl,
                       "--shapes", shape, "--link", "registrations", "--gc-sections")
    code, secs, out = b.run(argv, env=builder_env(b), cwd=b.root, capture=True, env_shown=builder_env_shown(b))
    if b.dry:
        return res
    # builder's error goes to stderr, which b.run writes to the phase log only: read the verify part of it
    log_text = b.p("logs", "removed_op.log").read_text(errors="replace")
    verify_text = out + log_text[log_text.rfind(" verify --build "):]
    names = f"missing from the build: {REMOVED_OP}" in verify_text
    out = verify_text
    res.update(removed=REMOVED_OP, verify_argv=argv, verify_exit=code, verify_output=out.strip()[-600:],
               target_met=code != 0 and names)
    res["summary"] = (f"rebuilt in {fmt_s(res['seconds'])}; builder verify exit {code}, "
                      f"{'names ' + REMOVED_OP if names else 'does NOT name ' + REMOVED_OP}")
    return res


def phase_builder_ops_warm(b: Bench) -> dict[str, Any]:
    res = _builder_build(b, "builder_ops_warm", ops_argv(b), "out-ops", ())
    if res.get("install"):   # cold = the same configuration built with a cache that could not help
        cold = b.get("builder_ops").get("seconds") or b.get("builder_full").get("seconds")
        ratio = res["seconds"] / cold if cold else None
        res.update(ratio_to_cold=ratio, target=WARM_TARGET, target_met=ratio is not None and ratio <= WARM_TARGET)
        res["summary"] = (f"{fmt_s(res['seconds'])} = {pct(ratio)} of cold (target <= {WARM_TARGET:.0%}: "
                          f"{'pass' if res['target_met'] else 'FAIL'}), ccache hit rate {hit_rate(res['ccache'])}")
    return res


def phase_submodules(b: Bench) -> dict[str, Any]:
    manifests = sorted(glob.glob(str(b.p("out-full", "*.manifest.json"))))
    gitmodules = subprocess.run(["git", "--git-dir", str(b.p("mirror", "pytorch", "pytorch.git")), "show",
                                 f"{TAG}:.gitmodules"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True).stdout
    listed = re.findall(r"^\s*path\s*=\s*(\S+)", gitmodules, re.M)
    if b.dry:
        print(f"    read {b.p('out-full', '*.manifest.json')} and {TAG}:.gitmodules ({len(listed)} listed)")
        return {}
    if not manifests:
        raise PhaseError(f"no manifest in {b.p('out-full')}")
    manifest = json.loads(Path(manifests[0]).read_text())
    fetched = manifest.get("submodules", {})
    tree = Path(b.get("builder_full").get("source", ""))
    populated = [p for p in listed if (tree / p).is_dir() and any((tree / p).iterdir())]
    return {"manifest": manifests[0], "fetched": fetched, "listed": listed, "listed_count": len(listed),
            "fetched_count": len(fetched), "populated_in_tree": populated, "skipped": list(SKIP_SUBMODULES),
            "summary": f"{len(fetched)} fetched of {len(listed)} listed in .gitmodules "
                       f"({', '.join(sorted(fetched))})"}


PHASE_FUNCS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "mirror": phase_mirror, "model": phase_model, "builder_full": phase_builder_full, "noop": phase_noop,
    "trace": phase_trace, "builder_ops": phase_builder_ops, "builder_ops_warm": phase_builder_ops_warm,
    "removed_op": phase_removed_op, "build_mobile": phase_build_mobile, "paired": phase_paired, "sizes": phase_sizes,
    "submodules": phase_submodules, "builder_plain": phase_builder_plain,
}

# ============================================================================ main
def parse_phases(text: str | None) -> list[str]:
    if not text:
        return [p for p in PHASES if p not in OPTIONAL_PHASES]
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    if chosen == ["all"]:
        return list(PHASES)
    unknown = [p for p in chosen if p not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s): {', '.join(unknown)} (phases: {', '.join(PHASES)})")
    return [p for p in PHASES if p in chosen]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, end of a session) ends the run like Ctrl-C: children stopped, not recorded


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="phases: " + ", ".join(PHASES))
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"benchmark folder (default {DEFAULT_ROOT})")
    ap.add_argument("--fresh", action="store_true",
                    help="forget results and wipe ROOT's benchmark folders (not mirror/, downloads/); "
                         "with --phases: only those phases' results")
    ap.add_argument("--phases", help="comma-separated subset to run, e.g. builder_ops,sizes; all: every phase, "
                                     "the optional ones too")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel jobs (default: nproc)")
    ap.add_argument("--from", dest="seeds", type=Path, action="append", default=[],
                    help="folder with already downloaded Debian orig tarballs (for the mirror's first run)")
    ap.add_argument("--report", action="store_true", help="only render the report from ROOT/results.json")
    ap.add_argument("--doc", type=Path, default=DEFAULT_DOC, help=f"report file (default {DEFAULT_DOC})")
    ap.add_argument("--dry-run", action="store_true",
                    help="print each phase's commands; runs only light ones (builder --json plans, which may "
                         "create ROOT/builder-cache/tool-versions.json); records nothing")
    return ap


def _start(b: Bench, args: argparse.Namespace, phases: list[str]) -> None:
    """--fresh (all results and folders, or only the named phases' results); the machine, unless a dry run."""
    if args.fresh:
        if args.phases:
            for p in phases:
                b.results["phases"].pop(p, None)
        else:
            b.results = {"format": FORMAT, "phases": {}}
            b.wipe(*BENCH_DIRS)
        b.save()
    if not args.dry_run:
        b.results["machine"] = machine_info()
        b.results["jobs"] = args.jobs
        b.save()


def _skip(b: Bench, name: str, dry: bool) -> str | None:
    """Before a phase: "done" (ok earlier) or "needs" (a phase it needs is not ok), said; else None, after
    forgetting the results measured on this phase's previous output."""
    if b.ok(name) and not dry:
        print(f"{name:<13} done earlier: {b.get(name).get('summary', '')}", flush=True)
        return "done"
    missing = [n for n in NEEDS[name] if not b.ok(n)]
    if missing and not dry:
        print(f"{name:<13} skipped: needs {', '.join(missing)} (not ok in results.json)", flush=True)
        return "needs"
    if dry:
        print(f"{name}:", flush=True)
    else:
        stale = [d for d in dependents(name) if d in b.results["phases"]]
        for d in stale:
            b.results["phases"].pop(d)
        if stale:
            b.save()
            print(f"{'':<13} (forgot {', '.join(stale)}: measured on the previous {name})", flush=True)
        if sys.stdout.isatty():
            print(f"{name:<13} running (log: {b.p('logs', name + '.log')}) ...", end="\r", flush=True)
    return None


def _record(b: Bench, name: str, res: dict[str, Any], t0: float) -> bool:
    """Save a finished phase's result to results.json and say it; True when it is ok."""
    res["phase_seconds"] = round(time.monotonic() - t0, 2)
    res["finished"] = now()
    b.results["phases"][name] = res
    b.results["updated"] = res["finished"]
    b.save()
    mark = "ok  " if res["status"] == "ok" else "FAILED"
    print("\r\033[K" if sys.stdout.isatty() else "", end="")
    print(f"{name:<13} {mark} {res.get('summary', '')}", flush=True)
    return res["status"] == "ok"


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("-j must be >= 1")
    root = args.root.expanduser().resolve()
    phases = parse_phases(args.phases)

    if args.report:
        results = load_results(root / "results.json")
        write_report(results, root, args.doc)
        print(f"wrote {args.doc} from {root / 'results.json'} ({len(results['phases'])} phase(s) recorded)")
        return 0

    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / ".bench.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"another real_pytorch.py run holds {root / '.bench.lock'}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _raise_interrupt)
    b = Bench(root, args.jobs, [s.expanduser().resolve() for s in args.seeds], args.dry_run)
    _start(b, args, phases)
    print(f"root {root}  (results.json, logs/)  -j {args.jobs}" + ("  [dry run]" if args.dry_run else ""), flush=True)
    failed = 0
    for name in phases:
        skip = _skip(b, name, args.dry_run)
        if skip:
            if skip == "needs":
                failed += 1
            continue
        t0 = time.monotonic()
        with b.phase_log(name):
            try:
                res = PHASE_FUNCS[name](b)
                res.setdefault("status", "ok")
            except PhaseError as exc:
                res = {"status": "failed", "summary": str(exc)}
            except KeyboardInterrupt:
                print(f"\n{name:<13} interrupted: not recorded; run the same command to resume", flush=True)
                if not args.dry_run:
                    write_report(b.results, root, args.doc)
                return 130
        if args.dry_run:
            if res.get("status") == "failed":
                print(f"    would fail now: {res.get('summary')}", flush=True)
            continue
        if not _record(b, name, res, t0):
            failed += 1
    if args.dry_run:
        return 0
    write_report(b.results, root, args.doc)
    print(f"results: {b.results_path}\nreport:  {args.doc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
