#!/usr/bin/env python3
"""Benchmark: a real host lite-interpreter build of PyTorch v1.13.1 through builder.

Steps (see docs/real_pytorch_notes.md for why each is needed):
  1. the local upstream-shaped mirror (benchmarks/realtorch_mirror.py; cached under --root);
  2. the Debian packages that replace the submodules Debian serves no source for
     (libxnnpack-dev, libcpuinfo-dev, libpthreadpool-dev) -- checked, installed with --install;
  3. ``builder host --tag v1.13.1 --mirror file://ROOT/mirror/ --allow-unpinned
     --system-lib xnnpack --system-lib cpuinfo --system-lib pthreadpool``; builder applies
     patches/v1.13.1/*.patch itself.

Without --run it only prints builder's plan (--dry-run). With --run it runs the build (about 10-30 min
on 2 cores) and prints a JSON line with the wall time and builder's exit code.

Usage: python benchmarks/real_pytorch.py [--root DIR] [--install] [--run] [-j N] [--cache ccache]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import realtorch_mirror  # noqa: E402

SYSTEM_LIBS = {"xnnpack": "libxnnpack-dev", "cpuinfo": "libcpuinfo-dev", "pthreadpool": "libpthreadpool-dev"}


def missing_packages(packages: list[str]) -> list[str]:
    missing = []
    for pkg in packages:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        if "install ok installed" not in proc.stdout:
            missing.append(pkg)
    return missing


def builder_argv(prefix: str, jobs: int | None, cache: str | None, out: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "builder", "host", "--tag", realtorch_mirror.TAG, "--mirror", prefix,
            "--allow-unpinned"]
    for lib in SYSTEM_LIBS:
        argv += ["--system-lib", lib]
    if jobs:
        argv += ["-j", str(jobs)]
    if cache:
        argv += ["--cache", cache]
    if out:
        argv += ["--out", str(out)]
    return argv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=realtorch_mirror.DEFAULT_ROOT)
    ap.add_argument("--from", dest="seeds", type=Path, action="append", default=[],
                    help="folder with already downloaded Debian orig tarballs (passed to the mirror step)")
    ap.add_argument("--install", action="store_true", help="apt-get install missing system packages")
    ap.add_argument("--run", action="store_true", help="run the build (default: print the plan)")
    ap.add_argument("-j", "--jobs", type=int, default=None)
    ap.add_argument("--cache", default=None, help="compiler cache for builder: auto, ccache, sccache, none")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    root = args.root.expanduser().resolve()
    manifest = realtorch_mirror.build(root, [s.expanduser().resolve() for s in args.seeds], force=False)
    prefix = manifest["prefix"]

    missing = missing_packages(list(SYSTEM_LIBS.values()))
    if missing and args.install:
        subprocess.run(["apt-get", "install", "-y", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        missing = missing_packages(list(SYSTEM_LIBS.values()))
    if missing:
        print(f"missing system packages: {' '.join(missing)} (rerun with --install)", file=sys.stderr)
        if args.run:
            return 2

    cmd = builder_argv(prefix, args.jobs, args.cache, args.out)
    if not args.run:
        cmd.append("--dry-run")
    print("+ " + " ".join(cmd), flush=True)
    if shutil.which("git") is None:
        print("git is required", file=sys.stderr)
        return 2
    started = time.monotonic()
    rc = subprocess.call(cmd, cwd=HERE.parent)
    if args.run:
        print(json.dumps({"benchmark": "real_pytorch_host_lite", "tag": realtorch_mirror.TAG,
                          "mirror": prefix, "pytorch_commit": manifest["pytorch"]["commit"],
                          "wall_s": round(time.monotonic() - started, 1), "exit": rc}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
