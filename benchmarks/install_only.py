#!/usr/bin/env python3
"""Benchmark (issue 22): building only what the install needs, on the real tree. Two commands:

    python benchmarks/install_only.py graph BUILD_DIR [--render]
        Read-only, seconds: in a configured (or built) libtorch build folder, the Ninja commands of `all` vs those the
        install needs, and what is left out (by CMake target folder). With a file API reply (builder configured the
        folder after issue 22) the targets are builder.install_graph's; in an older folder they are derived the
        same way from its cmake_install.cmake scripts (installed files and folders -> the build.ninja edges writing
        them). Only `ninja -t targets/commands` runs (nice -n 15); nothing is built.

    python benchmarks/install_only.py paired --mirror file:///work/real/mirror/ [--root DIR] [-j 2]
                                      [--baseline REV] [--render]
        Cold builds started at the same moment on the same machine, each with its own empty BUILDER_CACHE_DIR and
        CCACHE_DIR: this checkout's `builder host --tag v1.13.1` (no --system-lib), PyTorch's
        scripts/build_mobile.sh on the same commit + builder's patches (a clone made first, untimed), and with
        --baseline REV, builder as it was at REV (a `git worktree` of this repository: "today's" builder, which
        builds `all`). Each process tree's CPU time (wait4), wall time, Ninja steps (.ninja_log edges), and the
        installed files of each (lists in ROOT/logs, differences in the report). Goal: builder's CPU time <= 0.90
        of build_mobile.sh's with the same installed libraries. About 2.5 hours on 2 cores with --baseline; never
        in CI.

    python benchmarks/install_only.py paired --target android --abi arm64-v8a --ndk NDK [--mirror ...] [--root DIR]
        The same for one Android ABI: `builder android --no-aar` (libtorch only) against the release's
        scripts/build_android.sh (ANDROID_NDK, ANDROID_ABI, BUILD_LITE_INTERPRETER=1), both with NDK (the stand-in
        NDK here: Debian cross compilers, Linux ELF). Its folders are ROOT/android-ABI/ (the host run's stay), its
        results "paired-android-ABI" in the same ROOT/install_only.json, so --render shows both. `--show` prints the
        commands after the (untimed) clone and runs nothing.

--render writes the figures into docs/benchmarks.md between <!-- install-only:begin --> and <!-- install-only:end -->
(results are kept in ROOT/install_only.json; `--render` alone with no command renders them again).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from bench_mobile import define_difference, tool_dir  # noqa: E402
from doc_section import replace_section  # noqa: E402
from ninja_log import ninja_figures  # noqa: E402

from builder import install_graph  # noqa: E402
from builder.toolchains.ndk import read_properties  # noqa: E402

TAG = "v1.13.1"          # the release whose figures issue 22 asks for (its recipe, patches and build_mobile.sh)
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- install-only:begin -->", "<!-- install-only:end -->"
NICE = ["nice", "-n", "15"]


# ------------------------------------------------------------------ graph


def ninja(build: Path, *args: str) -> list[str]:
    return subprocess.run([*NICE, "ninja", "-C", str(build), *args], check=True, capture_output=True,
                          text=True).stdout.splitlines()


INSTALL_RE = re.compile(r'file\(INSTALL DESTINATION "[^"]*" TYPE (\w+)([^\n]*(?:\n\s+"[^\n]*)*)')


def installed_paths(build: Path) -> list[Path]:
    """Files and folders the cmake_install.cmake scripts copy (not those of nested projects in their own folder)."""
    out: list[Path] = []
    for script in sorted(build.rglob("cmake_install.cmake")):
        if any((p / "CMakeCache.txt").is_file() for p in script.parents if build in p.parents):
            continue                                             # a nested CMake project (the JNI build)
        for m in INSTALL_RE.finditer(script.read_text(encoding="utf-8", errors="replace")):
            rest = m.group(2).split(" FILES", 1)[1] if " FILES" in m.group(2) else ""
            rest = re.split(r"\s(?:FILES_MATCHING|REGEX|PATTERN|USE_SOURCE_PERMISSIONS|PERMISSIONS)\b", rest)[0]
            out += [Path(os.path.normpath(p)) for p in re.findall(r'"([^"]+)"', rest)]
    return out


def needed_outputs(build: Path) -> tuple[list[str], str]:
    """What `ninja -t commands` gets for the install: the file API's targets when there is a reply, else the
    build.ninja outputs the cmake_install.cmake scripts copy (and those under copied folders)."""
    needs = install_graph.needs(build)
    if needs is not None and not needs.everything:
        return [*needs.targets, *needs.paths], f"builder.install_graph ({len(needs.targets)} targets)"
    wanted = installed_paths(build)
    files, folders = set(wanted), tuple(f"{w}{os.sep}" for w in wanted)
    outs = [str(o.relative_to(build)) if o.is_relative_to(build) else str(o)      # Ninja's own spelling
            for edge in install_graph.ninja_edges(build) for o in edge[:1]
            if any(x in files or str(x).startswith(folders) for x in edge)]
    return sorted(set(outs)), (f"no file API reply: from its cmake_install.cmake scripts and build.ninja, "
                               f"{len(set(outs))} edges writing installed files")


def graph(build: Path) -> dict[str, Any]:
    everything = ninja(build, "-t", "commands", "all")
    outputs, how = needed_outputs(build)
    needed = set(ninja(build, "-t", "commands", *outputs))
    left_out = [c for c in everything if c not in needed]
    by_folder: collections.Counter[str] = collections.Counter()
    for command in left_out:
        m = re.search(r"(?:^|/)CMakeFiles/([^/\s]+)\.dir/", command.split(" -o ", 1)[-1])
        by_folder[m.group(1) if m else "other (archives, links, generators)"] += 1
    res = {"build_dir": str(build), "how": how, "commands_all": len(everything),
           "commands_install": len(everything) - len(left_out), "left_out": len(left_out),
           "left_out_by_target": dict(by_folder.most_common(12))}
    print(json.dumps(res, indent=1))
    return res


# ------------------------------------------------------------------ paired


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    print("+ " + shlex.join(argv), flush=True)
    return subprocess.run(argv, check=True, text=True, **kw)


def builder_argv(python: str, args: argparse.Namespace, out: Path) -> list[str]:
    common = ["--tag", TAG, "--mirror", args.mirror, "--allow-unpinned", "--cache", "ccache", "--jobs",
              str(args.jobs), "--out", str(out)]
    if args.target == "android":          # libtorch only (--no-aar): what build_android.sh builds and installs
        return [python, "-m", "builder", "android", *common, "--ndk", str(args.ndk), "--abi", args.abi, "--no-aar"]
    return [python, "-m", "builder", "host", *common]


def script_run(args: argparse.Namespace, root: Path) -> tuple[str, dict[str, str]]:
    """The release's own script for the target and the environment it reads (build_mobile.sh / build_android.sh)."""
    shown = {"BUILD_LITE_INTERPRETER": "1", "BUILD_ROOT": str(root / "bm-build"), "MAX_JOBS": str(args.jobs),
             "CCACHE_DIR": str(root / "bm-ccache")}
    if args.target == "android":
        return "scripts/build_android.sh", {**shown, "ANDROID_NDK": str(args.ndk), "ANDROID_ABI": args.abi,
                                            "ANDROID_STL_SHARED": "1"}   # builder: ANDROID_STL=c++_shared (recipe)
    return "scripts/build_mobile.sh", shown


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("SELECTED_OP_LIST", "MAX_JOBS", "BUILDER_MIRROR", "CCACHE_BASEDIR", "BUILD_ROOT", "BUILD_LITE_INTERPRETER",
            "ANDROID_NDK", "ANDROID_ABI", "USE_VULKAN")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def bm_tree(plan: dict[str, Any], mirror: str, dest: Path) -> Path:
    """The mirror's tag (the commit builder checks out; an upstream-shaped mirror made from a source package has
    its own commit, hence --allow-unpinned) with builder's submodules and patches, cloned (untimed)."""
    shutil.rmtree(dest, ignore_errors=True)
    url = mirror.rstrip("/") + "/pytorch/pytorch.git"
    run(["git", "clone", "-q", "--no-checkout", url, str(dest)])
    run(["git", "-C", str(dest), "checkout", "-q", f"refs/tags/{TAG}"])   # what builder checks out (the mirror's tag)
    redirect = ["-c", "protocol.file.allow=always", "-c", f"url.{mirror.rstrip('/')}/.insteadOf=https://github.com/"]
    if plan["submodules"]:
        run(["git", *redirect, "-C", str(dest), "submodule", "update", "-q", "--init", "--recursive", "--",
             *plan["submodules"]])
    for name in plan["patches"]:
        run(["git", "-C", str(dest), "apply", str(REPO / "patches" / TAG / name)])
    return dest


