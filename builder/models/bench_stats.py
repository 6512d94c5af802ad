"""What ``builder bench`` computes and reads, with no process and no torch: statistics of per-iteration times,
ratios of builds measured interleaved, and the output of PyTorch's ``binaries/speed_benchmark_torch.cc``.

That program (the release's own) prints, with ``--report_pep=true``, one line per timed iteration::

    PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "15944"}

and "Starting benchmark." once the model is loaded and the inputs made (each line ends with ``std::endl``, so it
arrives when printed: its arrival time, measured from the process start, is the start-up + load time).
``--help`` lists the c10 flags registered in the program *and the libraries linked into it* (``    name: (type,
default ...) help``): ``--pthreadpool_size`` exists only where caffe2's thread pool is linked.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LOADED_MARK = "Starting benchmark."
_PEP = re.compile(r"^PyTorchObserver (\{.*\})\s*$")
_FLAG = re.compile(r"^    (\w+): \(")
# a ratio whose every round agrees within this of 1.0 counts as "no clear difference"
NOISE = 0.03


@dataclass(frozen=True)
class Summary:
    """Per-iteration latencies in milliseconds. ``spread``: the interquartile range over the median (0.05 = the
    middle half of the iterations lie within 5% of the median's size)."""

    n: int
    median: float
    mean: float
    p90: float
    min: float
    max: float
    spread: float


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values_ms: Sequence[float]) -> Summary:
    if not values_ms:
        raise ValueError("no iterations to summarize")
    median = percentile(values_ms, 50)
    iqr = percentile(values_ms, 75) - percentile(values_ms, 25)
    return Summary(n=len(values_ms), median=median, mean=sum(values_ms) / len(values_ms),
                   p90=percentile(values_ms, 90), min=min(values_ms), max=max(values_ms),
                   spread=iqr / median if median > 0 else 0.0)


@dataclass(frozen=True)
class Ratio:
    """Median latency of a row over the first row's: ``value`` from all iterations; ``low``/``high`` the range of
    the per-round ratios (each round ran every row once, back to back, so a round's ratio is free of the drift
    between rounds)."""

    value: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.high < 1 - NOISE / 2 and self.value < 1 - NOISE:
            return "faster"
        if self.low > 1 + NOISE / 2 and self.value > 1 + NOISE:
            return "slower"
        return "no clear difference"


def ratio(rounds: Sequence[Sequence[float]], base_rounds: Sequence[Sequence[float]]) -> Ratio:
    """The ratio of medians of a row against the base row; both given per round (iteration times)."""
    flat = [v for r in rounds for v in r]
    base = [v for r in base_rounds for v in r]
    per_round = [percentile(r, 50) / percentile(b, 50) for r, b in zip(rounds, base_rounds) if r and b]
    value = percentile(flat, 50) / percentile(base, 50)
    return Ratio(value, min(per_round, default=value), max(per_round, default=value))


# ------------------------------------------------------------------ the benchmark's output


def iteration_times_us(lines: Iterable[str]) -> tuple[float, ...]:
    """The ``PyTorchObserver`` latency values (microseconds), in order; other lines are ignored."""
    out: list[float] = []
    for line in lines:
        match = _PEP.match(line.strip())
        if not match:
            continue
        try:
            record = json.loads(match.group(1))
        except ValueError:
            continue
        if record.get("metric") == "latency" and record.get("type") == "NET":
            scale = {"us": 1.0, "ms": 1000.0, "ns": 0.001}.get(str(record.get("unit", "us")))
            if scale is not None:
                out.append(float(record["value"]) * scale)
    return tuple(out)


def loaded_after(timed_lines: Iterable[tuple[float, str]]) -> float | None:
    """Seconds from the process start to the "Starting benchmark." line (start-up, static initialisers, inputs,
    model load); None when it never came."""
    return next((t for t, line in timed_lines if line.strip() == LOADED_MARK), None)


def flags_from_help(text: str) -> frozenset[str]:
    """The c10 flag names a ``--help`` output lists."""
    return frozenset(m.group(1) for m in map(_FLAG.match, text.splitlines()) if m)
