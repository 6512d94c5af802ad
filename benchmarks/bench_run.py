"""The real-PyTorch benchmark's machinery, shared by its phases (real_pytorch.py, bench_mobile.py,
bench_sizes.py): Bench (ROOT/results.json, the phase logs, running a command timed with the CPU of its process
tree), stopping and reaping children, the environment passed on, the measurements (install and tree sizes,
ccache statistics, the machine) and builder's command line, --json plan and environment for a phase."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_spec import BUILDER_ENV_DROP, FORMAT, REPO, SKIP_SUBMODULES, SYSTEM_LIBS, TAG, pct


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
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


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

