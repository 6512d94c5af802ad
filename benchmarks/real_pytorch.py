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
                ccache (target: builder_full / build_mobile within 5%)
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

ROOT defaults to ~/.cache/builder-bench (where realtorch_mirror.py puts the mirror). --fresh forgets the results
and wipes ROOT's benchmark folders, never ROOT/mirror or ROOT/downloads; with --phases it forgets only those
phases. Each phase also wipes its own folders before it starts, so an interrupted phase is redone from scratch.
The environment passed on loses SELECTED_OP_LIST, MAX_JOBS, BUILDER_MIRROR, CCACHE_BASEDIR (builder's own
behaviour is measured, not the caller's settings). Running everything takes 1-2 hours on 2 cores; never in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import glob
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_ROOT = Path("~/.cache/builder-bench").expanduser()
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
TAG = "v1.13.1"
FORMAT = 1

# build_mobile right after builder_full's no-op: the two cold builds whose ratio is a target run back to back, on
# the same quiet machine, before the lighter phases.
PHASES = ("mirror", "model", "builder_full", "noop", "build_mobile", "trace", "builder_ops", "builder_ops_warm",
          "removed_op", "sizes", "submodules", "builder_plain", "paired")
# Not run unless named in --phases: PyTorch's plain selective build (--ops with the root operators, no levers), a
# third cold build, for the size table's middle row; paired: builder_full's and build_mobile.sh's cold builds again,
# started together so both see the same machine (the ratio without the machine's drift between two runs).
OPTIONAL_PHASES = ("builder_plain", "paired")
NEEDS: dict[str, tuple[str, ...]] = {
    "mirror": (), "model": (), "builder_full": ("mirror",), "noop": ("builder_full",),
    "trace": ("model", "builder_full"), "builder_ops": ("trace",), "builder_ops_warm": ("builder_ops",),
    "removed_op": ("builder_ops_warm",), "build_mobile": ("builder_full",),
    "sizes": ("model", "builder_full", "builder_ops_warm"), "submodules": ("builder_full",),
    "builder_plain": ("model", "builder_full"), "paired": ("mirror", "builder_full"),
}
REMOVED_OP = "aten::adaptive_avg_pool2d"


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
PAIRED_DIRS = ("out-paired", "builder-cache-paired", "ccache-paired-builder", "bm-src-paired", "bm-build-paired",
               "ccache-paired-bm")
# Folders under ROOT that --fresh wipes (never mirror/ or downloads/).
BENCH_DIRS = ("logs", "plans", "model", "out-full", "out-ops", "out-removed", "out-plain", "ccache-builder",
              "ccache-bm", "builder-cache", "bm-src", "bm-build", "sizes", *PAIRED_DIRS)
SYSTEM_LIBS = {"xnnpack": "libxnnpack-dev", "cpuinfo": "libcpuinfo-dev", "pthreadpool": "libpthreadpool-dev"}
# Link flags for the shared Debian libraries a --system-lib build's static libtorch_cpu.a needs.
SYSTEM_LINK = {"xnnpack": "-lXNNPACK", "cpuinfo": "-lcpuinfo", "pthreadpool": "-lpthreadpool"}
PACKAGES = (*SYSTEM_LIBS.values(), "ccache")
SKIP_SUBMODULES = ("third_party/pocketfft",)
TORCH_VERSION = "2.13.0"
INPUT_SIZE = 224
NOOP_TARGET_S = 3.0
WARM_TARGET = 0.15
BM_TOLERANCE = 0.05
ISSUE8_TARGET = 0.6
# Environment that changes what builder or build_mobile.sh does; removed so the command line says it all.
BUILDER_ENV_DROP = ("SELECTED_OP_LIST", "MAX_JOBS", "BUILDER_MIRROR", "CCACHE_BASEDIR", "BUILDER_REAL_INSTALL")
BM_ENV_DROP = ("SELECTED_OP_LIST", "TRACING_BASED", "USE_LIGHTWEIGHT_DISPATCH", "VERBOSE", "BUILD_ROOT",
               "CCACHE_BASEDIR", "CMAKE_ARGS")


class PhaseError(Exception):
    """A phase could not finish; the message is its one-line result."""


# ============================================================================ context, logs, subprocesses
class Bench:
    def __init__(self, root: Path, jobs: int, seeds: list[Path], dry: bool) -> None:
        self.root, self.jobs, self.seeds, self.dry = root, jobs, seeds, dry
        self.results_path = root / "results.json"
        self.results = load_results(self.results_path)
        self.phase = "main"
        self.log_file: Any = None
        self.last_cpu = 0.0  # CPU seconds of the last run()'s process tree

    # --- results
    def ok(self, phase: str) -> bool:
        return self.results["phases"].get(phase, {}).get("status") == "ok"

    def get(self, phase: str) -> dict[str, Any]:
        return self.results["phases"].get(phase, {})

    def save(self) -> None:
        if self.dry:
            return
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.results_path)

    # --- paths
    def p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def wipe(self, *names: str) -> None:
        for name in names:
            path = self.p(name)
            if self.dry:
                if path.exists():
                    print(f"    would remove {path}")
                continue
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path)

    # --- logging and processes
    @contextlib.contextmanager
    def phase_log(self, phase: str):
        self.phase = phase
        if self.dry:
            self.log_file = None
            yield
            return
        self.p("logs").mkdir(parents=True, exist_ok=True)
        with open(self.p("logs", f"{phase}.log"), "w", encoding="utf-8", errors="replace") as fh:
            self.log_file = fh
            fh.write(f"# {phase} started {now()}\n")
            fh.flush()
            try:
                yield
            finally:
                fh.write(f"# {phase} ended {now()}\n")
                self.log_file = None

    def note(self, text: str) -> None:
        if self.log_file is not None:
            self.log_file.write(text.rstrip("\n") + "\n")
            self.log_file.flush()

    def run(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            capture: bool = False, light: bool = False, env_shown: dict[str, str] | None = None
            ) -> tuple[int, float, str]:
        """Run argv; output to the phase log (stdout returned too when capture). (exit code, seconds, stdout).

        In --dry-run only ``light`` commands run; the others are printed.
        """
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env_shown or {}).items())
        words = ["<script>" if "\n" in str(a) else str(a) for a in argv]  # python -c snippets
        line = (shown + " " if shown else "") + shlex.join(words)
        if self.dry and not light:
            print(f"    + {line}" + (f"   (cwd {cwd})" if cwd else ""))
            return 0, 0.0, ""
        self.note(f"+ {line}" + (f"   (cwd {cwd})" if cwd else ""))
        sink = self.log_file if self.log_file is not None else subprocess.DEVNULL
        t0 = time.monotonic()
        proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else sink, stderr=sink, text=True,
                                errors="replace")
        try:
            out = proc.stdout.read() if capture and proc.stdout is not None else ""
            code, self.last_cpu = reap(proc)
        except BaseException:
            stop(proc)
            raise
        seconds = time.monotonic() - t0
        if capture and self.log_file is not None:
            self.note(out if len(out) < 20000 else out[:20000] + "\n... (truncated in the log)")
        self.note(f"# exit {code} after {seconds:.2f} s (CPU of the process tree: {self.last_cpu:.1f} s)")
        if code in (-signal.SIGINT, -signal.SIGTERM):
            # Somebody stopped the run (Ctrl-C, kill, end of a session): not a result of the phase.
            raise KeyboardInterrupt
        return code, seconds, out


def stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM a child the run is abandoning (builder passes it on to its build), SIGKILL after grace_s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, end of a session) ends the run like Ctrl-C: children stopped, not recorded


def reap(proc: subprocess.Popen, status_rusage: tuple[int, Any] | None = None) -> tuple[int, float]:
    """Wait for proc with wait4: (exit code, user+system CPU seconds of it and every descendant it waited for)."""
    if status_rusage is None:
        while True:
            try:
                _pid, status, usage = os.wait4(proc.pid, 0)
                break
            except InterruptedError:
                continue
    else:
        status, usage = status_rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode, usage.ru_utime + usage.ru_stime


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if data.get("format") != FORMAT:
        data = {"format": FORMAT}
    data.setdefault("phases", {})
    return data


def base_env(drop: tuple[str, ...] = BUILDER_ENV_DROP, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + pp if pp else "")  # this checkout's builder
    env.update(extra)
    return env


def builder_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "builder", *args]


# ============================================================================ measurements
def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under path (symlinks not followed)."""
    total = files = 0
    if not path.exists():
        return 0, 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.stat(full).st_size
                files += 1
    return total, files


def install_sizes(install: Path) -> dict[str, Any]:
    lib_b, lib_n = tree_size(install / "lib")
    inc_b, inc_n = tree_size(install / "include")
    libs = {p.name: p.stat().st_size for p in sorted((install / "lib").glob("*"))
            if p.is_file() and p.suffix in (".a", ".so")} if (install / "lib").is_dir() else {}
    return {"lib_bytes": lib_b, "lib_files": lib_n, "include_bytes": inc_b, "include_files": inc_n,
            "libraries": libs}


def ccache_stats(env: dict[str, str]) -> dict[str, int]:
    ccache = shutil.which("ccache")
    if not ccache:
        return {}
    proc = subprocess.run([ccache, "--print-stats"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    stats: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().lstrip("-").isdigit():
            stats[key] = int(value)
    return stats


def ccache_summary(stats: dict[str, int]) -> dict[str, int]:
    hits = stats.get("direct_cache_hit", 0) + stats.get("preprocessed_cache_hit", 0)
    return {"hits": hits, "misses": stats.get("cache_miss", 0),
            "cache_size_kib": stats.get("cache_size_kibibyte", 0), "files_in_cache": stats.get("files_in_cache", 0)}


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if not k.endswith("timestamp")}


def first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if lines else "?"


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "machine": platform.machine(),
                            "kernel": platform.release(), "python": platform.python_version()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_bytes"] = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip().strip('"')
    info["compiler"] = first_line([os.environ.get("CXX") or "c++", "--version"])
    info["cmake_path"] = first_line(["cmake", "--version"])
    info["ninja_path"] = first_line(["ninja", "--version"])
    info["ccache"] = first_line(["ccache", "--version"])
    info["git"] = first_line(["git", "--version"])
    return info


def dpkg_version(pkg: str) -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", pkg], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    status, _, version = proc.stdout.partition("\t")
    return version if "install ok installed" in status else None


# ============================================================================ the builder command
def builder_argv(prefix: str, jobs: int, out: Path) -> list[str]:
    argv = builder_cmd("host", "--tag", TAG, "--mirror", prefix, "--allow-unpinned")
    for lib in SYSTEM_LIBS:
        argv += ["--system-lib", lib]
    for sub in SKIP_SUBMODULES:
        argv += ["--skip-submodule", sub]
    return argv + ["--cache", "ccache", "-j", str(jobs), "--out", str(out)]


def builder_env(b: Bench) -> dict[str, str]:
    return base_env(CCACHE_DIR=str(b.p("ccache-builder")), BUILDER_CACHE_DIR=str(b.p("builder-cache")))


def builder_env_shown(b: Bench) -> dict[str, str]:
    return {"CCACHE_DIR": str(b.p("ccache-builder")), "BUILDER_CACHE_DIR": str(b.p("builder-cache"))}


def json_plan(b: Bench, argv: list[str], name: str) -> dict[str, Any]:
    """builder's --json plan for argv (light: runs nothing), saved to ROOT/plans/<name>.json."""
    code, _s, out = b.run([*argv, "--json"], env=builder_env(b), cwd=b.root, capture=True, light=True,
                          env_shown=builder_env_shown(b))
    if code != 0:
        raise PhaseError(f"builder --json plan failed (exit {code}; see {b.p('logs', b.phase + '.log')})")
    plan = json.loads(out)
    if not b.dry:
        b.p("plans").mkdir(parents=True, exist_ok=True)
        (b.p("plans") / f"{name}.json").write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def mirror_prefix(b: Bench) -> str:
    prefix = b.get("mirror").get("prefix")
    return prefix or f"file://{b.p('mirror')}/"


def full_argv(b: Bench) -> list[str]:
    """builder_full's command as recorded (so noop and builder_ops reuse exactly it), else a fresh one."""
    recorded = b.get("builder_full").get("argv")
    if recorded:
        return [sys.executable, *recorded[1:]]
    return builder_argv(mirror_prefix(b), b.jobs, b.p("out-full"))


def ops_argv(b: Bench, out: str = "out-ops", ops: Path | None = None, levers: bool = True) -> list[str]:
    argv = full_argv(b)
    i = argv.index("--out")
    argv[i + 1] = str(b.p(out))
    return argv + ["--ops", str(ops or traced_ops_path(b))] + (["--size-levers"] if levers else [])


def traced_ops_path(b: Bench) -> Path:
    return Path(b.get("trace").get("ops") or b.p("model", "traced.yaml"))


def model_input(b: Bench) -> tuple[str, str]:
    """The model phase's .ptl and its input shape."""
    model = b.get("model")
    return model.get("ptl", str(b.p("model", "mobilenet_v2.ptl"))), model.get("input_shape", "1x3x224x224")


def hit_rate(c: dict[str, int]) -> str:
    """'99.8% (611/612)' from a ccache_summary."""
    total = c["hits"] + c["misses"]
    return f"{pct(c['hits'] / total if total else None)} ({c['hits']}/{total})"


def model_ops_path(b: Bench) -> Path:
    return Path(b.get("model").get("ops") or b.p("model", "mobilenet_v2.ops.yaml"))


def run_builder(b: Bench, argv: list[str]) -> tuple[int, float]:
    code, seconds, _ = b.run(argv, env=builder_env(b), cwd=b.root, env_shown=builder_env_shown(b))
    return code, seconds


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


BUILT_RE = re.compile(r"built -> .*\(([\d.]+) s\)\s*$", re.M)


def builder_build_seconds(log_path: Path) -> float | None:
    """builder's own configure + build + install time of the slice ("host: built -> ... (N s)" in its output):
    the part build_mobile.sh also does (builder's total adds its checkout and the SDK tarball + manifest)."""
    try:
        hits = BUILT_RE.findall(log_path.read_text(errors="replace"))
    except OSError:
        return None
    return float(hits[-1]) if hits else None


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


