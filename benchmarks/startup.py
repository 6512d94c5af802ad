#!/usr/bin/env python3
"""Start-up time of the builder CLI against its 0.3 s budget, and whether torch gets imported.

    python benchmarks/startup.py [-n 10] [--json]

Measures (wall time, time.monotonic around the process; one warm-up run first, not counted):
  * ``builder --help``
  * ``builder android --ndk <stand-in NDK r20 in a temp dir> --abi arm64-v8a --dry-run``
each run as ``python -m builder`` (this checkout, through PYTHONPATH) and, when installed, as the ``builder``
console script of this Python (the real entry point, not a pyenv shim). Then runs each command once with
``python -X importtime`` and reports whether any ``torch`` module was imported, and the slowest top-level
imports. Runs in a temp dir with its own BUILDER_CACHE_DIR (nothing of the user's is touched); the
environment variables that change builder's settings (ANDROID_NDK*, SELECTED_OP_LIST, ...) are removed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 0.3
NDK_REVISION = "20.0.5594570"
DROP_ENV = ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT", "ANDROID_HOME", "ANDROID_SDK_ROOT",
            "SELECTED_OP_LIST", "MAX_JOBS", "BUILDER_MIRROR", "BUILDER_CACHE_DIR", "PYTHONPROFILEIMPORTTIME")
IMPORT_RE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def make_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["BUILDER_CACHE_DIR"] = str(tmp / "cache")
    env["COLUMNS"] = "100"
    return env


def time_runs(argv: list[str], env: dict[str, str], cwd: Path, n: int) -> dict[str, object]:
    def once() -> tuple[float, int]:
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - t0, proc.returncode

    once()  # warm-up: page cache, .pyc files, builder's tool-version cache
    times, codes = [], set()
    for _ in range(n):
        seconds, code = once()
        times.append(seconds)
        codes.add(code)
    median = statistics.median(times)
    return {"median_s": round(median, 4), "min_s": round(min(times), 4), "max_s": round(max(times), 4),
            "runs": n, "exit_codes": sorted(codes), "within_budget": median <= BUDGET_S}


def import_report(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "builder", *args], env=env, cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    modules: list[str] = []
    top: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        m = IMPORT_RE.match(line)
        if not m:
            continue
        name = m.group(4)
        modules.append(name)
        if len(m.group(3)) <= 1:  # a top-level import (nested ones are indented further)
            top.append((int(m.group(2)), name))
    torch_mods = [name for name in modules if name == "torch" or name.startswith("torch.")]
    top.sort(reverse=True)
    return {"exit": proc.returncode, "modules": len(modules), "torch_imported": bool(torch_mods),
            "torch_modules": torch_mods[:5], "slowest_top_level": [(name, round(us / 1000, 1)) for us, name in top[:5]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=10, help="timed runs per command (default 10)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("-n must be >= 1")
    sys.path.insert(0, str(REPO))
    from tests.fixtures.standin_ndk import make_standin_ndk

    with tempfile.TemporaryDirectory(prefix="builder-startup-") as tmp_name:
        tmp = Path(tmp_name)
        ndk = make_standin_ndk(tmp / "ndk", revision=NDK_REVISION)
        work = tmp / "cwd"
        work.mkdir()
        env = make_env(tmp)
        commands = {
            "builder --help": ["--help"],
            "builder android --ndk <stand-in r20> --abi arm64-v8a --dry-run":
                ["android", "--ndk", str(ndk), "--abi", "arm64-v8a", "--dry-run"],
        }
        script = Path(sysconfig.get_path("scripts")) / "builder"
        launchers = {"python -m builder": [sys.executable, "-m", "builder"]}
        if script.is_file():
            launchers[f"console script {script}"] = [str(script)]
        rows = []
        for label, cmd_args in commands.items():
            for launcher, prefix in launchers.items():
                rows.append({"command": label, "launcher": launcher,
                             **time_runs([*prefix, *cmd_args], env, work, args.runs)})
        imports = {label: import_report(cmd_args, env, work) for label, cmd_args in commands.items()}
    load = os.getloadavg()
    result = {"budget_s": BUDGET_S, "nproc": os.cpu_count(), "loadavg_1min": round(load[0], 2),
              "python": sys.version.split()[0], "timings": rows, "imports": imports}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"builder start-up (budget {BUDGET_S} s; median and min of {args.runs} runs after a warm-up; "
              f"load average {load[0]:.2f} on {os.cpu_count()} cores)")
        for r in rows:
            verdict = "ok" if r["within_budget"] else "OVER BUDGET"
            codes = "" if r["exit_codes"] == [0] else f"  exit codes {r['exit_codes']}"
            print(f"  {r['command']:<62} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  {verdict}"
                  f"   [{r['launcher']}]{codes}")
        for label, rep in imports.items():
            slow = ", ".join(f"{name} {ms:.0f} ms" for name, ms in rep["slowest_top_level"])
            torch_state = f"YES {rep['torch_modules']}" if rep["torch_imported"] else "no"
            print(f"  torch imported by `{label}`: {torch_state} ({rep['modules']} modules; "
                  f"slowest top-level imports: {slow})")
    bad = any(not r["within_budget"] or r["exit_codes"] != [0] for r in rows) or \
        any(rep["torch_imported"] for rep in imports.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
