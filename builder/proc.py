"""The single place where builder starts external processes (git included).

Every command is logged quoted (copy-pasteable), with the environment it changes, and honours dry-run. Every
command runs in a process group of its own, so stopping builder (Ctrl-C, SIGTERM) stops what it started, whole.
Nothing else in builder imports subprocess.

``Command`` is a command as data (argv, environment overrides, folder, and a note saying when it runs): plan steps
hold them, ``--dry-run`` prints them with ``Command.shell()``, and ``run_command`` runs exactly that.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import BuildFailed

log = logging.getLogger("builder")
Arg = str | os.PathLike[str]


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Command:
    """One process to start: ``argv`` in ``cwd`` with ``env`` overrides. ``note`` says when it runs (or what it
    must print); ``--dry-run`` shows it after the command as a shell comment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    note: str | None = None

    def shell(self) -> str:
        line = render(self.argv, self.cwd, self.env)
        return f"{line}  # {self.note}" if self.note else line

    def to_json(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "env": dict(self.env), "cwd": str(self.cwd) if self.cwd else None,
                "note": self.note}


def quote(argv: Sequence[Arg]) -> str:
    return shlex.join(str(a) for a in argv)


def render(argv: Sequence[Arg], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """A shell line equivalent to running argv in cwd with env overrides."""
    parts = []
    if cwd is not None:
        parts.append(f"cd {shlex.quote(str(cwd))} &&")
    if env:
        parts.append("env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())))
    parts.append(quote(argv))
    return " ".join(parts)


def _full_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """The child's environment: builder's own (passed on, never read for decisions) with ``env`` on top."""
    if not env:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


class TimedOut(Exception):
    """A command ran longer than its timeout (its process group was stopped)."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{quote(argv)} did not finish within {timeout:g} s")
        self.argv, self.timeout = tuple(argv), timeout


def run(argv: Sequence[Arg], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        dry_run: bool = False, check: bool = True, capture: bool = True, timeout: float | None = None) -> Result:
    """Run a command to completion (stdin closed). ``env`` holds overrides only (they are what is logged).
    Raises ``TimedOut`` after ``timeout`` seconds, ``ProcessFailed`` on a non-zero exit when ``check``."""
    args = tuple(str(a) for a in argv)
    log.debug("$ %s", render(args, cwd, env))
    if dry_run:
        return Result(args, 0)
    pipe = subprocess.PIPE if capture else None
    with subprocess.Popen(args, cwd=cwd, env=_full_env(env), text=True, errors="replace", stdin=subprocess.DEVNULL,
                          stdout=pipe, stderr=pipe, **_OWN_GROUP) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(child, signal.SIGTERM)
            raise TimedOut(args, timeout or 0) from None
        except BaseException as exc:
            _stop_group(child, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM)
            raise
    result = Result(args, child.returncode, stdout or "", stderr or "")
    if check and child.returncode != 0:
        raise ProcessFailed(result)
    return result


def run_command(command: Command, *, check: bool = True, timeout: float | None = None) -> Result:
    """Run a ``Command`` exactly as ``command.shell()`` shows it."""
    return run(command.argv, cwd=command.cwd, env=command.env, check=check, timeout=timeout)


def stream(argv: Sequence[Arg], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
           on_line: Callable[[str], None] | None = None, log_file: Path | None = None) -> int:
    """Run a command, feeding each output line (stdout+stderr merged) to on_line and the log file."""
    args = tuple(str(a) for a in argv)
    log.debug("$ %s", render(args, cwd, env))
    with _open_log(log_file) as sink:
        if sink is not None:
            sink.write(f"$ {render(args, cwd, env)}\n")
        with subprocess.Popen(args, cwd=cwd, env=_full_env(env), text=True, errors="replace",
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1, **_OWN_GROUP) as child:
            assert child.stdout is not None
            try:
                for line in _lines(child.stdout):
                    if sink is not None:
                        sink.write(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                return child.wait()
            except BaseException as exc:
                _stop_group(child, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM)
                raise


@dataclass(frozen=True)
class Timed:
    """A finished command measured from outside: wall time, the peak resident memory of the process and each stdout
    line with the seconds since the start at which it arrived (a program that flushes its lines can be timed phase
    by phase).

    ``max_rss_kib`` is the process's own high-water mark (``VmHWM`` of /proc/<pid>/status, read every
    ``RSS_POLL_S`` and at each line, the last reading kept; None where there is no /proc). Not ``wait4``'s
    ``ru_maxrss``: Linux carries the parent's high-water mark across fork and exec into it (exec_mmap), so a child
    of a Python that imported torch would report torch's RSS."""

    result: Result
    wall_s: float
    max_rss_kib: int | None
    lines: tuple[tuple[float, str], ...]


def run_timed(argv: Sequence[Arg], *, env: Mapping[str, str] | None = None, timeout: float | None = None) -> Timed:
    """Run a command to completion (stdin closed, stderr kept) and measure it (``Timed``). Raises ``TimedOut``
    after ``timeout`` seconds (its process group killed). The exit code is not checked."""
    args = tuple(str(a) for a in argv)
    log.debug("$ %s", render(args, None, env))
    expired = threading.Event()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        start = time.monotonic()
        child = subprocess.Popen(args, env=_full_env(env), text=True, errors="replace", stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err, bufsize=1, **_OWN_GROUP)
        timer = threading.Timer(timeout, _expire, (child, expired)) if timeout else None
        if timer is not None:
            timer.start()
        lines: list[tuple[float, str]] = []
        peak = _RssPoller(child.pid)
        peak.start()
        try:
            assert child.stdout is not None
            for line in _lines(child.stdout):
                lines.append((time.monotonic() - start, line.rstrip("\n")))
                peak.read()
            peak.finish()
            _, status = os.waitpid(child.pid, 0)
        except BaseException as exc:
            _stop_group(child, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM)
            raise
        finally:
            peak.finish()
            if timer is not None:
                timer.cancel()
        wall = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)   # reaped here: Popen must not wait for it again
        child.stdout.close()
        err.seek(0)
        stderr = err.read()
    if expired.is_set():
        raise TimedOut(args, timeout or 0)
    stdout = "".join(f"{text}\n" for _, text in lines)
    return Timed(Result(args, child.returncode, stdout, stderr), wall, peak.value, tuple(lines))


