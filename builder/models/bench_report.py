"""What ``builder bench`` reports from measured rows (builder.models.bench): per-row summaries, ratios against the
first row with their per-round range, the ``--json`` document (schema ``SCHEMA``) and the table's cells. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field

from builder.models import bench_stats as stats
from builder.models.bench import BenchSettings, Inputs, Row

SCHEMA = "builder-bench/1"


@dataclass(frozen=True)
class Result:
    rows: tuple[Row, ...]
    inputs: Inputs
    settings: BenchSettings
    notes: tuple[str, ...] = field(default_factory=tuple)


def row_summary(row: Row) -> stats.Summary | None:
    return stats.summarize(row.times_ms) if row.timed and row.times_ms else None


def row_ratio(row: Row, base: Row) -> stats.Ratio | None:
    if not (row.timed and base.timed and row.times_ms and base.times_ms):
        return None
    return stats.ratio([r.times_ms for r in row.rounds], [r.times_ms for r in base.rounds])


def median_load_ms(row: Row) -> float | None:
    loads = [r.load_s * 1000 for r in row.rounds if r.load_s is not None]
    return stats.percentile(loads, 50) if loads and row.timed else None


def peak_rss_kib(row: Row) -> int | None:
    values = [r.max_rss_kib for r in row.rounds if r.max_rss_kib is not None]
    return max(values) if values and row.timed else None


def to_json(result: Result) -> dict[str, object]:
    """The ``--json`` document (``SCHEMA``); latency figures are null for rows that ran emulated."""
    base = result.rows[0] if result.rows else None
    rows = []
    for row in result.rows:
        summary = row_summary(row)
        ratio = row_ratio(row, base) if base is not None else None
        rows.append({
            "label": row.config.label, "build": str(row.config.subject.install.root),
            "kind": row.config.subject.kind, "lite": row.config.subject.lite,
            "model": str(row.config.model), "variant": row.config.variant,
            "caching_allocator": row.config.caching_allocator, "threads": row.config.threads,
            "channels_last": row.config.channels_last,
            "program": str(row.program.runner.path), "source": str(row.config.subject.source),
            "ran_on": row.program.runner.launch.where, "timed": row.timed,
            "latency_ms": None if summary is None else {
                "n": summary.n, "median": summary.median, "mean": summary.mean, "p90": summary.p90,
                "min": summary.min, "max": summary.max, "spread": summary.spread},
            "ratio": None if ratio is None else {"median": ratio.value, "round_low": ratio.low,
                                                 "round_high": ratio.high, "verdict": ratio.verdict},
            "load_ms": median_load_ms(row), "peak_rss_kib": peak_rss_kib(row),
            "stripped_bytes": row.program.stripped_bytes,
            "iterations_ms": [list(r.times_ms) for r in row.rounds] if row.timed else None,
            "note": row.note or None,
        })
    s = result.settings
    return {"schema": SCHEMA, "warmup": s.warmup, "iterations": s.iters, "rounds": s.rounds, "cpus": s.cpus,
            "inputs": {"dims": result.inputs.dims or None, "types": result.inputs.types or None,
                       "bundled": result.inputs.bundled, "none": result.inputs.none},
            "rows": rows, "notes": list(result.notes)}


HEADERS = ("row", "median ms", "p90 ms", "mean ms", "min ms", "spread", "vs first (rounds)", "load ms",
           "peak RSS MiB", "stripped MiB", "ran on")


def table_cells(result: Result) -> list[list[str]]:
    """The rows of the results table (``HEADERS``): figures of rows that ran emulated are left out."""
    base = result.rows[0]
    out = []
    for row in result.rows:
        s, r = row_summary(row), row_ratio(row, base)
        load, rss = median_load_ms(row), peak_rss_kib(row)
        size = f"{row.program.stripped_bytes / 2**20:.1f}" if row.program.stripped_bytes is not None else "-"
        where = row.program.runner.launch.where
        if s is None:
            out.append([row.config.label, "smoke ok, untimed", *["-"] * 7, size, where])
            continue
        vs = "-" if row is base or r is None else f"{r.value:.3f}x ({r.low:.2f}-{r.high:.2f})"
        out.append([row.config.label, f"{s.median:.2f}", f"{s.p90:.2f}", f"{s.mean:.2f}", f"{s.min:.2f}",
                    f"{s.spread:.1%}", vs,
                    f"{load:.0f}" if load is not None else "-", f"{rss / 1024:.1f}" if rss is not None else "-",
                    size, where])
    return out


def verdicts(result: Result) -> list[str]:
    """One line per row after the first: faster, slower, or no clear difference, with the per-round range."""
    base = result.rows[0]
    lines = []
    for row in result.rows[1:]:
        r = row_ratio(row, base)
        if r is None:
            continue
        phrase = {"faster": "faster than", "slower": "slower than"}.get(r.verdict, "no clear difference from")
        lines.append(f"{row.config.label}: {phrase} {base.config.label} ({r.value:.3f}x the median; each round "
                     f"{r.low:.2f}-{r.high:.2f}x)")
    return lines
