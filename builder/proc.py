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
