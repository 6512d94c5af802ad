"""Progress where nobody watches a terminal (CI logs, `2> build.log`): plain lines, flushed, at a steady interval.

A line is written when a step starts, is skipped or is done, and otherwise every ``interval`` seconds, even while
the build prints nothing (one long compile, a long link), so a multi-hour build shows life in a CI log:

    [12:34] host: build host [1234/5678] 21% ETA 40:12
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Self, TextIO

if TYPE_CHECKING:
    from ..execute import Event

DEFAULT_INTERVAL_S = 15.0
INTERVAL_ENV = "BUILDER_PROGRESS_INTERVAL"


def interval_from(environ: Mapping[str, str]) -> float:
    """The interval BUILDER_PROGRESS_INTERVAL asks for (seconds), else the default."""
    try:
        value = float(environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class PlainProgress:
    """Feed it builder's execute events (``on_event``); ``start``/``stop`` its timer thread."""

    def __init__(self, stream: TextIO, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.stream, self.interval = stream, interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._step_t0 = self._last = time.monotonic()
        self._what, self._done, self._total = "starting", 0, 0

    def on_event(self, ev: Event) -> None:
        with self._lock:
            what = f"{ev.slice}: {ev.title}" if ev.slice and not ev.title.startswith(f"{ev.slice}:") else ev.title
            if ev.kind == "progress":
                if (ev.done, ev.total) < (self._done, self._total) or what != self._what:
                    self._step_t0 = time.monotonic()
                self._what, self._done, self._total = what, ev.done, ev.total
                return              # Ninja's [N/M] lines come often: the timer writes them, steadily
            self._what, self._done, self._total, self._step_t0 = what, 0, 0, time.monotonic()
            self._write()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="builder-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.interval / 2)):
            with self._lock:
                if time.monotonic() - self._last >= self.interval:
                    self._write()

    def _write(self) -> None:
        now = time.monotonic()
        line = f"[{_clock(now - self._t0)}] {self._what}"
        if self._total:
            line += f" [{self._done}/{self._total}] {100 * self._done // self._total}%"
            if self._done:
                left = (now - self._step_t0) * (self._total - self._done) / self._done
                line += f" ETA {_clock(left)}"
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):     # a closed or full log: progress is not worth failing the build
            pass
        self._last = now