RSS_POLL_S = 0.01


class _RssPoller(threading.Thread):
    """Reads VmHWM (the high-water mark of resident memory, KiB) of a running process until told to stop."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.value: int | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_POLL_S):
            self.read()

    def read(self) -> None:
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return                 # no /proc, or the process has ended: keep the last reading
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                with self._lock:
                    self.value = max(self.value or 0, int(line.split()[1]))

    def finish(self) -> None:
        """Stop polling (while the process is still unreaped, so its pid still names it)."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()


def _expire(child: subprocess.Popen[str], expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


# Every command runs in its own process group, so that stopping builder stops the whole tree: cmake's code
# generators, ninja (which stops the compilers it started, each in a group of its own), git's helpers. A terminal's
# Ctrl-C reaches builder only; builder passes it on.
_OWN_GROUP: dict[str, Any] = {"process_group": 0}
STOP_GRACE_S = 10.0


def _stop_group(child: subprocess.Popen[str], sig: int) -> None:
    """Send sig to child's process group (even when child itself has ended: what it started may not have); SIGKILL
    the group if child has not ended after STOP_GRACE_S."""
    log.debug("stopping %s (process group %d) with %s", child.args, child.pid, signal.Signals(sig).name)
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        return  # the group is empty
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def which(name: str, path: str | None = None) -> str | None:
    import shutil

    return shutil.which(name, path=path)


class ProcessFailed(BuildFailed):
    """A command that had to succeed did not: a builder error (exit 4) naming the command and its last lines."""

    def __init__(self, result: Result) -> None:
        self.result = result
        tail = tuple(ln.strip() for ln in (result.stderr or result.stdout).strip().splitlines()[-5:])
        name = Path(result.argv[0]).name if result.argv else "command"
        super().__init__(f"{name} failed (exit code {result.returncode})", step=name, command=quote(result.argv),
                         first_errors=tail)

    def __str__(self) -> str:
        return "\n".join((f"command failed ({self.result.returncode}): {self.command}", *self.first_errors))


def _lines(handle: IO[str]) -> Iterator[str]:
    yield from iter(handle.readline, "")


def _open_log(path: Path | None) -> contextlib.AbstractContextManager[IO[str] | None]:
    if path is None:
        return contextlib.nullcontext()
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8", errors="replace", buffering=1)
