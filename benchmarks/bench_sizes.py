"""The real-PyTorch benchmark's sizes phase: for the full and the traced-ops installs (and the plain selective
build when it ran), `builder verify` as a user runs it, then a runner linked against the install with
builder.models.runner_mod.compile_runner (Debian's shared XNNPACK & co added to its link line when needed), copied,
stripped and measured, with the shared libraries it loads; and `builder size --json` when this builder has it."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench_run import Bench, builder_cmd, builder_env, builder_env_shown, full_argv, install_sizes, model_input
from bench_spec import ISSUE8_TARGET, SYSTEM_LINK, mib, short

RUNNER_SNIPPET = r"""
import json, sys
from pathlib import Path
from builder.errors import BuilderError
from builder.models import runner as runner_mod
from builder.models import verify as v
install_dir, work, model, shape = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
mode, gc, extra = sys.argv[5], ["-Wl,--gc-sections"] if sys.argv[6] == "1" else [], sys.argv[7:]
inst = runner_mod.find_install(Path(install_dir))
out = {"extra_link_args": gc, "link_mode": mode}
try:
    runner = runner_mod.compile_runner(inst, work, link_mode=mode, extra_link_args=gc)
except BuilderError as exc:
    out["plain_link_error"] = str(exc)
    out["extra_link_args"] = gc + extra
    runner = runner_mod.compile_runner(inst, work, link_mode=mode, extra_link_args=gc + extra)
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


def _size_variant(b: Bench, variant: str, install: str, mode: str, model: tuple[str, str], extra: list[str],
                  env: dict[str, str]) -> dict[str, Any] | None:
    """One install: `builder verify` as a user runs it, then the runner linked against it, copied to ROOT/sizes,
    stripped and measured (None in a dry run)."""
    ptl, shape = model
    row: dict[str, Any] = {"install_dir": install}
    if not b.dry:
        row["install"] = install_sizes(Path(install))
    # 1. builder verify, as a user runs it
    code, secs, out = b.run(builder_cmd("verify", "--build", install, "--model", ptl, "--shapes", shape,
                                        "--link", mode, "--gc-sections"),
                            env=env, cwd=b.root, capture=True, env_shown=builder_env_shown(b))
    row["verify_cli"] = {"exit": code, "seconds": round(secs, 2), "output": out.strip()[-400:]}
    # 2. the runner itself (builder.models.runner_mod.compile_runner); system libraries added when needed
    code, secs, out = b.run([sys.executable, "-c", RUNNER_SNIPPET, install,
                             str(b.p("builder-cache", "verify")), ptl, shape, mode, "1", *extra],
                            env=env, cwd=b.root, capture=True)
    if b.dry:
        return None
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if code != 0 or not m:
        row["runner_error"] = f"runner snippet exit {code} (see {b.p('logs', 'sizes.log')})"
        return row
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
    return row


def _builder_size(b: Bench, installs: dict[str, str], model: tuple[str, str], env: dict[str, str]
                  ) -> dict[str, Any]:
    """`builder size` (being added by another engineer): used when this builder has it."""
    ptl, shape = model
    res: dict[str, Any] = {}
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
    return res


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
        row = _size_variant(b, variant, install, modes[variant], (ptl, shape), extra, env)
        if row is not None:
            res[variant] = row
    res.update(_builder_size(b, installs, (ptl, shape), env))
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