def start(name: str, argv: list[str], env: dict[str, str], shown: dict[str, str], log: Path, cwd: Path
          ) -> subprocess.Popen[bytes]:
    line = " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items()) + " " + shlex.join(argv)
    print(f"+ [{name}, together] {line}   (log: {log})", flush=True)
    with log.open("w") as fh:
        fh.write(f"+ {line}\n")
        fh.flush()
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_all(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, dict[str, Any]]:
    t0, out = time.monotonic(), {}
    by_pid = {p.pid: n for n, p in procs.items()}
    while len(out) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        if pid in by_pid:
            out[by_pid[pid]] = {"exit": os.waitstatus_to_exitcode(status), "seconds": round(time.monotonic() - t0, 1),
                                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}
            print(f"# [{by_pid[pid]}] {out[by_pid[pid]]}", flush=True)
    return out


def file_list(install: Path) -> list[str]:
    return sorted(str(p.relative_to(install)) for p in install.rglob("*") if p.is_file() or p.is_symlink())


def paired(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for d in ("builder", "baseline", "bm-build", "bm-src", "bm-ccache"):
        shutil.rmtree(root / d, ignore_errors=True)
    runs: dict[str, tuple[list[str], dict[str, str], dict[str, str]]] = {}
    python = sys.executable
    builders = {"builder": REPO, **({"baseline": root / "baseline-repo"} if args.baseline else {})}
    if (root / "baseline-repo").exists():                       # left by an interrupted run
        run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(root / "baseline-repo")])
    if args.baseline:
        run(["git", "-C", str(REPO), "worktree", "add", "-f", "--detach", str(builders["baseline"]), args.baseline])
    for name, repo in builders.items():
        shown = {"BUILDER_CACHE_DIR": str(root / name / "cache"), "CCACHE_DIR": str(root / name / "ccache"),
                 "PYTHONPATH": str(repo)}
        runs[name] = (builder_argv(python, args, root / name / "out"), clean_env(**shown), shown)
    plan = json.loads(run([*runs["builder"][0], "--dry-run", "--json"], env=runs["builder"][1], cwd=REPO,
                          capture_output=True).stdout)
    script_rel, shown = script_run(args, root)
    theirs = Path(script_rel).stem                               # build_mobile / build_android
    src = bm_tree(plan, args.mirror, root / "bm-src")
    extra, overrides = define_difference(plan["slices"][0]["defines"], (src / script_rel).read_text())
    tools = [d for d in (tool_dir(plan.get("cmake")), tool_dir(plan.get("ninja")), str(Path(python).parent)) if d]
    env = clean_env(**shown)
    env["PATH"] = os.pathsep.join([*dict.fromkeys(tools), env.get("PATH", "")])
    runs[theirs] = (["bash", str(src / script_rel), *(f"-D{k}={v}" for k, v in {**extra, **overrides}.items())],
                    env, shown)
    if args.show:
        for name, (argv, _e, shown_) in runs.items():
            print(f"[{name}] " + " ".join(f"{k}={shlex.quote(v)}" for k, v in shown_.items()) + " " + shlex.join(argv))
        raise SystemExit(0)
    procs = {n: start(n, a, e, s, logs / f"install-only-{n}.log", REPO) for n, (a, e, s) in runs.items()}
    record = {"waited": wait_all(procs), "argv": {n: r[0] for n, r in runs.items()},
              "shown": {n: r[2] for n, r in runs.items()}, "theirs": theirs, "script": script_rel}
    (logs / "install-only-runs.json").write_text(json.dumps(record, indent=1))   # kept: --collect redoes the rest
    try:
        return collect(args, root, record)
    finally:
        if args.baseline:
            run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(root / "baseline-repo")])