# Also compared between the two CMakeCache.txt files: the tools each configure found.
CACHE_TOOL_KEYS = ("CMAKE_COMMAND", "CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER", "CMAKE_GENERATOR")
BM_DEFINE_RE = re.compile(r"-D([A-Za-z_][A-Za-z0-9_]*)=([^\"'\s)]*)")


def script_define_values(text: str) -> dict[str, list[str]]:
    """Every -DKEY=VALUE build_mobile.sh can set itself (both branches of its conditionals): key -> values."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for key, value in BM_DEFINE_RE.findall(line):
            values.setdefault(key, []).append(value)
    return values


def script_defines(text: str) -> list[str]:
    return list(script_define_values(text))


def define_difference(plan_defines: dict[str, str], text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(extra, overrides) to pass to build_mobile.sh so CMake sees builder's defines: ``extra`` = keys the script
    never sets; ``overrides`` = keys it sets only to literal values none of which is builder's (values it computes,
    like $(python ...) paths or $INSTALL_PREFIX, are left to it). Both go after the script's own ("$@" is last)."""
    own = script_define_values(text)
    extra = {k: v for k, v in plan_defines.items() if k not in own}
    overrides = {k: v for k, v in plan_defines.items()
                 if k in own and k != "CMAKE_INSTALL_PREFIX" and not any("$" in x for x in own[k])
                 and _norm(v) not in {_norm(x) for x in own[k]}}
    return extra, overrides


def read_cmake_cache(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_\-.]*):[A-Z]+=(.*)$", line)
            if m:
                values[m.group(1)] = m.group(2)
    return values


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    up = value.upper()
    if up in ("ON", "1", "TRUE", "YES", "Y"):
        return "ON"
    if up in ("OFF", "0", "FALSE", "NO", "N", ""):
        return "OFF"
    return value


def tool_dir(describe: str | None) -> str | None:
    """'cmake 4.4.4 (/path/bin/cmake)' -> '/path/bin'."""
    m = re.search(r"\((/[^)]+)\)", describe or "")
    return str(Path(m.group(1)).parent) if m else None


@dataclass(frozen=True)
class BmCommand:
    """build_mobile.sh's command on a fresh copy of builder's patched tree, with builder's defines."""
    build: Path
    argv: list[str]
    env: dict[str, str]
    shown: dict[str, str]
    own: list[str]
    extra: dict[str, str]
    overrides: dict[str, str]
    copy_seconds: float
    cleaned: int


def bm_command(b: Bench, full: dict[str, Any], src: Path, src_dir: str, build_dir: str, ccache_dir: str
               ) -> BmCommand:
    """Copy src (builder's work tree) to ROOT/src_dir and build build_mobile.sh's command for it."""
    b.wipe(src_dir, build_dir, ccache_dir)
    bm_src, bm_build = b.p(src_dir), b.p(build_dir)
    code, t_copy, _ = b.run(["cp", "-a", str(src), str(bm_src)])
    if code != 0:
        raise PhaseError("cp -a of builder's work tree failed")
    # The copy = checkout + patches: drop files builder's configures wrote into the tree (git-ignored).
    code, _s, cleaned = b.run(["git", "-C", str(bm_src), "clean", "-fdX"], capture=True)
    script = bm_src / "scripts" / "build_mobile.sh"
    if b.dry:
        text = subprocess.run(["git", "--git-dir", str(b.p("mirror", "pytorch", "pytorch.git")), "show",
                               f"{TAG}:scripts/build_mobile.sh"], stdout=subprocess.PIPE, text=True).stdout
    else:
        text = script.read_text()
    extra, overrides = define_difference(full["defines"], text)
    path_dirs = list(dict.fromkeys(d for d in (tool_dir(full.get("cmake")), tool_dir(full.get("ninja")),
                                               str(Path(sys.executable).parent)) if d))
    shown = {"BUILD_LITE_INTERPRETER": "1", "BUILD_ROOT": str(bm_build), "MAX_JOBS": str(full.get("jobs", b.jobs)),
             "CCACHE_DIR": str(b.p(ccache_dir))}
    env = base_env(drop=BM_ENV_DROP + ("MAX_JOBS", "BUILD_LITE_INTERPRETER"), **shown)
    env["PATH"] = os.pathsep.join([*path_dirs, env.get("PATH", "")])
    shown_path = {**shown, "PATH": os.pathsep.join([*path_dirs, "$PATH"])}
    argv = ["bash", str(script), *(f"-D{k}={v}" for k, v in {**extra, **overrides}.items())]
    return BmCommand(bm_build, argv, env, shown_path, script_defines(text), extra, overrides, t_copy,
                     len([ln for ln in cleaned.splitlines() if ln.startswith("Removing")]))



def phase_build_mobile(b: Bench) -> dict[str, Any]:
    full = b.get("builder_full")
    if b.dry and not full:
        full = {"source": "<builder's work tree>", "defines": {}, "cmake": None, "ninja": None}
        with contextlib.suppress(PhaseError):
            plan = json_plan(b, full_argv(b), "builder_full")
            full = {"source": plan["source"], "defines": plan["slices"][0]["defines"], "cmake": plan["cmake"],
                    "ninja": plan["ninja"], "build_dir": plan["slices"][0]["build_dir"]}
    src = Path(full["source"])
    if not b.dry and not (src / "scripts" / "build_mobile.sh").is_file():
        raise PhaseError(f"builder's work tree {src} is missing (rerun --phases builder_full)")
    cmd = bm_command(b, full, src, "bm-src", "bm-build", "ccache-bm")
    bm_build, extra, overrides, argv, shown_path = cmd.build, cmd.extra, cmd.overrides, cmd.argv, cmd.shown
    t_copy, cleaned, own = cmd.copy_seconds, cmd.cleaned, cmd.own
    env = cmd.env
    code, seconds, _ = b.run(argv, env=env, cwd=b.root, env_shown=shown_path)
    res: dict[str, Any] = {"argv": argv, "env": shown_path, "exit": code, "seconds": round(seconds, 2),
                           "cpu_seconds": round(b.last_cpu, 1),
                           "copy_seconds": round(t_copy, 2), "script_defines": own, "extra_defines": extra,
                           "override_defines": overrides,
                           "cleaned_files": cleaned}
    if b.dry:
        print(f"    extra defines ({len(extra)}): {' '.join(extra) or '(none: builder_full has no plan yet)'}; "
              f"overrides ({len(overrides)}): {' '.join(f'{k}={v}' for k, v in overrides.items()) or 'none'}")
        return res
    res["ccache"] = ccache_summary(ccache_stats({**os.environ, "CCACHE_DIR": str(b.p("ccache-bm"))}))
    # Same settings? Compare the two CMakeCache.txt files on every define builder passed.
    ours = read_cmake_cache(Path(full["build_dir"]) / "CMakeCache.txt")
    theirs = read_cmake_cache(bm_build / "CMakeCache.txt")
    keys = [k for k in full["defines"] if k != "CMAKE_INSTALL_PREFIX"] + list(CACHE_TOOL_KEYS)
    res["define_mismatches"] = {k: {"builder": ours.get(k), "build_mobile": theirs.get(k)}
                                for k in keys if _norm(ours.get(k)) != _norm(theirs.get(k))}
    res["defines_compared"] = len([k for k in keys if k in ours and k in theirs])
    if code != 0:
        res["status"] = "failed"
        res["summary"] = f"build_mobile.sh exit {code} after {fmt_s(seconds)}"
        return res
    res["install"] = install_sizes(bm_build / "install")
    ratio = full["seconds"] / seconds if seconds else None
    res.update(ratio=ratio, target=BM_TOLERANCE,
               target_met=ratio is not None and abs(ratio - 1) <= BM_TOLERANCE)
    res["summary"] = (f"{fmt_s(seconds)}; builder/build_mobile = {ratio:.3f} (target 1 +/- {BM_TOLERANCE:g}: "
                      f"{'pass' if res['target_met'] else 'FAIL'}); {len(extra)} extra defines; "
                      f"{len(res['define_mismatches'])} CMakeCache differences")
    return res


