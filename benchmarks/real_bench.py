#!/usr/bin/env python3
"""Speed and memory of real v1.13.1 builds running the MobileNetV2-style model (issue 20), measured by
`builder bench` (the release's own binaries/speed_benchmark_torch.cc), rendered into docs/benchmarks.md between
<!-- bench:begin --> and <!-- bench:end -->. Minutes per phase; never in CI; run it on an idle machine.

    python benchmarks/real_bench.py --full BUILD --levers BUILD [--lever NAME=BUILD ...] [--root /work/real]
    python benchmarks/real_bench.py --report          # only re-render the section from ROOT/bench-results.json

BUILD: a builder build folder (or its install) of v1.13.1: --full is the full Release host build, --levers the traced
selective build with --size-levers, each --lever NAME=BUILD one build per lever (the table then says which costs).
The model is ROOT/model/mobilenet_v2.{ptl,pt} (benchmarks/mobilenet_model.py writes them).

Phases (each recorded in ROOT/bench-results.json; a phase that is "ok" is kept unless named in --phases):
  table     every build and the torch wheel (--torch) interleaved in one run, caching allocator off and on
  variants  the recipe's model variants (--variants, from the .pt) on the full build
  releases  --full, --levers and each --release NAME=BUILD (another release's build of the same model) interleaved
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from doc_section import replace_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PHASES = ("table", "variants", "releases")
GOAL = 1.10       # the size-lever build's median latency within this of the full build's (issue 20)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/work/real"))
    ap.add_argument("--full", type=Path, help="the full Release host build of v1.13.1")
    ap.add_argument("--levers", type=Path, help="the traced selective build with --size-levers")
    ap.add_argument("--lever", action="append", default=[], metavar="NAME=BUILD", help="one build per lever")
    ap.add_argument("--release", action="append", default=[], metavar="NAME=BUILD",
                    help="a build of another release (releases phase: beside --full and --levers, interleaved)")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--iter", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--shapes", default="1x3x224x224")
    ap.add_argument("--report", action="store_true", help="only render docs/benchmarks.md")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    results_path = root / "bench-results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"phases": {}}
    if not args.report:
        if args.full is None:
            ap.error("--full BUILD is needed to measure (or pass --report)")
        for phase in [p for p in args.phases.split(",") if p]:
            if phase not in PHASES:
                ap.error(f"unknown phase {phase}: choose from {', '.join(PHASES)}")
            print(f"[real_bench] phase {phase} ...", flush=True)
            t0 = time.monotonic()
            record = globals()[f"phase_{phase}"](root, args)
            record.update(phase_seconds=round(time.monotonic() - t0, 1), finished=time.strftime("%Y-%m-%d %H:%M"))
            results["phases"][phase] = record
            results_path.write_text(json.dumps(results, indent=1, sort_keys=True))
            print(f"[real_bench] {phase}: {record.get('status')}", flush=True)
    render(results)
    return 0


def bench(*args: Any) -> tuple[dict[str, Any], list[str]]:
    """Run `builder bench --json`; (its document or {"error": ...}, the argv)."""
    argv = [sys.executable, "-m", "builder", "bench", *map(str, args), "--json"]
    print("$ " + " ".join(argv[1:]), flush=True)
    res = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ))
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]}, argv
    return json.loads(res.stdout), argv


def _common(args: argparse.Namespace) -> list[Any]:
    return ["--shapes", args.shapes, "--rounds", args.rounds, "--iter", args.iter, "--warmup", args.warmup]


def phase_table(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    builds: list[tuple[str, Path]] = [("full", args.full)]
    if args.levers is not None:
        builds.append(("size levers", args.levers))
    for spec in args.lever:
        name, _, path = spec.partition("=")
        builds.append((f"lever {name}", Path(path)))
    names = [a for name, _ in builds for a in ("--name", name)]
    compare = [a for _, path in builds[1:] for a in ("--compare", path)]
    doc, argv = bench("--build", builds[0][1], *compare, *names, "--model", root / "model/mobilenet_v2.ptl",
                      "--torch", "--caching-allocator", *_common(args))
    return {"status": "error" if "error" in doc else "ok", "command": " ".join(argv[1:]), "result": doc}


def phase_variants(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    doc, argv = bench("--build", args.full, "--name", "full", "--model", root / "model/mobilenet_v2.pt",
                      "--variants", *_common(args))
    return {"status": "error" if "error" in doc else "ok", "command": " ".join(argv[1:]), "result": doc}


def phase_releases(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    if not args.release:
        return {"status": "error", "result": {"error": "the releases phase needs --release NAME=BUILD"}}
    builds: list[tuple[str, Path]] = [("v1.13.1 full", args.full)]
    if args.levers is not None:
        builds.append(("v1.13.1 size levers", args.levers))
    builds += [(name, Path(path)) for name, _, path in (spec.partition("=") for spec in args.release)]
    names = [a for name, _ in builds for a in ("--name", name)]
    compare = [a for _, path in builds[1:] for a in ("--compare", path)]
    doc, argv = bench("--build", builds[0][1], *compare, *names, "--model", root / "model/mobilenet_v2.ptl",
                      *_common(args))
    return {"status": "error" if "error" in doc else "ok", "command": " ".join(argv[1:]), "result": doc}


# ------------------------------------------------------------------ the report


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) else "-"


def table(doc: dict[str, Any]) -> list[str]:
    lines = ["| row | median ms | p90 ms | min ms | spread | vs first (each round) | start-up + load ms | "
             "peak RSS MiB | program stripped MiB | ran on |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in doc.get("rows", []):
        lat, ratio = row.get("latency_ms") or {}, row.get("ratio") or {}
        vs = (f"{ratio['median']:.3f}x ({ratio['round_low']:.2f}-{ratio['round_high']:.2f})" if ratio else "-")
        rss = row.get("peak_rss_kib")
        size = row.get("stripped_bytes")
        lines.append(f"| {row['label']} | {_f(lat.get('median'))} | {_f(lat.get('p90'))} | {_f(lat.get('min'))} | "
                     f"{_f(lat.get('spread'), '{:.1%}')} | {vs} | {_f(row.get('load_ms'), '{:.0f}')} | "
                     f"{_f(rss / 1024 if rss else None, '{:.1f}')} | {_f(size / 2**20 if size else None, '{:.1f}')} | "
                     f"{row['ran_on']} |")
    return lines


def goal(doc: dict[str, Any]) -> list[str]:
    """The acceptance line: the size-lever build within GOAL of the full build's median, and which lever costs."""
    rows = {r["label"]: r for r in doc.get("rows", []) if r.get("latency_ms")}
    full, levers = rows.get("full"), rows.get("size levers")
    if not (full and levers):
        return []
    ratio = levers["latency_ms"]["median"] / full["latency_ms"]["median"]
    out = [f"Goal: the size-lever build within {GOAL:.2f}x of the full build's median latency: "
           f"**{ratio:.3f}x, {'met' if ratio <= GOAL else 'NOT met'}**."]
    costly = [f"{label} ({r['latency_ms']['median'] / full['latency_ms']['median']:.3f}x)"
              for label, r in rows.items() if label.startswith("lever ")
              and r["latency_ms"]["median"] / full["latency_ms"]["median"] > GOAL]
    if costly:
        out.append("Levers costing more than that (candidates to leave out of `--size-levers`' defaults): "
                   + ", ".join(costly) + ".")
    return out