def collect(args: argparse.Namespace, root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Steps, installed files and the comparison of the finished runs ``record`` holds (their wait4 figures)."""
    logs, theirs = root / "logs", record["theirs"]
    result: dict[str, Any] = {n: dict(v) for n, v in record["waited"].items()}
    for name, argv in record["argv"].items():
        if result[name]["exit"] == 0:
            result[name] |= outputs(name, argv, clean_env(**record["shown"][name]), theirs, root, logs)
    if all(result[n]["exit"] == 0 for n in ("builder", theirs)):
        ours = set((logs / "install-only-builder.files").read_text().split())
        their_files = set((logs / f"install-only-{theirs}.files").read_text().split())
        result["only_builder"], result[f"only_{theirs}"] = sorted(ours - their_files), sorted(their_files - ours)
        result["cpu_ratio"] = round(result["builder"]["cpu_seconds"] / result[theirs]["cpu_seconds"], 3)
    if "baseline" in result and result["baseline"]["exit"] == 0 and result["builder"]["exit"] == 0:
        result["cpu_ratio_baseline"] = round(result["builder"]["cpu_seconds"] / result["baseline"]["cpu_seconds"], 3)
    return {"runs": result, "baseline": args.baseline, "jobs": args.jobs, "mirror": args.mirror,
            "target": args.target, "abi": args.abi if args.target == "android" else None,
            "ndk": ndk_label(args.ndk) if args.target == "android" else None,
            "script": record["script"], "theirs": theirs, "argv": record["argv"]}


def ndk_label(ndk: str | None) -> str | None:
    """What the NDK says it is (source.properties: Pkg.Desc, Pkg.Revision), so a stand-in is labelled as one."""
    props = Path(ndk or "") / "source.properties"
    if not ndk or not props.is_file():
        return ndk
    fields = read_properties(props.read_text(encoding="utf-8", errors="replace"))
    return f"{fields.get('Pkg.Desc', 'NDK')} {fields.get('Pkg.Revision', '?')} at {ndk}"


def built_folder(plan: dict[str, Any]) -> Path:
    """The folder the run built in. The plan names it after the recipe's commit; with --allow-unpinned on a mirror
    whose tag is another commit, the run keys it by that commit instead (same name up to the key): the one such
    folder in the fresh out folder."""
    planned = Path(plan["slices"][0]["build_dir"])
    if (planned / ".ninja_log").is_file():
        return planned
    found = [d for d in planned.parent.glob(planned.name.rsplit("-", 1)[0] + "-*") if (d / ".ninja_log").is_file()]
    if len(found) != 1:
        raise SystemExit(f"cannot tell which of {found or 'no folder'} in {planned.parent} the run built")
    return found[0]


def outputs(name: str, argv: list[str], env: dict[str, str], theirs: str, root: Path, logs: Path) -> dict[str, Any]:
    """A finished run's Ninja steps and installed files (list written to ROOT/logs/install-only-NAME.files)."""
    if name == theirs:
        build, install = root / "bm-build", root / "bm-build" / "install"
    else:
        build = built_folder(json.loads(run([*argv, "--dry-run", "--json"], env=env, cwd=REPO,
                                            capture_output=True).stdout))
        install = build / "install"
    files = file_list(install)
    (logs / f"install-only-{name}.files").write_text("\n".join(files) + "\n")
    return {"steps": ninja_figures(build).get("edges", 0), "installed_files": len(files),
            "libraries": [f for f in files if f.startswith("lib/")], "build_dir": str(build)}


# ------------------------------------------------------------------ report


def render(results: dict[str, Any]) -> str:
    lines = [BEGIN, "### Building only what the install needs (issue 22; `benchmarks/install_only.py`)", ""]
    g = results.get("graph")
    if g:
        lines += [f"Build graph of `{g['build_dir']}` (read-only, {g['how']}): `all` has {g['commands_all']:,} "
                  f"Ninja commands, the install needs {g['commands_install']:,}; {g['left_out']:,} left out, by "
                  "target: " + ", ".join(f"{k} {v:,}" for k, v in g["left_out_by_target"].items()) + ".", ""]
    for key in sorted(k for k in results if k.startswith("paired")):
        lines += render_paired(results[key])
    lines += [*([""] if lines[-1] else []), "Reproduce: `python benchmarks/install_only.py graph BUILD_DIR --render` (seconds) and "
              "`python benchmarks/install_only.py paired --mirror file:///work/real/mirror/ --baseline REV "
              "--render` (hours); for one Android ABI add `--target android --abi arm64-v8a --ndk NDK`.", END]
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def render_paired(p: dict[str, Any]) -> list[str]:
    theirs, runs = p.get("theirs", "build_mobile"), p["runs"]
    what = f"android {p['abi']}" if p.get("target") == "android" else "host"
    if p.get("ndk"):
        what += f" (NDK: {p['ndk']}; Debian cross compilers behind it, Linux ELF outputs)" if "STAND-IN" in p["ndk"] else f" (NDK: {p['ndk']})"
    lines = [f"Cold builds of {TAG} for {what} started together (own empty caches; CPU = the process tree's, wait4):",
             "", "| run | exit | Ninja steps | wall | CPU | installed files |", "|---|---|---|---|---|---|"]
    for name, r in runs.items():
        if isinstance(r, dict) and "exit" in r:
            lines.append(f"| {name} | {r['exit']} | {_n(r.get('steps'))} | {r['seconds']:,.0f} s | "
                         f"{r['cpu_seconds']:,.0f} s | {_n(r.get('installed_files'))} |")
    if "cpu_ratio" in runs:
        lines += ["", f"builder / {theirs}.sh CPU: **{runs['cpu_ratio']:.3f}** (goal <= 0.90). Installed only by "
                  f"builder: {len(runs['only_builder'])} files; only by {theirs}.sh: {len(runs[f'only_{theirs}'])} "
                  "(lists: ROOT/logs/install-only-*.files)."]
        if "cpu_ratio_baseline" in runs:
            lines.append(f"builder / builder at {p['baseline']} (builds `all`) CPU: **{runs['cpu_ratio_baseline']:.3f}**.")
        libs = {n: runs[n].get("libraries", []) for n in ("builder", theirs)}
        lines += [f"Libraries, builder: {', '.join(libs['builder'])}; {theirs}.sh: {', '.join(libs[theirs])}."]
    return [*lines, "", "Commands: " + "; ".join(f"{n}: `{shlex.join(a)}`" for n, a in p["argv"].items()), ""]


def write_doc(results: dict[str, Any]) -> None:
    replace_section(DOC, BEGIN, END, render(results))
    print(f"wrote {DOC}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", choices=("graph", "paired"))
    ap.add_argument("build_dir", nargs="?", type=Path)
    ap.add_argument("--mirror", default="file:///work/real/mirror/")
    ap.add_argument("--root", type=Path, default=Path.home() / ".cache" / "builder-bench" / "install-only")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--baseline", help="a git revision of this repository: builder as it was (builds `all`)")
    ap.add_argument("--render", action="store_true", help="write the figures into docs/benchmarks.md")
    ap.add_argument("--target", choices=("host", "android"), default="host")
    ap.add_argument("--abi", default="arm64-v8a", help="with --target android")
    ap.add_argument("--ndk", type=Path, help="with --target android: the NDK (builder --ndk, build_android.sh's "
                    "ANDROID_NDK)")
    ap.add_argument("--show", action="store_true", help="paired: print the commands (after the untimed clone), "
                    "run nothing")
    ap.add_argument("--collect", action="store_true", help="paired: only collect the figures of the finished runs "
                    "recorded in ROOT/logs/install-only-runs.json (after a failure past the builds)")
    args = ap.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    store = args.root / "install_only.json"
    results = json.loads(store.read_text()) if store.is_file() else {}
    if args.command == "graph":
        if args.build_dir is None:
            ap.error("graph needs BUILD_DIR")
        results["graph"] = graph(args.build_dir.resolve())
    elif args.command == "paired":
        if args.target == "android" and args.ndk is None:
            ap.error("--target android needs --ndk")
        key = "paired" if args.target == "host" else f"paired-android-{args.abi}"
        work = args.root if args.target == "host" else args.root / f"android-{args.abi}"   # beside the host run's
        if args.collect:
            results[key] = collect(args, work, json.loads((work / "logs" / "install-only-runs.json").read_text()))
        else:
            results[key] = paired(args, work)
        print(json.dumps(results[key]["runs"], indent=1))
    store.write_text(json.dumps(results, indent=1))
    if args.render:
        write_doc(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
