"""What a build folder's .ninja_log says about the builds that ran in it (shared by the benchmark scripts)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def ninja_figures(build_dir: Path) -> dict[str, Any]:
    """Edges, summed edge time and wall time from .ninja_log. Lines are written as edges finish (end times rise
    within one ninja run; a smaller end time starts the next run, e.g. a resumed build); an edge with several
    outputs has one line per output (same start, end and command hash)."""
    log = build_dir / ".ninja_log"
    if not log.is_file():
        return {}
    seen: set[tuple[str, str, str, int]] = set()
    summed, wall, last_end, runs = 0.0, 0.0, 0, 1
    for line in log.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 5:
            continue
        start, end = int(parts[0]), int(parts[1])
        if end < last_end:
            wall, last_end, runs = wall + last_end / 1000, 0, runs + 1
        last_end = max(last_end, end)
        key = (parts[0], parts[1], parts[4], runs)
        if key not in seen:
            seen.add(key)
            summed += (end - start) / 1000
    wall += last_end / 1000
    return {"edges": len(seen), "edge_seconds": round(summed), "wall_seconds": round(wall), "invocations": runs}