def run_together(b: Bench, runs: dict[str, tuple[list[str], dict[str, str], dict[str, str]]]
                 ) -> dict[str, dict[str, Any]]:
    """Start every run at once (each in its own session, output to logs/<phase>-<name>.log); reap them as they
    end with wait4: name -> exit, seconds (from the common start), cpu_seconds (its whole process tree)."""
    procs: dict[int, tuple[str, subprocess.Popen]] = {}
    out: dict[str, dict[str, Any]] = {}
    logs = []
    t0 = time.monotonic()
    try:
        for name, (argv, env, shown) in runs.items():
            log = open(b.p("logs", f"{b.phase}-{name}.log"), "w", encoding="utf-8", errors="replace")  # noqa: SIM115
            logs.append(log)
            line = " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items()) + " " + shlex.join(argv)
            log.write(f"+ {line}\n")
            log.flush()
            b.note(f"+ [{name}] {line}   (log: {log.name})")
            proc = subprocess.Popen(argv, env=env, cwd=b.root, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            procs[proc.pid] = (name, proc)
        while len(out) < len(procs):
            pid, status, usage = os.wait4(-1, 0)
            if pid not in procs:
                continue
            name, proc = procs[pid]
            code, cpu = reap(proc, (status, usage))
            out[name] = {"exit": code, "seconds": round(time.monotonic() - t0, 2), "cpu_seconds": round(cpu, 1)}
            b.note(f"# [{name}] exit {code} after {out[name]['seconds']:.2f} s (CPU {cpu:.1f} s)")
            if code in (-signal.SIGINT, -signal.SIGTERM):
                raise KeyboardInterrupt
    except BaseException:
        for name, proc in procs.values():
            if name not in out and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        raise
    finally:
        for log in logs:
            log.close()
    return out


def phase_paired(b: Bench) -> dict[str, Any]:
    """builder_full's cold build and build_mobile.sh's, started at the same moment on the same machine.

    On a shared VM the speed of one compile drifts by up to a third within minutes (docs/benchmarks.md), so two
    builds an hour apart compare the machine as much as the tools. Run together, both see the same drift; the
    CPU time of each process tree (wait4) is the overhead measure, the wall times are shown beside it (the one
    that ends first leaves the machine to the other, which pulls the wall ratio toward 1)."""
    full = b.get("builder_full")
    src = Path(full.get("source", "<builder's work tree>"))
    if not b.dry and not (src / "scripts" / "build_mobile.sh").is_file():
        raise PhaseError(f"builder's work tree {src} is missing (rerun --phases builder_full)")
    b.wipe(*PAIRED_DIRS)
    bm = bm_command(b, full, src, "bm-src-paired", "bm-build-paired", "ccache-paired-bm")
    argv = builder_argv(mirror_prefix(b), int(full.get("jobs", b.jobs)), b.p("out-paired"))
    shown = {"CCACHE_DIR": str(b.p("ccache-paired-builder")),
             "BUILDER_CACHE_DIR": str(b.p("builder-cache-paired"))}
    runs = {"builder": (argv, base_env(**shown), shown), "build_mobile": (bm.argv, bm.env, bm.shown)}
    if b.dry:
        for name, (a, _e, sh) in runs.items():
            print(f"    + [{name}, together] " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sh.items()) + " "
                  + shlex.join(a))
        return {}
    r = run_together(b, runs)
    res: dict[str, Any] = {"runs": r, "builder_argv": argv, "builder_env": shown, "build_mobile_argv": bm.argv,
                           "build_mobile_env": bm.shown, "copy_seconds": round(bm.copy_seconds, 2),
                           "builder_build_seconds": builder_build_seconds(b.p("logs", "paired-builder.log"))}
    failed = [n for n, v in r.items() if v["exit"] != 0]
    if failed:
        res["status"] = "failed"
        res["summary"] = "; ".join(f"{n} exit {r[n]['exit']} (log: {b.p('logs', 'paired-' + n + '.log')})"
                                   for n in failed)
        return res
    rb, rm = r["builder"], r["build_mobile"]
    res["ratio_cpu"] = rb["cpu_seconds"] / rm["cpu_seconds"]
    res["ratio_wall"] = rb["seconds"] / rm["seconds"]
    res["target_met"] = all(abs(res[k] - 1) <= BM_TOLERANCE for k in ("ratio_cpu", "ratio_wall"))
    res["summary"] = (f"together: builder {fmt_s(rb['seconds'])} wall / {fmt_s(rb['cpu_seconds'])} CPU, "
                      f"build_mobile.sh {fmt_s(rm['seconds'])} / {fmt_s(rm['cpu_seconds'])}; builder/build_mobile "
                      f"CPU {res['ratio_cpu']:.3f}, wall {res['ratio_wall']:.3f} (target 1 +/- {BM_TOLERANCE:g}: "
                      f"{'pass' if res['target_met'] else 'FAIL'})")
    return res



RUNNER_SNIPPET = r"""
import json, sys
from pathlib import Path
from builder.errors import BuilderError
from builder.models import verify as v
install_dir, work, model, shape = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
mode, gc, extra = sys.argv[5], ["-Wl,--gc-sections"] if sys.argv[6] == "1" else [], sys.argv[7:]
inst = v.find_install(Path(install_dir))
out = {"extra_link_args": gc, "link_mode": mode}
try:
    runner = v.compile_runner(inst, work, link_mode=mode, extra_link_args=gc)
except BuilderError as exc:
    out["plain_link_error"] = str(exc)
    out["extra_link_args"] = gc + extra
    runner = v.compile_runner(inst, work, link_mode=mode, extra_link_args=gc + extra)
out["runner"] = str(runner.path)
out["command"] = list(runner.command)
try:
    r = v.verify_model(model, runner, v.make_inputs(v.parse_shapes(shape), 0), work)
    out.update(verify="pass", max_abs=r.max_abs_error, max_rel=r.max_rel_error, forward_ms=r.forward_ms)
except BuilderError as exc:
    out["verify"] = "fail: " + str(exc)
print("RESULT " + json.dumps(out))
"""


