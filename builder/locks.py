"""The one way builder waits for another builder process: a file lock that says, once, what it is waiting for.

Used for the source cache (mirror, work trees), a work tree's build (generated sources), and NDK downloads.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.errors import UsageError

log = logging.getLogger("builder")
FOREVER = -1.0


class LockTimeout(UsageError):
    """Another builder process held a lock for longer than the caller would wait."""


@contextmanager
def locked(path: Path, *, waiting: str, timeout: float = FOREVER, level: int = logging.INFO) -> Iterator[None]:
    """Hold the file lock ``path``. When it is busy, log (at ``level``) that builder is waiting for ``waiting``
    and wait at most ``timeout`` seconds (``FOREVER``: until it is free)."""
    from filelock import FileLock, Timeout  # ~50 ms to import: not on the way of --help or a --dry-run plan

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.log(level, "waiting for %s (lock %s)", waiting, path)
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise LockTimeout(f"timed out after {timeout:g} s waiting for {waiting} (lock {path})",
                              hint="another builder process is still using it: let it finish or stop it") from exc
    try:
        yield
    finally:
        lock.release()