def render(results: dict[str, Any]) -> None:
    ph = results.get("phases", {})
    lines = [BEGIN, "## Speed and memory: v1.13.1 builds running the MobileNetV2-style model "
             "(`python benchmarks/real_bench.py`)", "",
             "Measured by `builder bench`: the release's own binaries/speed_benchmark_torch.cc compiled against each "
             "build's install, every row run once per round and the rounds one after another (A B C A B C ...), so "
             "drift of the machine cancels in the ratios; a row's ratio is its median over the first row's, with the "
             "range of the per-round ratios. Start-up + load: process start to the program's \"Starting "
             "benchmark.\" line. Peak RSS: the process's VmHWM. Program stripped: the allocated sections of the benchmark "
             "program as bench links it (libtorch_cpu whole-archive, so every build's kernels; of the wheel: its "
             "libtorch_cpu/libtorch/libc10); what an app ships from a size-lever build is `builder size --link "
             "registrations` (docs/real_pytorch_notes.md section 9: 3.9 MiB vs 35.2 MiB for v1.13.1)."]
    if not ph:
        lines += ["", "Not measured yet. On an idle machine with the real v1.13.1 host builds:", "",
                  "    python benchmarks/real_bench.py --full FULL_BUILD --levers LEVERS_BUILD "
                  "[--lever NAME=BUILD ...]"]
    for name, title in (("table", "Builds and the torch wheel, caching allocator off and on"),
                        ("variants", "Model variants on the full build (PyTorch Mobile's performance recipe)"),
                        ("releases", "Across releases: the same model on each release's build")):
        rec = ph.get(name)
        if not rec:
            continue
        doc = rec.get("result", {})
        lines += ["", f"### {title}", "", f"Command ({rec.get('status')}, {rec.get('finished')}): "
                  f"`{rec.get('command')}`", ""]
        if "error" in doc:
            lines.append(f"Failed: {doc['error']}")
            continue
        lines += [f"{doc['rounds']} rounds x {doc['iterations']} iterations ({doc['warmup']} warm-up) per row.", ""]
        lines += table(doc)
        lines += [""] + goal(doc) if name == "table" and goal(doc) else []
        lines += [f"- note: {n}" for n in doc.get("notes", [])]
    lines.append(END)
    replace_section(DOC, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