def _shared_deps(binary: Path) -> dict[str, int]:
    """Non-libc shared libraries the runner loads (the system XNNPACK & co), with their sizes."""
    proc = subprocess.run(["ldd", str(binary)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deps: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m and re.search(r"XNNPACK|cpuinfo|pthreadpool|clog", m.group(1)):
            deps[m.group(1)] = Path(m.group(2)).resolve().stat().st_size
    return deps


def _size_json(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of `builder size --json` the report shows (its format may still change: kept loose)."""
    def part(r: dict[str, Any] | None) -> dict[str, Any] | None:
        if not r:
            return None
        keep = ("label", "link_mode", "link_flags", "binary_size", "stripped_size", "verified", "verify_ok",
                "forced_objects")
        out = {k: r.get(k) for k in keep if k in r}
        out["contributors"] = [{"name": c.get("name"), "size": c.get("size")} for c in r.get("contributors", [])[:12]]
        return out
    return {"report": part(data.get("report")), "baseline": part(data.get("baseline")), "ratio": data.get("ratio")}


def phase_sizes(b: Bench) -> dict[str, Any]:
    ptl, shape = model_input(b)
    # full and plain link as PyTorch's own JNI library does (--whole-archive), ops as builder's levers say
    # (force-load only the registering objects); all with --gc-sections, as the shared facts' runner.
    installs = {"full": b.get("builder_full").get("install_dir", "<out-full install>"),
                "ops": b.get("builder_ops_warm").get("install_dir", "<out-ops install>")}
    if b.ok("builder_plain"):
        installs["plain"] = b.get("builder_plain")["install_dir"]
    modes = {"full": "whole-archive", "plain": "whole-archive", "ops": "registrations"}
    libs = b.get("builder_full").get("argv") or full_argv(b)
    extra = [SYSTEM_LINK[libs[i + 1]] for i, a in enumerate(libs) if a == "--system-lib" and libs[i + 1] in SYSTEM_LINK]
    env = builder_env(b)
    res: dict[str, Any] = {"model": ptl, "input_shape": shape}
    b.wipe("sizes")
    if not b.dry:
        b.p("sizes").mkdir(parents=True)
    for variant, install in installs.items():
        row: dict[str, Any] = {"install_dir": install}
        if not b.dry:
            row["install"] = install_sizes(Path(install))
        # 1. builder verify, as a user runs it
        code, secs, out = b.run(builder_cmd("verify", "--build", install, "--model", ptl, "--shapes", shape,
                                            "--link", modes[variant], "--gc-sections"),
                                env=env, cwd=b.root, capture=True, env_shown=builder_env_shown(b))
        row["verify_cli"] = {"exit": code, "seconds": round(secs, 2), "output": out.strip()[-400:]}
        # 2. the runner itself (builder.models.verify.compile_runner); system libraries added when needed
        code, secs, out = b.run([sys.executable, "-c", RUNNER_SNIPPET, install,
                                 str(b.p("builder-cache", "verify")), ptl, shape, modes[variant], "1", *extra],
                                env=env, cwd=b.root, capture=True)
        if b.dry:
            continue
        m = re.search(r"^RESULT (.*)$", out, re.M)
        if code != 0 or not m:
            row["runner_error"] = f"runner snippet exit {code} (see {b.p('logs', 'sizes.log')})"
            res[variant] = row
            continue
        info = json.loads(m.group(1))
        row.update(info)
        runner = Path(info["runner"])
        copy = b.p("sizes", f"runner-{variant}")
        shutil.copy2(runner, copy)
        b.run(["strip", "-o", str(copy) + ".stripped", str(copy)])
        row["runner_bytes"] = copy.stat().st_size
        row["runner_stripped_bytes"] = Path(str(copy) + ".stripped").stat().st_size
        row["shared_deps"] = _shared_deps(copy)
        row["verify"] = info.get("verify")
        res[variant] = row
    # `builder size` (being added by another engineer): used when this builder has it.
    code, _s, help_text = b.run(builder_cmd("size", "--help"), env=env, capture=True, light=True)
    res["builder_size_available"] = code == 0
    if code == 0:
        argv = builder_cmd("size", "--build", installs["ops"], "--baseline", installs["full"], "--link",
                           "registrations", "--baseline-link", "whole-archive", "--gc-sections")
        if "--model" in help_text:
            argv += ["--model", ptl, "--shapes", shape]
        if "--json" in help_text:
            argv.append("--json")
        code, secs, out = b.run(argv, env=env, cwd=b.root, capture=True, env_shown=builder_env_shown(b))
        res["builder_size"] = {"argv": argv, "exit": code, "seconds": round(secs, 2)}
        if not b.dry:
            (b.p("sizes") / ("builder-size.json" if "--json" in argv else "builder-size.txt")).write_text(out)
            try:
                res["builder_size"]["json"] = _size_json(json.loads(out))
            except (ValueError, TypeError, KeyError, AttributeError):
                res["builder_size"]["output"] = out[-6000:]
    if b.dry:
        return res
    full, ops = res.get("full", {}), res.get("ops", {})
    if not (full.get("runner_stripped_bytes") and ops.get("runner_stripped_bytes")):
        raise_with = full.get("runner_error") or ops.get("runner_error") or "no runner"
        res.update(status="failed", summary=f"runner not built: {raise_with}")
        return res
    ratio = ops["runner_stripped_bytes"] / full["runner_stripped_bytes"]
    res.update(runner_ratio=ratio, target_met=ratio < 1.0 and full.get("verify") == "pass"
               and ops.get("verify") == "pass", issue8_target=ISSUE8_TARGET)
    res["summary"] = (f"runner stripped full {mib(full['runner_stripped_bytes'])}, ops "
                      f"{mib(ops['runner_stripped_bytes'])} (ops/full {ratio:.3f}); verify full "
                      f"{short(full.get('verify'))}, ops {short(ops.get('verify'))}; builder verify CLI exit "
                      f"{full['verify_cli']['exit']}/{ops['verify_cli']['exit']}")
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


# ============================================================================ formatting
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"
    m, s = divmod(round(seconds), 60)
    return f"{seconds:,.0f} s ({m} min {s:02d} s)"


def mib(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:,.1f} MiB" if abs(n) >= 2**20 else f"{n / 2**10:,.1f} KiB"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def short(text: str | None) -> str:
    if not text:
        return "not run"
    return "pass" if text == "pass" else "FAIL"


# ============================================================================ report
def paired_time(pair: dict[str, Any]) -> str:
    runs = pair.get("runs") or {}
    if not runs:
        return "-"
    return "; ".join(f"{name} {fmt_s(r['seconds'])} (CPU {fmt_s(r['cpu_seconds'])})" for name, r in runs.items())


def render_report(results: dict[str, Any], root: Path) -> str:
    ph = results.get("phases", {})
    m = results.get("machine", {})
    full, bm = ph.get("builder_full", {}), ph.get("build_mobile", {})
    ops = ph.get("builder_ops_warm") or ph.get("builder_ops", {})
    build_s = full.get("build_seconds") or builder_build_seconds(root / "logs" / "builder_full.log")
    ratio_build = build_s / bm["seconds"] if build_s and bm.get("seconds") and bm.get("exit") == 0 else None

    def rel(path: str | None) -> str:
        if not path:
            return "-"
        with contextlib.suppress(ValueError):
            return "ROOT/" + str(Path(path).relative_to(root))
        return path

    cmd = "python benchmarks/real_pytorch.py"
    if root != DEFAULT_ROOT:
        cmd += f" --root {root}"
    jobs = full.get("jobs") or results.get("jobs")
    if jobs and jobs != m.get("nproc"):
        cmd += f" -j {jobs}"
    L: list[str] = []
    L += ["# Benchmarks: builder on real PyTorch v1.13.1 (host, lite interpreter)", "",
          "Generated by `benchmarks/real_pytorch.py` from `ROOT/results.json` "
          f"(ROOT = `{root}`; last updated {results.get('updated', '-')}). Do not edit by hand: rerun "
          "`python benchmarks/real_pytorch.py --report`. What each phase does and why each flag is needed: "
          "`benchmarks/real_pytorch.py` (docstring) and `docs/real_pytorch_notes.md`.", "",
          "## Reproduce", "", "```", 'pip install -e . "torch==2.13.0"',
          f"{cmd}            # resumable: a re-run skips finished phases; --fresh starts over", "```", "",
          "From a clean machine state: as root it adds a `deb-src` copy of the machine's Debian entries when there "
          "is none (the mirror's first run) and installs the Debian packages. 1-2 hours on 2 cores. Single phases: "
          "`--phases builder_ops,sizes`; logs in `ROOT/logs/<phase>.log`.", ""]
    # machine
    mir_pkgs = ph.get("mirror", {}).get("packages", {})
    cmake = full.get("cmake") or m.get("cmake_path")
    ninja = full.get("ninja") or m.get("ninja_path")
    L += ["Earlier runs, each as it was rendered (other machines: compare ratios, not seconds): "
          "`docs/benchmarks-history/`.", ""]
    L += ["## Machine", "", "| | |", "| --- | --- |",
          f"| CPU | {m.get('cpu', '-')} ({m.get('machine', '-')}) |",
          f"| cores (nproc) | {m.get('nproc', '-')} |",
          f"| RAM | {m['ram_bytes'] / 2**30:.1f} GiB |" if m.get("ram_bytes") else "| RAM | - |",
          f"| OS | {m.get('os', '-')}, kernel {m.get('kernel', '-')} |",
          f"| compiler | {m.get('compiler', '-')} |",
          f"| CMake | {cmake or '-'} |", f"| Ninja | {ninja or '-'} |",
          f"| ccache | {m.get('ccache', '-')} |", f"| git | {m.get('git', '-')} |",
          f"| Python / torch | {m.get('python', '-')} / {ph.get('model', {}).get('torch', '-')} |",
          "| Debian packages | " + (", ".join(f"{k} {v}" for k, v in sorted(mir_pkgs.items())) or "-") + " |", ""]
    # phase table
    def status(d: dict[str, Any]) -> str:
        if not d:
            return "not run"
        if d.get("status") != "ok":
            return "FAILED"
        if "target_met" in d:
            return "pass" if d["target_met"] else "FAIL"
        return "ok"

    def row(name: str, what: str, time_s: str, target: str) -> str:
        d = ph.get(name, {})
        if not d:
            return f"| {name} | {what} | not run | {target} | not run |"
        return f"| {name} | {what} | {time_s} | {target} | {status(d)} |"

    mir, mod, noop, sz, sub, pair = (ph.get(k, {}) for k in ("mirror", "model", "noop", "sizes", "submodules",
                                                               "paired"))
    ratio_ops = ops.get("ratio_to_cold")
    ratio_bm = bm.get("ratio")
    L += ["## Results", "", "| phase | what | time | ratio / target | result |", "| --- | --- | --- | --- | --- |",
          row("mirror", "local upstream-shaped mirror ({}) + Debian packages".format(
              "cached" if mir.get("cached") else "made"), fmt_s(mir.get("seconds")), "-"),
          row("model", "MobileNetV2-style model: .pt, .ptl (bytecode v{}), {} root operators".format(
              mod.get("bytecode_version", "?"), len(mod.get("operators", []))), fmt_s(mod.get("seconds")), "-"),
          row("builder_full", "`builder host` full lite build, cold: checkout + configure + build + install + "
              "package, empty ccache", fmt_s(full.get("seconds")), "-"),
          row("noop", "the same command again", fmt_s(noop.get("seconds")), f"<= {NOOP_TARGET_S:g} s"),
          row("trace", "`builder ops --trace`: root operators + what they call on the full build",
              fmt_s(ph.get("trace", {}).get("seconds")), "-"),
          row("builder_ops", "`--ops traced.yaml --size-levers`, fresh out folder; ccache from builder_full, "
              "but -DTRACING_BASED -DNO_EXPORT -Os change every compile line", fmt_s(ph.get("builder_ops", {})
                                                                                   .get("seconds")), "-"),
          row("builder_ops_warm", "the same command, out folder wiped: rebuild with a warm ccache",
              fmt_s(ops.get("seconds")), f"{pct(ratio_ops)} of cold (<= {WARM_TARGET:.0%})" if ratio_ops is not None
              else f"<= {WARM_TARGET:.0%} of cold"),
          row("removed_op", f"traced list minus {REMOVED_OP}, warm ccache; `builder verify` must fail naming it",
              fmt_s(ph.get("removed_op", {}).get("seconds")), "verify fails, names the operator"),
          row("builder_plain", "optional: PyTorch's plain selective build (`--ops` root list, no levers)",
              fmt_s(ph.get("builder_plain", {}).get("seconds")), "-"),
          row("build_mobile", "PyTorch's `scripts/build_mobile.sh`, same tree, defines and tools, empty ccache",
              fmt_s(bm.get("seconds")),
              (f"builder/build_mobile = {ratio_bm:.3f} (1 +/- {BM_TOLERANCE:g})" if ratio_bm else
               f"builder/build_mobile (1 +/- {BM_TOLERANCE:g})")
              + (f"; configure+build+install only: {fmt_s(build_s)} / {fmt_s(bm['seconds'])} = {ratio_build:.3f}"
                 if ratio_build else "")),
          row("paired", "optional: builder_full's and build_mobile.sh's cold builds again, started together "
              "(both see the same machine); CPU = the process tree's user+sys (wait4)", paired_time(pair),
              (f"builder/build_mobile CPU {pair['ratio_cpu']:.3f}, wall {pair['ratio_wall']:.3f} "
               f"(1 +/- {BM_TOLERANCE:g})") if pair.get("ratio_cpu") else f"builder/build_mobile (1 +/- {BM_TOLERANCE:g})"),
          row("sizes", "runner linked against each install, stripped; `builder verify`", "-",
              f"ops/full = {sz['runner_ratio']:.3f} (< 1; issue 8: <= {ISSUE8_TARGET})" if sz.get("runner_ratio")
              else "ops/full < 1"),
          row("submodules", "fetched (builder_full manifest) vs listed in `.gitmodules`", "-",
              f"{sub.get('fetched_count')} of {sub.get('listed_count')}" if sub else "-"), ""]
    for name in PHASES:
        d = ph.get(name, {})
        if d.get("summary"):
            L.append(f"- **{name}**: {d['summary']}")
    L.append("")
    # sizes table
    def inst(d: dict[str, Any], key: str) -> int | None:
        return (d.get("install") or {}).get(key)

    sfull, sops = sz.get("full", {}), sz.get("ops", {})
    rf, ro = sfull.get("runner_stripped_bytes"), sops.get("runner_stripped_bytes")

    def ratio_cell(a: int | None, c: int | None) -> str:
        return f"{c / a:.3f}" if a and c else "-"

    lf, lo = inst(full, "lib_bytes"), inst(ops, "lib_bytes")
    i_f, i_o = inst(full, "include_bytes"), inst(ops, "include_bytes")
    tf = (full.get("install") or {}).get("libraries", {}).get("libtorch_cpu.a")
    to = (ops.get("install") or {}).get("libraries", {}).get("libtorch_cpu.a")
    L += ["## Sizes", ""]
    if not (lf or lo or sz):
        L += ["not run", ""]
    else:
        plain = sz.get("plain", {})
        if not plain.get("runner_stripped_bytes"):
            L += ["PyTorch's plain selective build (the 17 root operators as a plain SELECTED_OP_LIST, no levers) was "
                  "not rebuilt by this run (optional phase: `--phases builder_plain,sizes`). Measured earlier on the "
                  "same tree through builder with the same runner (whole-archive, --gc-sections): 30.2 MB stripped = "
                  "0.88 of full, model verified (docs/real_pytorch_notes.md, recipes/v1.13.1.toml selected_ops notes).",
                  ""]
        if plain.get("runner_stripped_bytes"):
            L += [f"PyTorch's plain selective build (root list, whole-archive, --gc-sections): runner stripped "
                  f"{mib(plain['runner_stripped_bytes'])} = {ratio_cell(rf, plain['runner_stripped_bytes'])} of full; "
                  f"verify {short(plain.get('verify'))}.", ""]
        L += ["Runners: full links `--whole-archive` (as PyTorch's JNI library does), builder's force-loads only "
              "the registering objects; both `-Wl,--gc-sections`.", "",
              "| | full | traced ops + size levers | ops/full |", "| --- | --- | --- | --- |",
              f"| installed `lib/` | {mib(lf)} | {mib(lo)} | {ratio_cell(lf, lo)} |",
              f"| installed `include/` | {mib(i_f)} | {mib(i_o)} | {ratio_cell(i_f, i_o)} |",
              f"| `libtorch_cpu.a` | {mib(tf)} | {mib(to)} | {ratio_cell(tf, to)} |",
              f"| runner, unstripped | {mib(sfull.get('runner_bytes'))} | {mib(sops.get('runner_bytes'))} | "
              f"{ratio_cell(sfull.get('runner_bytes'), sops.get('runner_bytes'))} |",
              f"| runner, stripped | {mib(rf)} | {mib(ro)} | {ratio_cell(rf, ro)} |",
              f"| model verified on the runner | {short(sfull.get('verify')) if sz else 'not run'} | "
              f"{short(sops.get('verify')) if sz else 'not run'} | |",
              f"| `builder verify` exit code | {sfull.get('verify_cli', {}).get('exit', '-')} | "
              f"{sops.get('verify_cli', {}).get('exit', '-')} | |", ""]
    if bm.get("install"):
        L += [f"build_mobile.sh's install for comparison: `lib/` {mib(bm['install']['lib_bytes'])}, `include/` "
              f"{mib(bm['install']['include_bytes'])}.", ""]
    if sz:
        deps = sfull.get("shared_deps") or {}
        if deps:
            L += ["Shared system libraries the runner loads (not in its size): " +
                  ", ".join(f"{k} {mib(v)}" for k, v in sorted(deps.items())) + ".", ""]
        if sfull.get("plain_link_error"):
            L += [f"The runner links with `{' '.join(sfull['extra_link_args'])}` added to "
                  "`builder.models.verify.compile_runner`'s link line (the plain line fails: "
                  f"`{str(sfull.get('plain_link_error', ''))[:160]}`).", ""]
        L += render_builder_size(sz, root)
    # submodules
    L += ["## Submodules", ""]
    if sub:
        L += [f"Fetched {sub['fetched_count']} of the {sub['listed_count']} submodules listed in the mirror's "
              f"`.gitmodules`: " + ", ".join(f"`{p}`" for p in sorted(sub["fetched"])) + ". Skipped: "
              + ", ".join(f"`{p}`" for p in sub.get("skipped", [])) + " (`--skip-submodule`). XNNPACK, cpuinfo and "
              "pthreadpool come from Debian (`--system-lib`).", ""]
    else:
        L += ["not run", ""]
    # details
    L += ["## Details", ""]
    if not (full.get("argv") or bm.get("argv")):
        L += ["not run", ""]
    if full.get("argv"):
        L += ["builder_full's command (noop: the same; builder_ops: `--out ROOT/out-ops --ops <op list>` instead):",
              "", "```", (" ".join(f"{k}={v}" for k, v in full.get("env", {}).items()) + " \\\n  "
                          + shlex.join(["builder", *full["argv"][3:]])).replace(str(root), "ROOT").lstrip(" \\\n"),
              "```", ""]
    if bm.get("argv"):
        extra = {**bm.get("extra_defines", {}), **bm.get("override_defines", {})}
        L += ["build_mobile.sh's command: the defines in builder's plan that the script does not set itself "
              f"(computed: plan defines minus the {len(bm.get('script_defines', []))} `-D` keys in the script) "
              "are passed as its arguments, which it gives to CMake last:", "", "```",
              " ".join(f"{k}={v}" for k, v in bm.get("env", {}).items()).replace(str(root), "ROOT") + " \\",
              "  bash ROOT/bm-src/scripts/build_mobile.sh \\",
              "    " + " \\\n    ".join(f"-D{k}={v}" for k, v in extra.items()), "```", "",
              ("Defines the script sets to another value, passed to match builder's: " +
               ", ".join(f"`{k}={v}`" for k, v in bm["override_defines"].items()) + "."
               if bm.get("override_defines") else "No define of the script's own needed another value."), "",
              f"CMakeCache.txt of builder's build folder vs build_mobile.sh's, on every define builder passed "
              f"(except the install prefix) and the tools found ({', '.join(CACHE_TOOL_KEYS)}; "
              f"{bm.get('defines_compared', '?')} entries compared): "
              + ("identical." if not bm.get("define_mismatches") else
                 "; ".join(f"`{k}` {v['builder']} vs {v['build_mobile']}" for k, v in bm["define_mismatches"].items()))
              + f" The tree is a `cp -a` of builder's work tree ({bm.get('cleaned_files', 0)} git-ignored files "
              "that builder's configures wrote into it removed with `git clean -fdX`).", ""]
    cc = [(n, ph.get(n, {}).get("ccache")) for n in ("builder_full", "noop", "builder_ops", "build_mobile")]
    cc = [(n, c) for n, c in cc if c]
    if cc:
        L += ["ccache (per phase): " + "; ".join(f"{n} {c['hits']} hits / {c['misses']} misses" for n, c in cc) + ".",
              ""]
    # notes
    mirror_commit = mir.get("pytorch_commit")
    L += ["## Notes", "",
          "- XNNPACK, cpuinfo and pthreadpool are Debian's **shared** libraries (`libxnnpack-dev`, `libcpuinfo-dev`, "
          "`libpthreadpool-dev`; `--system-lib`), because Debian serves no source for them. They are not in the "
          "install tree and not in the runner's size: the runner loads them at run time (sizes above).",
          "- `third_party/pocketfft` cannot be had (no Debian or PyPI package), so the build skips it "
          "(`--skip-submodule third_party/pocketfft`, made optional by `patches/v1.13.1/0001`): FFT operators "
          "raise at run time. `0002` makes the kineto header optional.",
          "- The mirror's v1.13.1 commit is made from Debian's `+dfsg` source tarball "
          f"(`{(mirror_commit or 'c0f7ff6c…')[:12]}`), not upstream's `49444c3e…`: hence `--allow-unpinned`.",
          "- Both builds use `CMAKE_BUILD_TYPE=Release` (the recipe's and build_mobile.sh's), the same CMake and "
          "Ninja (builder's, first on build_mobile.sh's PATH), the same `-j`, and ccache with an empty cache. "
          "builder's cold time includes its checkout (the mirror is local) and the SDK tarball with its manifest, "
          "build_mobile.sh's does not; the ratio cell also compares the part both do (builder's "
          "\"built -> ... (N s)\" line: configure + build + install).",
          "- Why `paired`: on this VM the same compile of one file, alone, took 27-37 s within 8 minutes "
          "(docs/real_pytorch_notes.md 5.1), so two builds an hour apart can differ by more than the 5% target for "
          "reasons neither tool controls. `paired` starts both cold builds at the same moment (own folders, own "
          "empty ccache) so both see the same machine; the CPU time of each process tree (wait4: builder's Python, "
          "checkout and packaging included) is the overhead measure, the wall ratio is shown beside it (the build "
          "that ends first leaves both cores to the other, which pulls the wall ratio toward 1).",
          "- The benchmark removes `CCACHE_BASEDIR`, `SELECTED_OP_LIST`, `MAX_JOBS` and `BUILDER_MIRROR` from the "
          "environment it passes on, so the command lines above say everything."]
    occ = ops.get("ccache") or {}
    total = occ.get("hits", 0) + occ.get("misses", 0)
    if total and occ["hits"] / total < 0.5:
        L += [f"- builder_ops hit only {occ['hits']} of {total} compilations in the warm ccache: ccache hashes "
              "absolute paths, and PyTorch's objects are compiled with `-I<out>/build/<slice>/...` (headers "
              "generated in the build folder), a path that differs between `--out ROOT/out-full` and "
              "`--out ROOT/out-ops`. "
              "Checked on two one-file builds: same source, `-I` in two different folders: miss; the same with "
              "`CCACHE_BASEDIR` set to their common parent: hit."]
    L.append("")
    return "\n".join(L)


def render_builder_size(sz: dict[str, Any], root: Path) -> list[str]:
    if not sz.get("builder_size_available"):
        return ["`builder size` did not exist when this ran.", ""]
    bs = sz.get("builder_size", {})
    argv = bs.get("argv", [])
    cmd = shlex.join(["builder", *argv[3:]]).replace(str(root), "ROOT") if argv else "builder size"
    L = [f"`{cmd}` (exit {bs.get('exit', '?')}):", ""]
    data = bs.get("json")
    if not data:
        return L + ["```", (bs.get("output") or "").rstrip()[-3000:], "```", ""]
    rep, base = data.get("report") or {}, data.get("baseline") or {}
    ratio = data.get("ratio")
    L += ["| | ops (`--build`) | full (`--baseline`) | ratio |", "| --- | --- | --- | --- |",
          f"| link | {rep.get('link_mode', '-')} {' '.join(rep.get('link_flags') or [])} | "
          f"{base.get('link_mode', '-')} {' '.join(base.get('link_flags') or [])} | |",
          f"| linked | {mib(rep.get('binary_size'))} | {mib(base.get('binary_size'))} | |",
          f"| stripped | {mib(rep.get('stripped_size'))} | {mib(base.get('stripped_size'))} | "
          f"{f'{ratio:.3f}' if ratio else '-'} |",
          f"| model | {rep.get('verified') or '-'} | {base.get('verified') or '-'} | |", ""]
    contrib = rep.get("contributors") or []
    if contrib:
        base_c = {c["name"]: c["size"] for c in base.get("contributors") or []}
        L += ["Largest contributors (ops build; baseline's size where it is among its own largest):", "",
              "| input | ops | full |", "| --- | --- | --- |"]
        L += [f"| `{c['name']}` | {mib(c['size'])} | {mib(base_c.get(c['name']))} |" for c in contrib[:10]]
        L.append("")
    return L


def write_report(results: dict[str, Any], root: Path, doc: Path) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_report(results, root))


# ============================================================================ main
def parse_phases(text: str | None) -> list[str]:
    if not text:
        return [p for p in PHASES if p not in OPTIONAL_PHASES]
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s): {', '.join(unknown)} (phases: {', '.join(PHASES)})")
    return [p for p in PHASES if p in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="phases: " + ", ".join(PHASES))
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"benchmark folder (default {DEFAULT_ROOT})")
    ap.add_argument("--fresh", action="store_true",
                    help="forget results and wipe ROOT's benchmark folders (not mirror/, downloads/); "
                         "with --phases: only those phases' results")
    ap.add_argument("--phases", help="comma-separated subset to run, e.g. builder_ops,sizes")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel jobs (default: nproc)")
    ap.add_argument("--from", dest="seeds", type=Path, action="append", default=[],
                    help="folder with already downloaded Debian orig tarballs (for the mirror's first run)")
    ap.add_argument("--report", action="store_true", help="only render the report from ROOT/results.json")
    ap.add_argument("--doc", type=Path, default=DEFAULT_DOC, help=f"report file (default {DEFAULT_DOC})")
    ap.add_argument("--dry-run", action="store_true",
                    help="print each phase's commands; runs only light ones (builder --json plans, which may "
                         "create ROOT/builder-cache/tool-versions.json); records nothing")
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
    print(f"root {root}  (results.json, logs/)  -j {args.jobs}" + ("  [dry run]" if args.dry_run else ""), flush=True)
    failed = 0
    for name in phases:
        if b.ok(name) and not args.dry_run:
            print(f"{name:<13} done earlier: {b.get(name).get('summary', '')}", flush=True)
            continue
        missing = [n for n in NEEDS[name] if not b.ok(n)]
        if missing and not args.dry_run:
            print(f"{name:<13} skipped: needs {', '.join(missing)} (not ok in results.json)", flush=True)
            failed += 1
            continue
        if args.dry_run:
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
        res["phase_seconds"] = round(time.monotonic() - t0, 2)
        res["finished"] = now()
        b.results["phases"][name] = res
        b.results["updated"] = res["finished"]
        b.save()
        mark = "ok  " if res["status"] == "ok" else "FAILED"
        print("\r\033[K" if sys.stdout.isatty() else "", end="")
        print(f"{name:<13} {mark} {res.get('summary', '')}", flush=True)
        if res["status"] != "ok":
            failed += 1
    if args.dry_run:
        return 0
    write_report(b.results, root, args.doc)
    print(f"results: {b.results_path}\nreport:  {args.doc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
