"""The single place where builder starts external processes.

Every command is logged quoted (copy-pasteable), with the environment it changes, and honours dry-run.
Nothing else in builder imports subprocess.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("builder")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""


def quote(argv: Sequence[str | os.PathLike[str]]) -> str:
    return shlex.join(str(a) for a in argv)


def render(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None,
           env: Mapping[str, str] | None = None) -> str:
    """A shell line equivalent to running argv in cwd with env overrides."""
    parts = []
    if cwd is not None:
        parts.append(f"cd {shlex.quote(str(cwd))} &&")
    if env:
        parts.append("env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())))
    parts.append(quote(argv))
    return " ".join(parts)


def _full_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if not env:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


def run(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, dry_run: bool = False,
        check: bool = True, capture: bool = True, timeout: float | None = None) -> Result:
    """Run a command to completion. ``env`` holds overrides only (they are what is logged)."""
    args = tuple(str(a) for a in argv)
    log.debug("$ %s", render(args, cwd, env))
    if dry_run:
        return Result(args, 0)
    proc = subprocess.run(args, cwd=cwd, env=_full_env(env), text=True, timeout=timeout,
                          capture_output=capture, check=False)
    result = Result(args, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        raise ProcessFailed(result)
    return result


def stream(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
           env: Mapping[str, str] | None = None, on_line: Callable[[str], None] | None = None,
           log_file: Path | None = None) -> int:
    """Run a command, feeding each output line (stdout+stderr merged) to on_line and the log file."""
    args = tuple(str(a) for a in argv)
    log.debug("$ %s", render(args, cwd, env))
    with _open_log(log_file) as sink:
        if sink is not None:
            sink.write(f"$ {render(args, cwd, env)}\n")
        with subprocess.Popen(args, cwd=cwd, env=_full_env(env), text=True, errors="replace",
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1, **_OWN_GROUP) as proc:
            assert proc.stdout is not None
            try:
                for line in _lines(proc.stdout):
                    if sink is not None:
                        sink.write(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                return proc.wait()
            except BaseException as exc:
                _stop_group(proc, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM)
                raise


# A streamed command (a build) runs in its own process group, so that stopping builder stops the whole tree: cmake's
# code generators, ninja (which stops the compilers it started, each in a group of its own). A terminal's Ctrl-C
# reaches builder only; builder passes it on.
_OWN_GROUP: dict = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
STOP_GRACE_S = 10.0


def _stop_group(proc: subprocess.Popen, sig: int) -> None:
    """Send sig to proc's process group (even when proc itself has ended: what it started may not have); SIGKILL
    the group if proc has not ended after STOP_GRACE_S."""
    log.debug("stopping %s (process group %d) with %s", proc.args[0], proc.pid, signal.Signals(sig).name)
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return  # the group is empty
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def which(name: str, path: str | None = None) -> str | None:
    import shutil

    return shutil.which(name, path=path)


class ProcessFailed(Exception):
    def __init__(self, result: Result) -> None:
        self.result = result
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        super().__init__(f"command failed ({result.returncode}): {quote(result.argv)}\n" + "\n".join(tail))


def _lines(handle) -> Iterator[str]:
    yield from iter(handle.readline, "")


class _NullCtx:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _open_log(path: Path | None):
    if path is None:
        return _NullCtx()
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8", errors="replace", buffering=1)
