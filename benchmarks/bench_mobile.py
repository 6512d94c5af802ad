"""The real-PyTorch benchmark's comparison with PyTorch's own scripts/build_mobile.sh: which -D defines the
script sets itself and which of builder's plan defines must be passed to it, its command on a copy of builder's
patched tree (same tools, same -j, an empty ccache), the CMakeCache.txt comparison, and the two phases that run
it: build_mobile (after builder_full) and paired (both cold builds started together, timed with wait4)."""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_run import (
    Bench,
    PhaseError,
    base_env,
    builder_argv,
    ccache_stats,
    ccache_summary,
    full_argv,
    install_sizes,
    json_plan,
    mirror_prefix,
    reap,
)
from bench_spec import BM_ENV_DROP, BM_TOLERANCE, CACHE_TOOL_KEYS, PAIRED_DIRS, TAG, builder_build_seconds, fmt_s

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
