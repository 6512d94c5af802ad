#!/usr/bin/env python3
"""Releases side by side (issue 19): real builds of v1.13.1 and v2.6.0 of the same model, one row per build: Ninja
steps and time from the build folder's own .ninja_log, installed libtorch_cpu.a, and the stripped program that runs
the model (`builder size`, which also checks its output against torch). Rendered into docs/benchmarks.md between
<!-- releases:begin --> and <!-- releases:end -->. Minutes (one `builder size` per row); never in CI.

    python benchmarks/releases.py --row "v1.13.1|host|full|BUILD" --row "v2.6.0|host|--model|BUILD[|LINK]" ...
                                  [--model ROOT/model] [--root DIR] [--render]
    python benchmarks/releases.py --render [--root DIR]     # only re-render from ROOT/releases.json

A row is RELEASE|TARGET|WHAT|BUILD[|LINK]: BUILD a builder build folder (host, or one Android ABI's: its program runs
under qemu-user, a stand-in NDK's Linux ELF); LINK how the program links libtorch_cpu (whole-archive by default;
`registrations` for a build made with the force_load_registrations lever). Rows are kept in ROOT/releases.json by
BUILD; `--row` again for the same BUILD measures it again.

Time figures are the .ninja_log's (wall from first start to last end of each ninja run, summed edge time): a folder
partly filled from ccache, or built while the CPU was shared, says so only in its row's note (given as a 6th field).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from doc_section import replace_section
from ninja_log import ninja_figures

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- releases:begin -->", "<!-- releases:end -->"


def measure(release: str, target: str, what: str, build: Path, link: str, note: str, model: Path) -> dict[str, Any]:
    install = build / "install"
    lib = install / "lib" / "libtorch_cpu.a"
    argv = [sys.executable, "-m", "builder", "size", "--build", str(install), "--model", str(model / "mobilenet_v2.ptl"),
            "--inputs", str(model / "mobilenet_v2.inputs.bt"), "--link", link, "--json"]
    print("+ " + " ".join(argv), flush=True)
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    report: dict[str, Any] = {}
    if proc.returncode == 0:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
        report = data.get("report", data)
    return {"release": release, "target": target, "what": what, "build": str(build), "link": link, "note": note,
            **ninja_figures(build), "libtorch_cpu": lib.stat().st_size if lib.is_file() else None,
            "stripped": report.get("stripped_size"), "verified": report.get("verified"),
            "size_exit": proc.returncode, "size_tail": proc.stderr.strip().splitlines()[-2:]}


def _checked(r: dict[str, Any]) -> str:
    m = re.search(r"max abs ([0-9.e+-]+)", r.get("verified") or "")
    return f"max abs {m.group(1)}" if m else ("size failed" if r["size_exit"] else (r.get("verified") or "-"))


def _mib(n: Any) -> str:
    return f"{n / 2**20:.1f} MiB" if isinstance(n, int) else "-"


def _min(s: Any) -> str:
    return f"{s / 60:.0f} min" if isinstance(s, (int, float)) else "-"


def render(rows: list[dict[str, Any]]) -> str:
    lines = [BEGIN, "## Releases side by side (issue 19; `python benchmarks/releases.py`)", "",
             "The same MobileNetV2-style model on real builds of each release (upstream-shaped mirrors, no "
             "--system-lib). Steps and times from each build folder's .ninja_log; the program is the verify runner "
             "that runs the model (`builder size`: linked as the LINK column says, stripped, output checked against "
             "torch).", "",
             "| release | target | build | Ninja steps | build wall | summed edge time | libtorch_cpu.a | program "
             "(stripped) | link | checked vs torch | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:                                           # in the order the rows were first given
        lines.append(f"| {r['release']} | {r['target']} | {r['what']} | {r.get('edges', '-'):,} | "
                     f"{_min(r.get('wall_seconds'))} | {_min(r.get('edge_seconds'))} | {_mib(r['libtorch_cpu'])} | "
                     f"{_mib(r['stripped'])} | {r['link']} | {_checked(r)} | {r['note'] or ''} |")
    lines += ["", "Reproduce: `python benchmarks/releases.py --row \"RELEASE|TARGET|WHAT|BUILD[|LINK[|NOTE]]\" ... "
              "--render`.", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--row", action="append", default=[], help="RELEASE|TARGET|WHAT|BUILD[|LINK[|NOTE]]")
    ap.add_argument("--model", type=Path, default=Path("/work/real-host/model"),
                    help="folder with mobilenet_v2.ptl and mobilenet_v2.inputs.bt (benchmarks/mobilenet_model.py)")
    ap.add_argument("--root", type=Path, default=Path("/work/real-host"))
    ap.add_argument("--render", action="store_true")
    args = ap.parse_args(argv)
    store = args.root / "releases.json"
    rows = {r["build"]: r for r in (json.loads(store.read_text()) if store.is_file() else [])}
    for spec in args.row:
        parts = spec.split("|")
        if len(parts) < 4:
            ap.error(f"--row {spec!r}: expected RELEASE|TARGET|WHAT|BUILD[|LINK[|NOTE]]")
        build = Path(parts[3]).resolve()
        if build.name == "install":
            build = build.parent
        link = parts[4] if len(parts) > 4 and parts[4] else "whole-archive"
        rows[str(build)] = measure(*parts[:3], build, link, parts[5] if len(parts) > 5 else "", args.model.resolve())
        store.write_text(json.dumps(list(rows.values()), indent=1))
    text = render(list(rows.values()))
    print(text)
    if args.render:
        replace_section(DOC, BEGIN, END, text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
